import Foundation

/// A weight tensor quantized symmetrically per output channel, as PyTorch's `per_channel_symmetric`
/// qint8 observer does: w[o, k] ≈ scales[o] · values[o, k], values in [-127, 127] (−128 unused, so the
/// range is symmetric and negating a weight never saturates).
public struct ChannelQuantizedWeights: Equatable, Sendable {
    /// (outputChannels, perChannel) codes, row-major.
    public let values: [Int8]
    /// (outputChannels): every scale positive and finite.
    public let scales: [Float]
    public let outputChannels: Int
    /// Weights per output channel (in-features, or C·k·k for a convolution).
    public var perChannel: Int { values.count / outputChannels }

    /// The largest code; a channel's largest |w| maps to it.
    public static let maxCode: Float = 127

    /// Quantizes (outputChannels, perChannel) float weights. An all-zero channel (pruned away) gets scale 1
    /// and codes 0, so every stored scale stays positive.
    public init(quantizing weights: UnsafeBufferPointer<Float>, outputChannels: Int) {
        precondition(outputChannels > 0 && weights.count % outputChannels == 0, "\(weights.count) weights in \(outputChannels) channels")
        let perChannel = weights.count / outputChannels
        var values = [Int8](repeating: 0, count: weights.count)
        var scales = [Float](repeating: 1, count: outputChannels)
        for o in 0..<outputChannels {
            let row = UnsafeBufferPointer(rebasing: weights[(o * perChannel)..<((o + 1) * perChannel)])
            let largest = row.reduce(Float(0)) { max($0, abs($1)) }
            if largest == 0 { continue }
            scales[o] = largest / Self.maxCode
            for k in 0..<perChannel {
                let code = (row[k] / scales[o]).rounded(.toNearestOrEven)
                values[o * perChannel + k] = Int8(max(-Self.maxCode, min(Self.maxCode, code)))
            }
        }
        self.init(values: values, scales: scales, outputChannels: outputChannels)
    }

    /// Codes and scales as stored in a checkpoint (validated by the caller: see `QuantizedCheckpoint`).
    public init(values: [Int8], scales: [Float], outputChannels: Int) {
        precondition(scales.count == outputChannels && values.count % max(outputChannels, 1) == 0)
        self.values = values
        self.scales = scales
        self.outputChannels = outputChannels
    }

    /// scales[o] · values[o, k]: the weights int8 inference effectively uses.
    public func dequantized() -> [Float] {
        let perChannel = self.perChannel
        return values.indices.map { scales[$0 / perChannel] * Float(values[$0]) }
    }

    /// Σ_k values[o, k] per channel: with an input zero point z, Σ_k (x_k − z)·w_k = Σ_k x_k·w_k − z·Σ_k w_k.
    public var channelSums: [Int32] {
        let perChannel = self.perChannel
        return (0..<outputChannels).map { o in values[(o * perChannel)..<((o + 1) * perChannel)].reduce(Int32(0)) { $0 + Int32($1) } }
    }
}

/// A layer input quantized per tensor to affine uint8 codes: x ≈ scale · (q − zeroPoint), q in [0, 127].
///
/// Seven bits, not eight, as PyTorch's x86 int8 default (`reduce_range`): without VNNI the u8×s8 dot
/// product (vpmaddubsw) adds two products in 16 bits, and 255·127·2 overflows them; 127·127·2 does not,
/// so results are exact and the same on every x86 CPU.
public struct ActivationQuantization: Equatable, Sendable {
    /// The largest code.
    public static let maxCode: Int32 = 127
    public let scale: Float
    public let zeroPoint: Int32

    /// The quantization covering [minimum, maximum] ∪ {0} (0 must be exact: it is the padding and the
    /// ReLU's floor), as PyTorch's MinMaxObserver. A constant-zero input gets scale 1.
    public init(minimum: Float, maximum: Float) {
        let low = min(minimum, 0), high = max(maximum, 0)
        guard high > low, (high - low).isFinite else {
            self.init(scale: 1, zeroPoint: 0)
            return
        }
        let scale = (high - low) / Float(Self.maxCode)
        let zero = (-low / scale).rounded(.toNearestOrEven)
        self.init(scale: scale, zeroPoint: Int32(max(0, min(Float(Self.maxCode), zero))))
    }

    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The code of one value: x · (1/scale), rounded half to even — the very arithmetic of the C kernel
    /// the int8 layers use, so references built from it match them code for code.
    public func code(_ x: Float) -> Int32 {
        let q = (x * (1 / scale)).rounded(.toNearestOrEven)
        return Int32(max(Float(-zeroPoint), min(Float(Self.maxCode - zeroPoint), q))) + zeroPoint
    }

    /// The value a code stands for.
    public func value(_ code: Int32) -> Float { scale * Float(code - zeroPoint) }
}

/// Running minimum and maximum of the values a layer receives during calibration.
public struct RangeObserver: Sendable {
    public private(set) var minimum = Float.infinity
    public private(set) var maximum = -Float.infinity

    public init() {}

    /// Widens the range to the given values; non-finite values are skipped (they have no code anyway).
    public mutating func observe(_ values: UnsafePointer<Float>, count: Int) {
        var low = minimum, high = maximum
        for i in 0..<count where values[i].isFinite {
            low = min(low, values[i])
            high = max(high, values[i])
        }
        minimum = low
        maximum = high
    }

    /// The input quantization for what was observed.
    public var quantization: ActivationQuantization {
        minimum <= maximum ? ActivationQuantization(minimum: minimum, maximum: maximum) : ActivationQuantization(scale: 1, zeroPoint: 0)
    }
}
