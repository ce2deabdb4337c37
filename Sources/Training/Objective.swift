import Datasets
import Layers

/// One named number an objective computes ("loss", "accuracy", "rmse", "perplexity").
public struct Metric: Sendable, Equatable {
    /// The name in records, metrics files (`train_NAME`, `val_NAME`, `test_NAME`) and `--monitor`.
    public let name: String
    public let value: Double
    /// Whether a larger value is a better model (accuracy) or a worse one (loss).
    public let higherIsBetter: Bool
    /// A fraction shown as a percentage (accuracy), else a plain number.
    public let isFraction: Bool

    public init(_ name: String, _ value: Double, higherIsBetter: Bool = false, isFraction: Bool = false) {
        self.name = name
        self.value = value
        self.higherIsBetter = higherIsBetter
        self.isFraction = isFraction
    }

    /// The value as a score where higher is better.
    public var score: Double { higherIsBetter ? value : -value }
}

extension Array where Element == Metric {
    /// The value of the metric called `name`, if present.
    public func value(_ name: String) -> Double? { first { $0.name == name }?.value }
}

/// What a model is trained to do: the output it must produce, its loss and gradient, the sums an exact
/// evaluation reduces over ranks and the named metrics made from them. The Trainer knows nothing of
/// classes or targets; it asks its objective. A new kind of task is one conforming type.
public protocol Objective: Sendable {
    /// The task's name, recorded in checkpoints ("classification", "regression").
    var task: String { get }
    /// Outputs per sample the model must end in ([classes], [1], [T, vocabulary]).
    var outputShape: [Int] { get }
    /// Targets per sample the loss is averaged over (1; T for a sequence, K for K tags): the gradient's
    /// scale is 1 / (global samples × this).
    var targetsPerSample: Int { get }
    /// The training loss of `rows` samples: Σ loss over the rows' targets, and the count of correct
    /// predictions where that means something (else 0). With `dOutputs`, also dLoss/dOutputs ×
    /// `gradientScale` (training passes 1 / the global count of targets, so the sum over ranks is the
    /// exact mean gradient). Allocates nothing.
    func loss(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int,
              dOutputs: UnsafeMutablePointer<Float>?, gradientScale: Float) -> LossTotals
    /// The running training numbers from the reduced sums of `loss` over `targetCount` targets.
    func trainingMetrics(lossSum: Double, correct: Double, targetCount: Double) -> [Metric]
    /// How many Doubles `accumulate` adds into (the vector one evaluation reduces over ranks in one call).
    var evaluationSumCount: Int { get }
    /// Adds the evaluation sums of `rows` samples into `sums` (counts stay exact integers in Double).
    func accumulate(outputs: UnsafePointer<Float>, targets: TargetBuffer, rows: Int, into sums: UnsafeMutablePointer<Double>)
    /// The whole dataset's result from its reduced sums.
    func evaluation(sums: [Double]) -> EvaluationResult
    /// The metric that picks `best` when there is no validation split (accuracy; a regression's loss).
    var selectionMetric: String { get }
    /// What a checkpoint records to rebuild this objective (the task and its settings).
    var checkpointMetadata: [String: String] { get }
    /// One sample's outputs as `predict` and `serve` show them: up to `topK` (name, value) pairs, best first —
    /// a classifier's classes with their probabilities, a regression's one value under its target's name.
    /// `names` are the outputs' names (`TargetKind.names`).
    func present(_ outputs: UnsafePointer<Float>, names: [String], topK: Int) -> [(name: String, value: Float)]
    /// The JSON keys `serve` shows a presented pair under ("class", "probability"; "name", "value").
    var presentationKeys: (name: String, value: String) { get }
    /// Whether each answer is simply right or wrong (what accuracy and McNemar's test count), as a classifier's.
    var judgesAnswers: Bool { get }
}

extension Objective {
    /// One target per sample, or one per position of a (T, …) output.
    public var targetsPerSample: Int { outputShape.count > 1 ? outputShape[0] : 1 }
    /// Outputs per sample.
    public var outputCount: Int { outputShape.reduce(1, *) }
    public var checkpointMetadata: [String: String] { [:] }
    public var presentationKeys: (name: String, value: String) { ("name", "value") }
    public var judgesAnswers: Bool { false }

    /// The outputs as they are, the largest first (ties: the lower index), named.
    public func present(_ outputs: UnsafePointer<Float>, names: [String], topK: Int) -> [(name: String, value: Float)] {
        rankedOutputs(outputs, count: outputCount, topK: topK).map { (names[$0], outputs[$0]) }
    }
}

/// Indices of the `topK` largest of `count` values, largest first, the lower index first on ties.
public func rankedOutputs(_ values: UnsafePointer<Float>, count: Int, topK: Int) -> [Int] {
    Array((0..<count).sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(topK))
}

/// The objective a dataset's targets call for: classes → cross-entropy, a number → mean squared error.
public func defaultObjective(for targets: TargetKind, labelSmoothing: Float = 0) -> any Objective {
    switch targets {
    case let .classes(names): return ClassificationObjective(classes: names.count, labelSmoothing: labelSmoothing)
    case .value: return RegressionObjective()
    case .values, .tokens: preconditionFailure("\(targets) targets need an objective of their own (Trainer's objective:)")
    }
}
