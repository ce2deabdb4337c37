import CKernels

/// A normalization's byte → float maps, made once and shared read-only by every rank-thread.
final class NormalizationTables: Sendable {
    /// (channels, 256): normalized value of each byte per channel (augmentation's lookup).
    let table: [Float]
    /// Per channel: normalized = byte · scale + offset (the same map as the table, vectorizable).
    let scales: [Float], offsets: [Float]

    init(_ normalization: Normalization) {
        table = normalization.lookupTable
        scales = normalization.standardDeviation.map { 1 / (255 * $0) }
        offsets = zip(normalization.mean, normalization.standardDeviation).map { -$0 / $1 }
    }
}

/// Images and table rows as a `Dataset`: inputs normalized as they are gathered (by the normalization
/// measured on the training split), targets the class index or, for a regression, the number.
extension ImageDataset: Dataset {
    public var sampleShape: [Int] { shape }

    public var targetKind: TargetKind {
        targets == nil ? .classes(classNames) : .value(classNames.first ?? "target")
    }

    public var stratificationLabels: [UInt8]? { labels }

    public var gatherScratchBytes: Int {
        if case .files = storage { return sampleSize }
        return 0
    }

    public func firstSamples(_ limit: Int?) -> any Dataset { prefix(limit) }

    public func samples(at indices: [Int]) throws -> any Dataset { try subset(indices) }

    /// How many samples ahead the gather prefetches in-memory data.
    static let prefetchDistance = 4

    public func gather(_ indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                       targets: TargetBuffer, augmentation: AugmentationKey?) throws {
        guard let tables = normalizationTables else {
            preconditionFailure("an ImageDataset is gathered after its normalization is set (DatasetSplits.normalized)")
        }
        precondition(indices.count <= targets.capacity && targets.scratchBytes >= gatherScratchBytes,
                     "\(indices.count) samples for a target buffer of \(targets.capacity) (scratch \(targets.scratchBytes))")
        try labels.withUnsafeBufferPointer { allLabels in
            for (row, index) in indices.enumerated() { targets.indices[row] = Int32(allLabels[Int(index)]) }
        }
        if let all = self.targets {
            for (row, index) in indices.enumerated() { targets.values[row] = all[Int(index)] }
        }
        switch storage {
        case let .memory(pixels):
            try pixels.withUnsafeBufferPointer {
                try gatherBytes(indices, from: $0.baseAddress, into: inputs, scratch: targets.scratch, tables: tables,
                                augmentation: augmentation)
            }
        case .files:
            try gatherBytes(indices, from: nil, into: inputs, scratch: targets.scratch, tables: tables, augmentation: augmentation)
        case let .floats(values):
            // Features: the same affine map as bytes, no augmentation (there are no pixels to crop).
            let size = sampleSize, channels = shape[0], plane = size / max(channels, 1)
            for (row, index) in indices.enumerated() {
                for c in 0..<channels {
                    for p in 0..<plane {
                        let at = c * plane + p
                        inputs[row * size + at] = values[Int(index) * size + at] * tables.scales[c] + tables.offsets[c]
                    }
                }
            }
        }
    }

    /// Byte samples (in memory at `pixels`, or read one at a time into `scratch`) normalized into `inputs`.
    private func gatherBytes(_ indices: UnsafeBufferPointer<Int32>, from pixels: UnsafePointer<UInt8>?,
                             into inputs: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer,
                             tables: NormalizationTables, augmentation: AugmentationKey?) throws {
        let channels = shape[0], height = shape[1], width = shape[2]
        let plane = height * width, size = channels * plane
        let bytes = scratch.assumingMemoryBound(to: UInt8.self)
        try tables.table.withUnsafeBufferPointer { table in
            for (row, index) in indices.enumerated() {
                // Samples are scattered over the dataset: start fetching a later one while this one is
                // converted, so the conversion does not wait on memory.
                if let pixels, row + Self.prefetchDistance < indices.count {
                    distrain_prefetch(pixels + Int(indices[row + Self.prefetchDistance]) * size, size)
                }
                let source: UnsafePointer<UInt8>
                if let pixels {
                    source = pixels + Int(index) * size
                } else {
                    if case let .files(files) = storage { try files.read(sample: Int(index), into: bytes) }
                    source = UnsafePointer(bytes)
                }
                let destination = inputs + row * size
                if let key = augmentation {
                    let choice = key.augmentation.choice(seed: key.seed, epoch: key.epoch, sampleIndex: Int(index))
                    key.augmentation.apply(source: source, destination: destination, channels: channels, height: height,
                                           width: width, lookup: table.baseAddress!, choice: choice)
                    continue
                }
                for c in 0..<channels {
                    distrain_normalize_bytes(source + c * plane, destination + c * plane, plane, tables.scales[c], tables.offsets[c])
                }
            }
        }
    }
}

/// Copies samples of an image dataset into a model's input buffer with a given normalization: the
/// one-off form of `Dataset.gather` for callers that hold labels as bytes (calibration, tests).
public struct BatchGatherer {
    public let dataset: ImageDataset
    private let buffer: TargetBuffer

    public init(dataset: ImageDataset, normalization: Normalization, capacity: Int = 1024) {
        precondition(normalization.mean.count == dataset.shape[0],
                     "normalization has \(normalization.mean.count) channels, data \(dataset.shape[0])")
        self.dataset = dataset.normalized(by: normalization)
        buffer = TargetBuffer(capacity: capacity, scratchBytes: dataset.gatherScratchBytes)
    }

    /// Writes samples `indices` as (count, C, H, W) floats into `inputs` and their labels into `labels`
    /// (and a regression's numbers into `targets`), augmenting each with choices keyed by (seed, epoch,
    /// sample index) when `augmentation` is given.
    public func gather(indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                       labels: UnsafeMutablePointer<UInt8>, targets: UnsafeMutablePointer<Float>? = nil,
                       augmentation: (Augmentation, seed: UInt64, epoch: Int)? = nil) throws {
        var start = 0
        while start < indices.count {
            let count = min(buffer.capacity, indices.count - start)
            let part = UnsafeBufferPointer(rebasing: indices[start..<(start + count)])
            try dataset.gather(part, into: inputs + start * dataset.sampleSize, targets: buffer,
                               augmentation: augmentation.map { AugmentationKey($0.0, seed: $0.seed, epoch: $0.epoch) })
            for i in 0..<count {
                labels[start + i] = UInt8(truncatingIfNeeded: buffer.indices[i])
                targets?[start + i] = buffer.values[i]
            }
            start += count
        }
    }
}

extension ImageDataset {
    /// Input shape, classes and normalization, as checkpoints have always recorded them.
    public var checkpointMetadata: [String: String] {
        var metadata = [
            "input_shape": shape.map(String.init).joined(separator: "x"),
            "classes": String(classNames.count),
            "class_names": jsonArray(classNames.map { "\"\($0.replacingOccurrences(of: "\"", with: "\\\""))\"" }),
        ]
        if let normalization {
            metadata["normalization_mean"] = jsonArray(normalization.mean.map { "\($0)" })
            metadata["normalization_std"] = jsonArray(normalization.standardDeviation.map { "\($0)" })
            metadata["normalization"] = "x = (pixel / 255 - mean[c]) / std[c]"
        }
        return metadata
    }
}

private func jsonArray(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
