import CKernels
/// Copies samples into a model's input buffer, normalizing bytes through a per-channel lookup table.
public struct BatchGatherer {
    public let dataset: ImageDataset
    /// (channels, 256): normalized value of each byte per channel.
    private let table: [Float]
    /// Per channel: normalized = byte · scale + offset (the same map as the table, vectorizable).
    private let scales: [Float], offsets: [Float]
    /// How many samples ahead the gather prefetches in-memory data.
    static let prefetchDistance = 4
    /// One sample's bytes, read from file-backed data (allocated once, not per batch).
    private let scratch: SampleScratch

    public init(dataset: ImageDataset, normalization: Normalization) {
        precondition(normalization.mean.count == dataset.shape[0],
                     "normalization has \(normalization.mean.count) channels, data \(dataset.shape[0])")
        self.dataset = dataset
        table = normalization.lookupTable
        scales = normalization.standardDeviation.map { 1 / (255 * $0) }
        offsets = zip(normalization.mean, normalization.standardDeviation).map { -$0 / $1 }
        scratch = SampleScratch(bytes: dataset.sampleSize)
    }

    /// Writes samples `indices` as (count, C, H, W) floats into `inputs` and their labels into `labels`,
    /// augmenting each with choices keyed by (seed, epoch, sample index) when `augmentation` is given.
    /// Throws only for file-backed data that can no longer be read.
    public func gather(indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                       labels: UnsafeMutablePointer<UInt8>, targets: UnsafeMutablePointer<Float>? = nil,
                       augmentation: (Augmentation, seed: UInt64, epoch: Int)? = nil) throws {
        let channels = dataset.shape[0], height = dataset.shape[1], width = dataset.shape[2]
        let plane = height * width
        let size = channels * plane
        try table.withUnsafeBufferPointer { table in
            try dataset.labels.withUnsafeBufferPointer { allLabels in
                // The sample's bytes: in place for in-memory data, else read into the scratch buffer.
                func sampleBytes(_ index: Int, _ pixels: UnsafePointer<UInt8>?) throws -> UnsafePointer<UInt8> {
                    if let pixels { return pixels + index * size }
                    if case let .files(files) = dataset.storage { try files.read(sample: index, into: scratch.bytes) }
                    return UnsafePointer(scratch.bytes)
                }
                func gatherAll(_ pixels: UnsafePointer<UInt8>?) throws {
                    for (row, index) in indices.enumerated() {
                        // Samples are scattered over the dataset: start fetching a later one while this
                        // one is converted, so the conversion does not wait on memory.
                        if let pixels, row + Self.prefetchDistance < indices.count {
                            distrain_prefetch(pixels + Int(indices[row + Self.prefetchDistance]) * size, size)
                        }
                        let source = try sampleBytes(Int(index), pixels)
                        let destination = inputs + row * size
                        labels[row] = allLabels[Int(index)]
                        if let (augment, seed, epoch) = augmentation {
                            let choice = augment.choice(seed: seed, epoch: epoch, sampleIndex: Int(index))
                            augment.apply(source: source, destination: destination, channels: channels, height: height,
                                          width: width, lookup: table.baseAddress!, choice: choice)
                            continue
                        }
                        for c in 0..<channels {
                            distrain_normalize_bytes(source + c * plane, destination + c * plane, plane, scales[c], offsets[c])
                        }
                    }
                }
                switch dataset.storage {
                case let .memory(pixels): try pixels.withUnsafeBufferPointer { try gatherAll($0.baseAddress) }
                case .files: try gatherAll(nil)
                case let .floats(values):
                    // Features: the same affine map as bytes, no augmentation (there are no pixels to crop).
                    for (row, index) in indices.enumerated() {
                        labels[row] = allLabels[Int(index)]
                        if let targets, let all = dataset.targets { targets[row] = all[Int(index)] }
                        for c in 0..<channels {
                            for p in 0..<plane {
                                inputs[row * size + c * plane + p] = values[Int(index) * size + c * plane + p] * scales[c] + offsets[c]
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A byte buffer owned by a BatchGatherer (a class so the struct can free it when the last copy goes).
final class SampleScratch: @unchecked Sendable {
    let bytes: UnsafeMutablePointer<UInt8>
    init(bytes count: Int) { bytes = .allocate(capacity: max(count, 1)) }
    deinit { bytes.deallocate() }
}
