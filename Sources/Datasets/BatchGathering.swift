import CKernels
/// Copies samples into a model's input buffer, normalizing bytes through a per-channel lookup table.
public struct BatchGatherer {
    public let dataset: ImageDataset
    /// (channels, 256): normalized value of each byte per channel.
    private let table: [Float]
    /// Per channel: normalized = byte · scale + offset (the same map as the table, vectorizable).
    private let scales: [Float], offsets: [Float]

    public init(dataset: ImageDataset, normalization: Normalization) {
        precondition(normalization.mean.count == dataset.shape[0],
                     "normalization has \(normalization.mean.count) channels, data \(dataset.shape[0])")
        self.dataset = dataset
        table = normalization.lookupTable
        scales = normalization.standardDeviation.map { 1 / (255 * $0) }
        offsets = zip(normalization.mean, normalization.standardDeviation).map { -$0 / $1 }
    }

    /// Writes samples `indices` as (count, C, H, W) floats into `inputs` and their labels into `labels`,
    /// augmenting each with choices keyed by (seed, epoch, sample index) when `augmentation` is given.
    public func gather(indices: UnsafeBufferPointer<Int32>, into inputs: UnsafeMutablePointer<Float>,
                       labels: UnsafeMutablePointer<UInt8>,
                       augmentation: (Augmentation, seed: UInt64, epoch: Int)? = nil) {
        let channels = dataset.shape[0], height = dataset.shape[1], width = dataset.shape[2]
        let plane = height * width
        let size = channels * plane
        dataset.pixels.withUnsafeBufferPointer { pixels in
            dataset.labels.withUnsafeBufferPointer { allLabels in
                table.withUnsafeBufferPointer { table in
                    for (row, index) in indices.enumerated() {
                        let source = pixels.baseAddress! + Int(index) * size
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
            }
        }
    }
}
