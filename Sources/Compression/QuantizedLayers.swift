import CDNNL
import CKernels
import Layers
import Tensors

/// The int8 kernels' thread count (oneDNN runs on OpenMP, apart from OpenBLAS's threads).
public enum Int8Kernels {
    public static func setThreadCount(_ count: Int) { omp_set_num_threads(Int32(max(1, count))) }
}

/// C(rows, columns) = A·Bᵀ in int32 with oneDNN, A uint8 codes, B int8 weights (columns, depth).
/// A is (rows, depth) row-major, or (depth, rows) when `aIsTransposed` (an im2col matrix).
private func int8GEMM(rows: Int, columns: Int, depth: Int, a: UnsafePointer<UInt8>, aIsTransposed: Bool,
                      weights: UnsafePointer<Int8>, c: UnsafeMutablePointer<Int32>) {
    var noOffset: Int32 = 0
    let status = dnnl_gemm_u8s8s32(aIsTransposed ? CChar(UInt8(ascii: "T")) : CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")),
                                   CChar(UInt8(ascii: "F")), Int64(rows), Int64(columns), Int64(depth), 1,
                                   a, Int64(aIsTransposed ? rows : depth), 0, weights, Int64(depth), 0, 0,
                                   c, Int64(columns), &noOffset)
    precondition(status == dnnl_success, "oneDNN int8 GEMM (\(rows)x\(columns)x\(depth)) failed with status \(status.rawValue)")
}

/// What a quantized Linear or Conv2D shares: int8 weights per output channel, the input's quantization,
/// and the per-channel factors that turn int32 sums back into floats.
public struct Int8Kernel {
    public let weights: ChannelQuantizedWeights
    public let input: ActivationQuantization
    /// input.scale · weights.scales[o]: the float value of one unit of the int32 sum.
    let outputScales: [Float]
    /// input.zeroPoint · Σ_k weights[o, k]: what the zero point adds to each sum (subtracted after the GEMM).
    let corrections: [Int32]

    public init(weights: ChannelQuantizedWeights, input: ActivationQuantization) {
        self.weights = weights
        self.input = input
        outputScales = weights.scales.map { $0 * input.scale }
        corrections = weights.channelSums.map { $0 * input.zeroPoint }
    }

    /// The codes the layers feed the GEMM (for tests of the kernel against `ActivationQuantization.code`).
    public func quantizeForTesting(_ x: UnsafePointer<Float>, into codes: UnsafeMutablePointer<UInt8>, count: Int) {
        quantize(x, into: codes, count: count)
    }

    /// Codes of `count` floats.
    func quantize(_ x: UnsafePointer<Float>, into codes: UnsafeMutablePointer<UInt8>, count: Int) {
        distrain_quantize_u8(x, codes, count, 1 / input.scale, input.zeroPoint, ActivationQuantization.maxCode)
    }
}

/// A quantized layer's float bias: its slice of the model's store, or zeros when the layer has none.
final class OptionalBias {
    private var store: ParameterStore?
    private var slice: ParameterSlice?
    private let zeros: [Float]

    init(count: Int) { zeros = [Float](repeating: 0, count: count) }

    func bind(to store: ParameterStore, slices: [ParameterSlice]) {
        self.store = store
        slice = slices.first
    }

