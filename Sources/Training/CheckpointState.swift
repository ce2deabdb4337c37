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
}
