import Compression
import Datasets
import Layers

/// The range of the input each Linear and Conv2d layer receives over `samples` training samples, spread
/// evenly over the dataset (sample ⌊i·count/samples⌋), in evaluation mode: what int8 quantization scales
/// the activations by. Keyed by layer index. Deterministic, so every rank computes the same ranges.
public func calibrationRanges(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                              samples: Int, batchSize: Int) throws -> [Int: RangeObserver] {
    precondition(samples >= 1 && samples <= dataset.count, "calibration takes 1...\(dataset.count) samples, got \(samples)")
    let gatherer = BatchGatherer(dataset: dataset, normalization: normalization)
    let capacity = min(batchSize, samples)
    model.reserve(batchCapacity: capacity)
    let observed = model.layers.indices.filter { QuantizedCheckpoint.isQuantizable(model.layers[$0]) }
    var ranges = Dictionary(uniqueKeysWithValues: observed.map { ($0, RangeObserver()) })
    var indices = [Int32](repeating: 0, count: capacity)
    var labels = [UInt8](repeating: 0, count: capacity)
    var first = 0
    while first < samples {
        let count = min(capacity, samples - first)
        for i in 0..<count { indices[i] = Int32((first + i) * dataset.count / samples) }
        try indices.withUnsafeBufferPointer { indexBuffer in
            try labels.withUnsafeMutableBufferPointer { labelBuffer in
                try gatherer.gather(indices: UnsafeBufferPointer(rebasing: indexBuffer[0..<count]), into: model.input,
                                    labels: labelBuffer.baseAddress!, targets: nil)
            }
        }
        model.forward(batch: count, context: .inference)
        for index in observed {
            ranges[index]!.observe(model.layerInput(index), count: count * model.layers[index].inputCount)
        }
        first += count
    }
    return ranges
}