    func withValues(_ body: (UnsafePointer<Float>) -> Void) {
        if let store, let slice { return body(store.valuePointer(slice)) }
        zeros.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// torch.nn.Linear computed in int8: y = dequantize(codes(x) · Wqᵀ) + b, then the fused ReLU. Inference only.
///
/// Parameters: the float bias alone (the int8 weight lives in `kernel`). x: (B, in), y: (B, out).
public final class QuantizedLinear: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    public let activation: Activation
    public let name: String
    public let hasBias: Bool
    public let kernel: Int8Kernel
    private let bias: OptionalBias
    /// (B, in) input codes and (B, out) int32 sums.
    private var codes = Workspace<UInt8>()
    private var sums = Workspace<Int32>()

    /// The int8 version of `linear`, with its weights already quantized.
    public init(_ linear: Linear, kernel: Int8Kernel) {
        precondition(kernel.weights.outputChannels == linear.outputFeatures && kernel.weights.perChannel == linear.inputFeatures)
        inputFeatures = linear.inputFeatures
        outputFeatures = linear.outputFeatures
        activation = linear.activation
        name = linear.name
        hasBias = linear.hasBias
        self.kernel = kernel
        bias = OptionalBias(count: outputFeatures)
    }

    deinit {
        codes.free()
        sums.free()
    }

    public var summary: String { "Int8 Linear(\(inputFeatures) → \(outputFeatures))" + (activation == .relu ? " + ReLU" : "") }
    public var inputShape: [Int] { [inputFeatures] }
    public var outputShape: [Int] { [outputFeatures] }
    public var multiplyAccumulatesPerSample: Int { inputFeatures * outputFeatures }
    public var parameterSpecs: [ParameterSpec] {
        hasBias ? [ParameterSpec(name: "\(name).bias", shape: [outputFeatures], fanIn: inputFeatures)] : []
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) { bias.bind(to: store, slices: slices) }

    public func reserve(batchCapacity: Int) {
        codes.reserve(batchCapacity * inputFeatures)
        sums.reserve(batchCapacity * outputFeatures)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        if batch == 0 { return }
        precondition(codes.capacity >= batch * inputFeatures, "QuantizedLinear \(name): reserve() was not called")
        kernel.quantize(x, into: codes.base, count: batch * inputFeatures)
        kernel.weights.values.withUnsafeBufferPointer { w in
            int8GEMM(rows: batch, columns: outputFeatures, depth: inputFeatures, a: codes.base, aIsTransposed: false,
                     weights: w.baseAddress!, c: sums.base)
        }
        bias.withValues { b in
            distrain_dequantize_rows(sums.base, y, batch, outputFeatures, kernel.corrections, kernel.outputScales, b,
                                     activation == .relu ? 1 : 0)
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        preconditionFailure("QuantizedLinear \(name) is for inference; int8 models are not trained")
    }
}

/// torch.nn.Conv2d computed in int8: the input's codes unfolded by im2col (the padding holds the zero
/// point's code, i.e. the value 0), one oneDNN GEMM per chunk of images, dequantized into NCHW. Inference only.
///
/// x: (B, C, H, W), y: (B, out, OH, OW).
public final class QuantizedConv2D: Layer {
    public let geometry: WindowGeometry
    public let outputChannels: Int
    public let activation: Activation
    public let name: String
    public let hasBias: Bool
    public let kernel: Int8Kernel
    private let bias: OptionalBias
    /// (B, C, H, W) input codes; (C·k·k, chunk·OH·OW) unfolded codes; (chunk·OH·OW, out) int32 sums.
    private var codes = Workspace<UInt8>()
    private var columns = Workspace<UInt8>()
    private var sums = Workspace<Int32>()
    /// Images per GEMM: as many as keep the unfolded codes and the int32 sums within ~1 MiB together (both
    /// stay in L2 between the GEMM and the dequantization), at least one.
    public let imagesPerChunk: Int

    /// - Parameter imagesPerChunk: images per GEMM (default: by the L2 budget above; tests force chunking).
    public init(_ convolution: Conv2D, kernel: Int8Kernel, imagesPerChunk: Int? = nil) {
        geometry = convolution.geometry
        precondition(kernel.weights.outputChannels == convolution.outputChannels && kernel.weights.perChannel == geometry.patchSize)
        outputChannels = convolution.outputChannels
        activation = convolution.activation
        name = convolution.name
        hasBias = convolution.hasBias
        self.kernel = kernel
        bias = OptionalBias(count: outputChannels)
        self.imagesPerChunk = imagesPerChunk ?? max(1, (1 << 20) / max(1, geometry.outputPixels * (geometry.patchSize + 4 * outputChannels)))
    }

    deinit {
        codes.free()
        columns.free()
        sums.free()
    }

    public var summary: String {
        "Int8 Conv2D(\(geometry.channels) → \(outputChannels), \(geometry.kernelHeight)x\(geometry.kernelWidth))" + (activation == .relu ? " + ReLU" : "")
    }
    public var inputShape: [Int] { [geometry.channels, geometry.height, geometry.width] }
    public var outputShape: [Int] { [outputChannels, geometry.outputHeight, geometry.outputWidth] }
    public var multiplyAccumulatesPerSample: Int { outputChannels * geometry.patchSize * geometry.outputPixels }
    public var parameterSpecs: [ParameterSpec] {
        hasBias ? [ParameterSpec(name: "\(name).bias", shape: [outputChannels], fanIn: geometry.patchSize)] : []
    }

    public func bind(to store: ParameterStore, slices: [ParameterSlice]) { bias.bind(to: store, slices: slices) }

    public func reserve(batchCapacity: Int) {
        let chunk = min(batchCapacity, imagesPerChunk)
        codes.reserve(batchCapacity * geometry.inputCount)
        columns.reserve(geometry.patchSize * chunk * geometry.outputPixels)
        sums.reserve(chunk * geometry.outputPixels * outputChannels)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, context: ForwardContext) {
        if batch == 0 { return }
        precondition(codes.capacity >= batch * geometry.inputCount, "QuantizedConv2D \(name): reserve() was not called")
        let g = geometry, pixels = g.outputPixels
        kernel.quantize(x, into: codes.base, count: batch * g.inputCount)
        var first = 0
        while first < batch {
            let images = min(imagesPerChunk, batch - first)
            distrain_im2col_u8(codes.base + first * g.inputCount, images, g.channels, g.height, g.width, g.kernelHeight,
                               g.kernelWidth, g.stride, g.padding, UInt8(kernel.input.zeroPoint), columns.base)
            // sums(images·P, out) = columnsᵀ(images·P, C·k·k) · Wqᵀ
            kernel.weights.values.withUnsafeBufferPointer { w in
                int8GEMM(rows: images * pixels, columns: outputChannels, depth: g.patchSize, a: columns.base,
                         aIsTransposed: true, weights: w.baseAddress!, c: sums.base)
            }
            bias.withValues { b in
                distrain_dequantize_to_planes(sums.base, y + first * outputChannels * pixels, images, pixels, outputChannels,
                                              kernel.corrections, kernel.outputScales, b, activation == .relu ? 1 : 0)
            }
            first += images
        }
    }

    public func backward(input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dOutput dy: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?, batch: Int) {
        preconditionFailure("QuantizedConv2D \(name) is for inference; int8 models are not trained")
    }
}
