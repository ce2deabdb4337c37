/// The validation metric that model selection watches (`--monitor`).
public enum MonitorMetric: String, Codable, Sendable, CaseIterable {
    case valLoss = "val_loss"
    case valAccuracy = "val_accuracy"

    /// The objective's metric it watches on the validation split.
    public var metricName: String { self == .valLoss ? "loss" : "accuracy" }
}

/// Keras' EarlyStopping and ReduceLROnPlateau as state the Trainer carries from epoch to epoch. Every rank
/// feeds it the same reduced validation numbers, so every rank takes the same decisions (no rank stops
/// alone); it is saved in checkpoints, so a resumed run keeps its patience.
public struct SelectionState: Codable, Sendable, Equatable {
    /// The best monitored score so far (higher is better) and the epoch (1-based) it came from.
    public var bestScore: Double?
    public var bestEpoch: Int = 0
    /// Epochs since the monitored metric last improved.
    public var epochsWithoutImprovement = 0
    /// Epochs since the last improvement or the last rate reduction (the plateau's own counter).
    public var plateauEpochs = 0
    /// What the plateau schedule multiplies the base rate by.
    public var learningRateScale: Float = 1

    public init() {}

    /// Takes an epoch's monitored score. Returns whether it is the best so far.
    @discardableResult
    mutating func record(score: Double, epoch: Int) -> Bool {
        if let best = bestScore, !(score > best) {
            epochsWithoutImprovement += 1
            plateauEpochs += 1
            return false
        }
        bestScore = score
        bestEpoch = epoch
        epochsWithoutImprovement = 0
        plateauEpochs = 0
        return true
    }

    /// Applies `--schedule plateau` after an epoch: returns the new scale when it reduced the rate.
    mutating func reduceOnPlateau(factor: Float, patience: Int, baseRate: Float, minimumRate: Float) -> Float? {
        guard plateauEpochs >= patience else { return nil }
        plateauEpochs = 0
        let reduced = max(learningRateScale * factor, minimumRate / baseRate)
        guard reduced < learningRateScale else { return nil }
        learningRateScale = reduced
        return reduced
    }

    /// Whether `--early-stop PATIENCE` ends the run now.
    func shouldStop(patience: Int?) -> Bool { patience.map { epochsWithoutImprovement >= $0 } ?? false }
}
