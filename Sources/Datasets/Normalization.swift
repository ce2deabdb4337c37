import CKernels

/// Per-channel input normalization: x = (pixel/255 − mean[c]) / std[c].
public struct Normalization: Sendable, Equatable, Codable {
    public let mean: [Float]
    public let standardDeviation: [Float]

    public init(mean: [Float], standardDeviation: [Float]) {
        precondition(mean.count == standardDeviation.count, "mean and std need one value per channel")
        self.mean = mean
        self.standardDeviation = standardDeviation
    }

    /// The training set's own per-channel mean and standard deviation (of pixels scaled to [0, 1]).
    public static func measured(on dataset: ImageDataset) throws -> Normalization {
        let channels = dataset.shape[0], plane = dataset.shape[1] * dataset.shape[2]
        if case let .floats(values) = dataset.storage { return measured(floats: values, channels: channels, plane: plane) }
        // (channels, 256) byte counts; a flat buffer — nested arrays cost a uniqueness check per increment.
        var histogram = [Int](repeating: 0, count: channels * 256)
        try histogram.withUnsafeMutableBufferPointer { counts in
            try dataset.forEachSampleBlock { pixels, samples in
                for sample in 0..<samples {
                    for c in 0..<channels {
                        let base = pixels + (sample * channels + c) * plane, row = counts.baseAddress! + c * 256
                        for p in 0..<plane { row[Int(base[p])] += 1 }
                    }
                }
            }
        }
        var means: [Float] = [], deviations: [Float] = []
        for c in 0..<channels {
            var total = 0.0, squares = 0.0, count = 0.0
            for value in 0..<256 where histogram[c * 256 + value] > 0 {
                let x = Double(value) / 255, n = Double(histogram[c * 256 + value])
                total += x * n
                squares += x * x * n
                count += n
            }
            let mean = count > 0 ? total / count : 0
            let variance = count > 0 ? max(squares / count - mean * mean, 0) : 1
            means.append(Float(mean))
            deviations.append(Float(max(variance.squareRoot(), 1e-6)))
        }
        return Normalization(mean: means, standardDeviation: deviations)
    }

    /// Mean and deviation of float samples scaled by 1/255 as bytes are, in Double: the same formula then
    /// standardizes them, (f/255 − mean)/std = (f − mean_f)/std_f.
    private static func measured(floats values: [Float], channels: Int, plane: Int) -> Normalization {
        var sums = [Double](repeating: 0, count: channels), squares = [Double](repeating: 0, count: channels)
        let samples = values.count / max(channels * plane, 1)
        for sample in 0..<samples {
            for c in 0..<channels {
                for p in 0..<plane {
                    let x = Double(values[(sample * channels + c) * plane + p]) / 255
                    sums[c] += x
                    squares[c] += x * x
                }
            }
        }
        let count = Double(max(samples * plane, 1))
        let means = sums.map { $0 / count }
        let deviations = zip(squares, means).map { max(($0 / count - $1 * $1), 0).squareRoot() }
        return Normalization(mean: means.map(Float.init), standardDeviation: deviations.map { Float(max($0, 1e-6)) })
    }

    /// For each channel, the normalized value of each byte 0...255 (channels × 256).
    public var lookupTable: [Float] {
        var table: [Float] = []
        table.reserveCapacity(mean.count * 256)
        for c in mean.indices {
            for value in 0..<256 { table.append((Float(value) / 255 - mean[c]) / standardDeviation[c]) }
        }
        return table
    }
}

extension Normalization {
    /// One sample's raw values (pixel bytes, or a table row's numbers as stored) as model inputs (C, plane),
    /// with the very operations the batch gather uses, so a served prediction equals `distrain predict`'s.
    public func normalize(bytes: UnsafePointer<UInt8>, into inputs: UnsafeMutablePointer<Float>, plane: Int) {
        for c in mean.indices {
            distrain_normalize_bytes(bytes + c * plane, inputs + c * plane, plane, 1 / (255 * standardDeviation[c]),
                                     -mean[c] / standardDeviation[c])
        }
    }

    /// `normalize(bytes:)` for values stored as floats (table features).
    public func normalize(values: UnsafePointer<Float>, into inputs: UnsafeMutablePointer<Float>, plane: Int) {
        for c in mean.indices {
            let scale = 1 / (255 * standardDeviation[c]), offset = -mean[c] / standardDeviation[c]
            for p in 0..<plane { inputs[c * plane + p] = values[c * plane + p] * scale + offset }
        }
    }
}
