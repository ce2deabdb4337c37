import Collectives
import Datasets
import Layers
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// A model's numbers over a whole dataset, exactly as one process would count them: the loss, the
/// objective's named metrics, and a classification's confusion matrix or a regression's errors.
public struct EvaluationResult: Sendable, Equatable {
    /// Σ loss over every target (cross-entropy, squared error).
    public var lossSum: Double
    /// Samples scored.
    public var sampleCount: Int64
    /// The objective's metrics, loss first, in the order records and files show them.
    public var metrics: [Metric]
    /// A classification's confusion matrix and what follows from it (nil for other objectives).
    public var classification: ClassificationMetrics?
    /// A regression's RMSE, MAE and R² (nil for other objectives).
    public var regression: RegressionMetrics?
    /// What `sampleCount` counts, for reports: "samples", or "positions" for a language model's tokens.
    public var countUnit = "samples"

    public init(lossSum: Double, sampleCount: Int64, metrics: [Metric]) {
        self.lossSum = lossSum
        self.sampleCount = sampleCount
        self.metrics = metrics
    }

    /// A classification's result from its confusion matrix.
    init(lossSum: Double, sampleCount: Int64, objective: ClassificationObjective, classification: ClassificationMetrics) {
        self.init(lossSum: lossSum, sampleCount: sampleCount,
                  metrics: [Metric("loss", sampleCount == 0 ? 0 : lossSum / Double(sampleCount)),
                            Metric("accuracy", classification.accuracy, higherIsBetter: true, isFraction: true)])
        self.classification = classification
    }

    /// A regression's result.
    init(lossSum: Double, sampleCount: Int64, regression: RegressionMetrics) {
        self.init(lossSum: lossSum, sampleCount: sampleCount,
                  metrics: [Metric("loss", regression.meanSquaredError), Metric("rmse", regression.rootMeanSquaredError),
                            Metric("mae", regression.meanAbsoluteError), Metric("r2", regression.rSquared, higherIsBetter: true)])
        self.regression = regression
    }

    public var meanLoss: Double { metrics.value("loss") ?? (sampleCount == 0 ? 0 : lossSum / Double(sampleCount)) }
    /// The fraction of correct predictions (0 where the objective has none).
    public var accuracy: Double { metrics.value("accuracy") ?? 0 }
    /// The value of the named metric, if the objective computes it.
    public func metric(_ name: String) -> Double? { metrics.value(name) }
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

/// Evaluates `model` on `dataset` under `objective`, each rank taking its contiguous share (no padding,
/// no duplicates), then reducing the objective's sums over ranks in one call (counts exact).
///
/// - Parameter predictions: when given (`dataset.count` values, classification only), every rank ends
///   with each sample's predicted class (for per-sample comparisons of two models).
///
/// - Parameter exactly: `--exact-sums`: one GEMM per sample and the sums added sample by sample as exact integers,
///   so every number is the same on any world size.
public func evaluate(model: Sequential, dataset: any Dataset, objective: any Objective, communicator: Communicator,
                     batchSize: Int, testTimeAugmentation: TestTimeAugmentation = .none,
                     predictions perSample: UnsafeMutableBufferPointer<Int64>? = nil, exactly: Bool = false) throws -> EvaluationResult {
    var sums = [Double](repeating: 0, count: objective.evaluationSumCount)
    let classifier = objective as? ClassificationObjective
    precondition(perSample == nil || classifier != nil, "per-sample predictions are classes")
    let exactSums = exactly ? SampleSums(objective: objective, dataset: dataset) : nil
    try forEachShareBatch(model: model, dataset: dataset, communicator: communicator, batchSize: batchSize,
                          testTimeAugmentation: testTimeAugmentation, exactly: exactly) { start, count, outputs, targets in
        if let exactSums {
            exactSums.add(outputs: outputs, targets: targets, rows: count)
        } else {
            sums.withUnsafeMutableBufferPointer {
                objective.accumulate(outputs: outputs, targets: targets, rows: count, into: $0.baseAddress!)
            }
        }
        if let perSample, let classifier {
            for i in 0..<count { perSample[start + i] = Int64(classifier.predictedClass(outputs + i * classifier.classes)) }
        }
    }
    if let perSample {
        // Each rank wrote its share; zeros elsewhere, so the sum is every sample's prediction on every rank.
        let share = shardRange(count: dataset.count, parts: communicator.size, part: communicator.rank)
        for i in 0..<perSample.count where !share.contains(i) { perSample[i] = 0 }
        try communicator.allreduce(perSample, .sum)
    }
    if let exactSums {
        sums = try exactSums.reduced(over: communicator)
    } else {
        try communicator.allreduce(&sums, .sum)
    }
    return objective.evaluation(sums: sums)
}

/// An objective's evaluation sums taken sample by sample and added as exact integers (`--exact-sums`): their
/// reduction over ranks gives the same bits whatever the shares.
final class SampleSums {
    let objective: any Objective
    let exact: ExactSums
    /// One sample's targets and its sums.
    private let one: TargetBuffer
    private let perSample: Int
    private var row: [Double]

