import Collectives
import Datasets
import Layers
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// Loss, accuracy and confusion matrix over a whole dataset, exactly as one process would count them.
public struct EvaluationResult: Sendable, Equatable {
    /// Σ per-sample cross-entropy.
    public var lossSum: Double
    public var sampleCount: Int64
    public var metrics: ClassificationMetrics

    public var meanLoss: Double { sampleCount == 0 ? 0 : lossSum / Double(sampleCount) }
    public var accuracy: Double { metrics.accuracy }
}

/// Evaluates `model` on `dataset`, each rank taking its contiguous share (no padding, no duplicates),
/// then reducing the counts (Int64, exact) and loss sums over ranks.
///
/// - Parameter predictions: when given (`dataset.count` values), every rank ends with each sample's
///   predicted class (for per-sample comparisons of two models).
public func evaluate(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                     communicator: Communicator, batchSize: Int, predictions perSample: UnsafeMutableBufferPointer<Int64>? = nil) throws -> EvaluationResult {
    let classes = model.outputCount
    var confusion = [Int64](repeating: 0, count: classes * classes)
    var lossSum = 0.0
    var predictions = [UInt8](repeating: 0, count: min(batchSize, max(dataset.count, 1)))
    try forEachShareBatch(model: model, dataset: dataset, normalization: normalization, communicator: communicator,
                          batchSize: batchSize) { start, count, logits, labels in
        lossSum += softmaxCrossEntropy(logits: logits, labels: labels, batch: count, classes: classes, dLogits: nil).lossSum
        predictions.withUnsafeMutableBufferPointer { argmaxRows(logits, batch: count, classes: classes, predictions: $0.baseAddress!) }
        for i in 0..<count { confusion[Int(labels[i]) * classes + Int(predictions[i])] += 1 }
        if let perSample { for i in 0..<count { perSample[start + i] = Int64(predictions[i]) } }
    }
    if let perSample {
        // Each rank wrote its share; zeros elsewhere, so the sum is every sample's prediction on every rank.
        let share = shardRange(count: dataset.count, parts: communicator.size, part: communicator.rank)
        for i in 0..<perSample.count where !share.contains(i) { perSample[i] = 0 }
        try communicator.allreduce(perSample, .sum)
    }
    try communicator.allreduce(&confusion, .sum)
    var loss = [lossSum]
    try communicator.allreduce(&loss, .sum)
    let metrics = ClassificationMetrics(confusion: confusion, classCount: classes)
    return EvaluationResult(lossSum: loss[0], sampleCount: metrics.total, metrics: metrics)
}

/// Runs the model in evaluation mode over this rank's contiguous share of `dataset` (no padding, no
/// duplicates), `batchSize` samples at a time; `body` gets each batch's first sample index, size, logits
/// (count, classes) and labels.
func forEachShareBatch(model: Sequential, dataset: ImageDataset, normalization: Normalization, communicator: Communicator,
                       batchSize: Int, _ body: (Int, Int, UnsafeMutablePointer<Float>, UnsafePointer<UInt8>) throws -> Void) throws {
    let share = shardRange(count: dataset.count, parts: communicator.size, part: communicator.rank)
    let gatherer = BatchGatherer(dataset: dataset, normalization: normalization)
    let capacity = min(batchSize, max(share.count, 1))
    model.reserve(batchCapacity: capacity)
    var indices = [Int32](repeating: 0, count: capacity)
    var labels = [UInt8](repeating: 0, count: capacity)
    var start = share.lowerBound
    while start < share.upperBound {
        let count = min(capacity, share.upperBound - start)
        for i in 0..<count { indices[i] = Int32(start + i) }
        try indices.withUnsafeBufferPointer { indexBuffer in
            try labels.withUnsafeMutableBufferPointer { labelBuffer in
                try gatherer.gather(indices: UnsafeBufferPointer(rebasing: indexBuffer[0..<count]), into: model.input, labels: labelBuffer.baseAddress!)
            }
        }
        let logits = model.forward(batch: count, context: .inference)
        try labels.withUnsafeBufferPointer { try body(start, count, logits, $0.baseAddress!) }
        start += count
    }
}

/// Class probabilities (softmax of the logits) of every sample of `dataset`, (N, classes) row-major, on
/// every rank: each rank computes its contiguous share, then the shares are summed into place.
public func predictProbabilities(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                                 communicator: Communicator, batchSize: Int) throws -> [Float] {
    let classes = model.outputCount
    var probabilities = [Float](repeating: 0, count: dataset.count * classes)
    try forEachShareBatch(model: model, dataset: dataset, normalization: normalization, communicator: communicator,
                          batchSize: batchSize) { start, count, logits, _ in
        for s in 0..<count {
            let row = logits + s * classes
            var maximum = row[0]
            for c in 1..<classes { maximum = max(maximum, row[c]) }
            var total: Float = 0
            for c in 0..<classes { total += expf(row[c] - maximum) }
            for c in 0..<classes { probabilities[(start + s) * classes + c] = expf(row[c] - maximum) / total }
        }
    }
    try communicator.allreduce(&probabilities, .sum)
    return probabilities
}
