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

    /// Regression (`--task regression`): RMSE, MAE and R²; nil for classification.
    public var regression: RegressionMetrics? = nil

    public var meanLoss: Double { sampleCount == 0 ? 0 : lossSum / Double(sampleCount) }
    public var accuracy: Double { metrics.accuracy }
    /// What picks `best` without a validation split: accuracy, or for a regression the negative loss.
    public var score: Double { regression == nil ? accuracy : -meanLoss }
}

/// A regression's test numbers, from sums reduced exactly over ranks.
public struct RegressionMetrics: Sendable, Equatable {
    public var count: Int
    public var meanSquaredError: Double
    public var meanAbsoluteError: Double
    /// 1 − SSE / Σ (t − mean t)²: the share of the targets' variance the model explains.
    public var rSquared: Double
    public var rootMeanSquaredError: Double { meanSquaredError.squareRoot() }

    /// From Σ (y − t)², Σ |y − t|, Σ t, Σ t² and n.
    public init(squaredErrors: Double, absoluteErrors: Double, targetSum: Double, targetSquares: Double, count: Int) {
        self.count = count
        let n = Double(max(count, 1))
        meanSquaredError = squaredErrors / n
        meanAbsoluteError = absoluteErrors / n
        let total = targetSquares - targetSum * targetSum / n
        rSquared = total > 0 ? 1 - squaredErrors / total : 0
    }
}

/// Evaluates `model` on `dataset`, each rank taking its contiguous share (no padding, no duplicates),
/// then reducing the counts (Int64, exact) and loss sums over ranks.
///
/// - Parameter predictions: when given (`dataset.count` values), every rank ends with each sample's
///   predicted class (for per-sample comparisons of two models).
public func evaluate(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                     communicator: Communicator, batchSize: Int, testTimeAugmentation: TestTimeAugmentation = .none,
                     predictions perSample: UnsafeMutableBufferPointer<Int64>? = nil) throws -> EvaluationResult {
    if dataset.targets != nil {
        return try evaluateRegression(model: model, dataset: dataset, normalization: normalization, communicator: communicator, batchSize: batchSize)
    }
    let classes = model.outputCount
    var confusion = [Int64](repeating: 0, count: classes * classes)
    var lossSum = 0.0
    var predictions = [UInt8](repeating: 0, count: min(batchSize, max(dataset.count, 1)))
    try forEachShareBatch(model: model, dataset: dataset, normalization: normalization, communicator: communicator,
                          batchSize: batchSize, testTimeAugmentation: testTimeAugmentation) { start, count, logits, labels, _ in
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

/// A regression's evaluation: squared and absolute errors and target sums, reduced over ranks.
func evaluateRegression(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                        communicator: Communicator, batchSize: Int) throws -> EvaluationResult {
    var sums = [Double](repeating: 0, count: 4)  // Σ (y − t)², Σ |y − t|, Σ t, Σ t²
    try forEachShareBatch(model: model, dataset: dataset, normalization: normalization, communicator: communicator,
                          batchSize: batchSize) { _, count, outputs, _, targets in
        for i in 0..<count {
            let t = Double(targets![i]), error = Double(outputs[i]) - t
            sums[0] += error * error
            sums[1] += abs(error)
            sums[2] += t
            sums[3] += t * t
        }
    }
    try communicator.allreduce(&sums, .sum)
    let metrics = ClassificationMetrics(confusion: [0], classCount: 1)
    return EvaluationResult(lossSum: sums[0], sampleCount: Int64(dataset.count), metrics: metrics,
                            regression: RegressionMetrics(squaredErrors: sums[0], absoluteErrors: sums[1], targetSum: sums[2],
                                                          targetSquares: sums[3], count: dataset.count))
}

/// Runs the model in evaluation mode over this rank's contiguous share of `dataset` (no padding, no
/// duplicates), `batchSize` samples at a time; `body` gets each batch's first sample index, size, logits
/// (count, classes) and labels. With `.flip` the logits are the mean of the image's and its mirror image's.
func forEachShareBatch(model: Sequential, dataset: ImageDataset, normalization: Normalization, communicator: Communicator,
                       batchSize: Int, testTimeAugmentation: TestTimeAugmentation = .none, _ body: (Int, Int, UnsafeMutablePointer<Float>, UnsafePointer<UInt8>, UnsafePointer<Float>?) throws -> Void) throws {
    let share = shardRange(count: dataset.count, parts: communicator.size, part: communicator.rank)
    let gatherer = BatchGatherer(dataset: dataset, normalization: normalization)
    let capacity = min(batchSize, max(share.count, 1))
    model.reserve(batchCapacity: capacity)
    var indices = [Int32](repeating: 0, count: capacity)
    var labels = [UInt8](repeating: 0, count: capacity)
    var targets = [Float](repeating: 0, count: dataset.targets == nil ? 0 : capacity)
    let outputs = model.outputCount
    // (capacity, outputs): the first pass's logits while the mirror images go through the model.
    let averaged = UnsafeMutablePointer<Float>.allocate(capacity: testTimeAugmentation == .flip ? capacity * outputs : 0)
    defer { averaged.deallocate() }
    var start = share.lowerBound
    while start < share.upperBound {
        let count = min(capacity, share.upperBound - start)
        for i in 0..<count { indices[i] = Int32(start + i) }
        try indices.withUnsafeBufferPointer { indexBuffer in
            try labels.withUnsafeMutableBufferPointer { labelBuffer in
                try targets.withUnsafeMutableBufferPointer { targetBuffer in
                    try gatherer.gather(indices: UnsafeBufferPointer(rebasing: indexBuffer[0..<count]), into: model.input, labels: labelBuffer.baseAddress!,
                                        targets: targetBuffer.isEmpty ? nil : targetBuffer.baseAddress)
                }
            }
        }
        var logits = model.forward(batch: count, context: .inference)
        if testTimeAugmentation == .flip {
            averaged.update(from: logits, count: count * outputs)
            flipHorizontally(model.input, batch: count, shape: model.inputShape)
            let mirrored = model.forward(batch: count, context: .inference)
            for i in 0..<(count * outputs) { averaged[i] = 0.5 * (averaged[i] + mirrored[i]) }
            logits = averaged
        }
        try labels.withUnsafeBufferPointer { labelBuffer in
            try targets.withUnsafeBufferPointer { try body(start, count, logits, labelBuffer.baseAddress!, $0.isEmpty ? nil : $0.baseAddress) }
        }
        start += count
    }
}

/// Class probabilities (softmax of the logits) of every sample of `dataset`, (N, classes) row-major, on
/// every rank: each rank computes its contiguous share, then the shares are summed into place. With
/// `softmax` false, the raw outputs (a regression's predictions).
public func predictProbabilities(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                                 communicator: Communicator, batchSize: Int, softmax: Bool = true,
                                 testTimeAugmentation: TestTimeAugmentation = .none) throws -> [Float] {
    let classes = model.outputCount
    var probabilities = [Float](repeating: 0, count: dataset.count * classes)
    try forEachShareBatch(model: model, dataset: dataset, normalization: normalization, communicator: communicator,
                          batchSize: batchSize, testTimeAugmentation: testTimeAugmentation) { start, count, logits, _, _ in
        for s in 0..<count where !softmax {
            for c in 0..<classes { probabilities[(start + s) * classes + c] = logits[s * classes + c] }
        }
        for s in 0..<count where softmax {
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