    init(objective: any Objective, dataset: any Dataset) {
        self.objective = objective
        exact = ExactSums(count: objective.evaluationSumCount)
        one = TargetBuffer(rows: 1, for: dataset)
        perSample = dataset.targetKind.perSample
        row = [Double](repeating: 0, count: objective.evaluationSumCount)
    }

    /// Adds the sums of `rows` samples (outputs (rows, outputCount), their targets), each on its own.
    func add(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int) {
        let outputCount = objective.outputCount
        for i in 0..<rows {
            one.indices.update(from: targets.indices + i * perSample, count: perSample)
            one.values.update(from: targets.values + i * perSample, count: perSample)
            row.withUnsafeMutableBufferPointer { sums in
                sums.update(repeating: 0)
                objective.accumulate(outputs: outputs + i * outputCount, targets: one, rows: 1, into: sums.baseAddress!)
                exact.add(UnsafePointer(sums.baseAddress!), count: sums.count, at: 0)
            }
        }
    }

    /// The sums over every rank's samples.
    func reduced(over communicator: Communicator) throws -> [Double] {
        if communicator.size > 1 { try communicator.allreduce(exact.storage, .sum) }
        var sums = [Double](repeating: 0, count: exact.count)
        exact.round(into: &sums)
        return sums
    }
}

/// An image or table dataset evaluated with a checkpoint's normalization, under the objective its
/// targets call for.
public func evaluate(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                     communicator: Communicator, batchSize: Int, testTimeAugmentation: TestTimeAugmentation = .none,
                     predictions perSample: UnsafeMutableBufferPointer<Int64>? = nil) throws -> EvaluationResult {
    try evaluate(model: model, dataset: dataset.normalized(by: normalization),
                 objective: defaultObjective(for: dataset.targetKind), communicator: communicator, batchSize: batchSize,
                 testTimeAugmentation: testTimeAugmentation, predictions: perSample)
}

/// Runs the model in evaluation mode over this rank's contiguous share of `dataset` (no padding, no
/// duplicates), `batchSize` samples at a time; `body` gets each batch's first sample index, size,
/// outputs (count, outputs) and targets. With `.flip` the outputs are the mean of the image's and its
/// mirror image's.
func forEachShareBatch(model: Sequential, dataset: any Dataset, communicator: Communicator, batchSize: Int,
                       testTimeAugmentation: TestTimeAugmentation = .none, exactly: Bool = false,
                       _ body: (Int, Int, UnsafeMutablePointer<Float>, TargetBuffer) throws -> Void) throws {
    let share = shardRange(count: dataset.count, parts: communicator.size, part: communicator.rank)
    let capacity = min(batchSize, max(share.count, 1))
    model.reserve(batchCapacity: capacity)
    let targets = TargetBuffer(rows: capacity, for: dataset)
    var indices = [Int32](repeating: 0, count: capacity)
    let outputs = model.outputCount
    // (capacity, outputs): the first pass's outputs while the mirror images go through the model.
    let averaged = UnsafeMutablePointer<Float>.allocate(capacity: testTimeAugmentation == .flip ? capacity * outputs : 0)
    defer { averaged.deallocate() }
    var start = share.lowerBound
    while start < share.upperBound {
        let count = min(capacity, share.upperBound - start)
        for i in 0..<count { indices[i] = Int32(start + i) }
        try indices.withUnsafeBufferPointer { all in
            try dataset.gather(UnsafeBufferPointer(rebasing: all[0..<count]), into: model.input, targets: targets, augmentation: nil)
        }
        let result = inferenceOutputs(model, batch: count, testTimeAugmentation: testTimeAugmentation, averaged: averaged,
                                      exactly: exactly)
        try body(start, count, result, targets)
        start += count
    }
    // Sharded parameters (`--shard parameters`): every pass gathers each layer's from all ranks, so every rank runs as
    // many passes as the rank with the most batches, the extra ones empty.
    if model.passObserver != nil {
        let mine = (share.count + capacity - 1) / capacity
        for _ in mine..<mostShareBatches(count: dataset.count, ranks: communicator.size, batchSize: batchSize) {
            _ = inferenceOutputs(model, batch: 0, testTimeAugmentation: testTimeAugmentation, averaged: averaged,
                                 exactly: exactly)
        }
    }
}

/// The most batches any rank's share of `count` samples takes, `batchSize` at a time.
func mostShareBatches(count: Int, ranks: Int, batchSize: Int) -> Int {
    (0..<ranks).map { rank in
        let share = shardRange(count: count, parts: ranks, part: rank).count
        let capacity = min(batchSize, max(share, 1))
        return (share + capacity - 1) / capacity
    }.max() ?? 0
}

/// The model's outputs (batch, outputs) in inference mode for the samples in its input buffer; with `.flip`,
/// the mean of each image's and its mirror image's (the input is left mirrored), in `averaged` (batch, outputs).
/// `exactly`: one GEMM per sample (`--exact-sums`), so a sample's outputs do not depend on its batch.
public func inferenceOutputs(_ model: Sequential, batch: Int, testTimeAugmentation: TestTimeAugmentation,
                             averaged: UnsafeMutablePointer<Float>, exactly: Bool = false) -> UnsafeMutablePointer<Float> {
    let context = exactly ? ForwardContext(isTraining: false, sumsExactly: true) : .inference
    let result = model.forward(batch: batch, context: context)
    guard testTimeAugmentation == .flip else { return result }
    let count = batch * model.outputCount
    averaged.update(from: result, count: count)
    flipHorizontally(model.input, batch: batch, shape: model.inputShape)
    let mirrored = model.forward(batch: batch, context: context)
    for i in 0..<count { averaged[i] = 0.5 * (averaged[i] + mirrored[i]) }
    return averaged
}

/// Class probabilities (softmax of the logits) of every sample of `dataset`, (N, classes) row-major, on
/// every rank: each rank computes its contiguous share, then the shares are summed into place. With
/// `softmax` false, the raw outputs (a regression's predictions).
public func predictProbabilities(model: Sequential, dataset: ImageDataset, normalization: Normalization,
                                 communicator: Communicator, batchSize: Int, softmax: Bool = true,
                                 testTimeAugmentation: TestTimeAugmentation = .none) throws -> [Float] {
    let classes = model.outputCount
    var probabilities = [Float](repeating: 0, count: dataset.count * classes)
    try forEachShareBatch(model: model, dataset: dataset.normalized(by: normalization), communicator: communicator,
                          batchSize: batchSize, testTimeAugmentation: testTimeAugmentation) { start, count, logits, _ in
        for s in 0..<count where !softmax {
            for c in 0..<classes { probabilities[(start + s) * classes + c] = logits[s * classes + c] }
        }
        if softmax {
            probabilities.withUnsafeMutableBufferPointer {
                softmaxRows(logits, rows: count, classes: classes, into: $0.baseAddress! + start * classes)
            }
        }
    }
    try communicator.allreduce(&probabilities, .sum)
    return probabilities
}

/// Class probabilities of `rows` rows of logits (rows, classes), each row's softmax (max subtracted first).
public func softmaxRows(_ logits: UnsafePointer<Float>, rows: Int, classes: Int, into probabilities: UnsafeMutablePointer<Float>) {
    for s in 0..<rows {
        let row = logits + s * classes
        var maximum = row[0]
        for c in 1..<classes { maximum = max(maximum, row[c]) }
        var total: Float = 0
        for c in 0..<classes { total += expf(row[c] - maximum) }
        for c in 0..<classes { probabilities[s * classes + c] = expf(row[c] - maximum) / total }
    }
}
