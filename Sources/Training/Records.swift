import Datasets

/// What the coordinator knows when training starts.
public struct StartRecord: Sendable {
    public var dataset: String
    public var model: String
    public var modelSummary: String
    public var parameters: Int
    public var worldSize: Int
    public var globalBatch: Int
    public var perRankBatch: Int
    /// `--accumulate`: micro-batches per step (1: none).
    public var microBatches = 1
    /// `--shard`, when the run shards ("optimizer").
    public var sharding: String?
    public var optimizer: String
    public var learningRate: Float
    public var schedule: String
    public var epochs: Int
    public var seed: UInt64
    /// Training augmentation (random crop + flip) on or off.
    public var augment: Bool
    /// Zero pixels padded on each side before the random crop (0: flips only).
    public var augmentPadding: Int = 0
    /// `--tta`: what every evaluation adds to scoring the image as it is.
    public var testTimeAugmentation: TestTimeAugmentation = .none
    /// `--eval-every`: epochs between evaluations (the last epoch is always evaluated).
    public var evaluationInterval = 1
    public var threadsPerRank: Int
    public var blas: String
    public var communicator: String
    /// How gradients are summed over ranks (SumArena.summary).
    public var gradientSum: String
    public var trainSamples: Int
    public var testSamples: Int
    public var stepsPerEpoch: Int
    /// The objective's task and the names of its training and evaluation metrics (the metrics files' columns).
    public var task = "classification"
    public var trainingMetricNames = ["loss", "accuracy"]
    public var evaluationMetricNames = ["loss", "accuracy"]
}

/// One epoch's reduced numbers: each split's metrics as its objective names them.
public struct EpochRecord: Sendable {
    public var epoch: Int
    public var epochs: Int
    /// The running training metrics over the epoch (loss first).
    public var train: [Metric]
    /// The test set's metrics, when it was scored this epoch (always without a validation split).
    public var test: [Metric]?
    /// The validation split's metrics, with `--val-split` or `--kfold`.
    public var validation: [Metric]? = nil
    /// Wall seconds of the epoch, training and evaluation.
    public var seconds: Double
    /// Training samples per second over the training part of the epoch.
    public var samplesPerSecond: Double
    /// Targets per sample (1; the window length for tokens): positions/s = samples/s × this.
    public var positionsPerSample = 1
    /// Model FLOPs utilization: training FLOP/s over the ranks' measured SGEMM peak (language models; else nil).
    public var modelFlopsUtilization: Double?
    /// Max over ranks of the time spent computing (forward, loss, backward, optimizer).
    public var computeSeconds: Double
    /// Max over ranks of the time spent summing gradients over ranks (waits for the others included).
    public var communicationSeconds: Double
    /// Max over ranks of the time spent preparing batches.
    public var dataSeconds: Double
    public var learningRate: Float
    /// Updates dropped this epoch by --on-nonfinite skip.
    public var skippedSteps: Int = 0

    public var trainLoss: Double { train.value("loss") ?? 0 }
    public var testLoss: Double? { test?.value("loss") }
    public var validationLoss: Double? { validation?.value("loss") }
}

/// The end of a run: the final evaluation.
public struct FinalRecord: Sendable {
    public var result: EvaluationResult
    public var classNames: [String]
    public var seconds: Double

    public var testLoss: Double { result.meanLoss }
}

/// An evaluation between epochs (`--eval-every-steps`): the validation split, else the test set.
public struct StepEvaluationRecord: Sendable {
    public var step: Int
    public var epoch: Int
    /// "val" or "test".
    public var split: String
    public var metrics: [Metric]
}

/// Receives the coordinator's view of training. Only rank 0 has one.
public protocol TrainingReporter: AnyObject {
    /// An evaluation every `--eval-every-steps` steps inside an epoch.
    func evaluatedAtStep(_ record: StepEvaluationRecord) throws
    func started(_ record: StartRecord) throws
    /// Called after every step with the coordinator's own running numbers (not reduced).
    func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?)
    func epochCompleted(_ record: EpochRecord) throws
    func finished(_ record: FinalRecord) throws
    /// A checkpoint was written completely (coordinator only).
    func checkpointWritten(path: String, seconds: Double)
}

extension TrainingReporter {
    public func checkpointWritten(path: String, seconds: Double) {}
    public func evaluatedAtStep(_ record: StepEvaluationRecord) throws {}
}
