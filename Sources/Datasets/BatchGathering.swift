/// Copies samples into a model's input buffer, normalizing bytes through a per-channel lookup table.
public struct BatchGatherer {
    public let dataset: ImageDataset
    /// (channels, 256): normalized value of each byte per channel.
    private let table: [Float]

    public init(dataset: ImageDataset, normalization: Normalization) {
        precondition(normalization.mean.count == dataset.shape[0],
                     "normalization has \(normalization.mean.count) channels, data \(dataset.shape[0])")
        self.dataset = dataset
        table = normalization.lookupTable
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
                            let lookup = table.baseAddress! + c * 256
                            let src = source + c * plane, dst = destination + c * plane
                            for p in 0..<plane { dst[p] = lookup[Int(src[p])] }
                        }
                    }
                }
            }
        }
    }
}
