/// The distrain release that wrote a checkpoint.
public let distrainVersion = "0.2.0"

/// state.json: where training stood when a checkpoint was written.
public struct CheckpointState: Codable, Sendable, Equatable {
    /// Bumped when the layout changes incompatibly.
    public var formatVersion = 1
    public var distrainVersion: String
    /// The epoch to continue in (0-based): epochs before it are complete.
    public var epoch: Int
    /// The first global batch of `epoch` not yet trained (0 at an epoch boundary).
    public var nextBatch: Int
    /// Optimizer updates taken so far.
    public var globalStep: Int
    /// Position in the epoch's global sample order: samples already trained in `epoch`.
    public var samplesDoneInEpoch: Int
    /// Every random choice (init, shuffling, dropout, augmentation) is a pure function of this seed
    /// and (epoch, sample index): the generator state that resuming needs.
    public var seed: UInt64
    /// Running sums of the unfinished epoch, reduced over ranks (loss, correct, samples).
    public var partialLossSum: Double
    public var partialCorrect: Int
    public var partialSeen: Int
    /// Test accuracy after the last completed epoch, when this checkpoint ends one.
    public var testAccuracy: Double?
    public var configuration: TrainingConfiguration
    public var worldSize: Int
    /// Seconds since the Unix epoch when written.
    public var writtenAt: Double
    /// What picks `best` (higher is better): the monitored validation score, or the test accuracy.
    public var selectionScore: Double? = nil
    /// Early stopping's and the plateau schedule's state, so a resumed run keeps its patience.
    public var selection: SelectionState? = nil
}

extension CheckpointState {
    /// Largest position a real run can reach (2^40 steps or samples); anything beyond is corruption,
    /// and keeping below it means no arithmetic on these values can overflow.
    static let largestPosition = 1 << 40

    /// What is out of range in a state.json read from disk, or nil. Checked before any value is used;
    /// consistency with the run (steps per epoch) is checked when resuming.
    var rangeProblem: String? {
        let positions = [("epoch", epoch), ("nextBatch", nextBatch), ("globalStep", globalStep),
                         ("samplesDoneInEpoch", samplesDoneInEpoch), ("partialSeen", partialSeen), ("partialCorrect", partialCorrect)]
        if let (name, value) = positions.first(where: { $0.1 < 0 || $0.1 > Self.largestPosition }) {
            return "field \(name) is \(value), outside 0...\(Self.largestPosition)"
        }
        if !(partialLossSum.isFinite && partialLossSum >= 0) { return "partialLossSum \(partialLossSum) is not a finite non-negative sum" }
        if !(1...(1 << 24)).contains(worldSize) { return "worldSize \(worldSize) is outside 1...16777216" }
        if let testAccuracy, !(testAccuracy >= 0 && testAccuracy <= 1) { return "testAccuracy \(testAccuracy) is outside [0, 1]" }
        if let selectionScore, !selectionScore.isFinite { return "selectionScore is not finite" }
        if let s = selection {
            if s.epochsWithoutImprovement < 0 || s.plateauEpochs < 0 || s.bestEpoch < 0 || s.bestEpoch > Self.largestPosition
                || s.epochsWithoutImprovement > Self.largestPosition || s.plateauEpochs > Self.largestPosition {
                return "selection counters are out of range"
            }
            if !(s.learningRateScale > 0 && s.learningRateScale <= 1) {
                return "selection.learningRateScale \(s.learningRateScale) is outside (0, 1]"
            }
        }
        let c = configuration
        if !(1...(1 << 24)).contains(c.globalBatchSize) {
            return "configuration.globalBatchSize \(c.globalBatchSize) is outside 1...16777216"
        }
        if c.epochs < 0 || c.epochs > 10_000_000 { return "configuration.epochs \(c.epochs) is outside 0...10000000" }
        if let limit = c.trainLimit, limit < 1 || limit > Self.largestPosition {
            return "configuration.trainLimit \(limit) is out of range"
        }
        return nil
    }
}
