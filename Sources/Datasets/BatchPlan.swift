import Tensors

/// Which samples each rank processes in each step of one epoch.
///
/// Every rank derives the same global permutation from (seed, epoch); global batch i is
/// order[i*B ..< min((i+1)*B, n)] and rank r takes its contiguous share of it. The last batch may be
/// short, and the global batch need not divide by the world size: shares differ by at most one.
public struct BatchPlan: Sendable {
    public let sampleCount: Int
    public let globalBatchSize: Int
    public let worldSize: Int
    public let rank: Int
    /// The epoch's permutation of 0..<sampleCount (or the identity when not shuffled).
    public let order: [Int32]

    public init(sampleCount: Int, globalBatchSize: Int, worldSize: Int, rank: Int, seed: UInt64, epoch: Int, shuffle: Bool = true) {
        precondition(globalBatchSize > 0 && worldSize > 0 && rank >= 0 && rank < worldSize,
                     "bad plan: batch \(globalBatchSize), world \(worldSize), rank \(rank)")
        self.sampleCount = sampleCount
        self.globalBatchSize = globalBatchSize
        self.worldSize = worldSize
        self.rank = rank
        order = shuffle ? seededPermutation(count: sampleCount, seed: seed, epoch: epoch)
                        : (0..<sampleCount).map { Int32($0) }
    }

    /// Steps in the epoch (the last may be short).
    public var batchCount: Int { (sampleCount + globalBatchSize - 1) / globalBatchSize }

    /// Positions in `order` of global batch `index`.
    public func globalRange(batch index: Int) -> Range<Int> {
        let start = index * globalBatchSize
        return start..<min(start + globalBatchSize, sampleCount)
    }

    /// Positions in `order` of this rank's share of global batch `index`.
    public func localRange(batch index: Int) -> Range<Int> {
        let global = globalRange(batch: index)
        let share = shardRange(count: global.count, parts: worldSize, part: rank)
        return (global.lowerBound + share.lowerBound)..<(global.lowerBound + share.upperBound)
    }

    /// Largest per-rank share of any batch (buffers are sized by it).
    public var largestLocalBatch: Int { (globalBatchSize + worldSize - 1) / worldSize }
}

/// Part `part` of `parts` contiguous, nearly equal pieces of 0..<count (sizes differ by at most one).
public func shardRange(count: Int, parts: Int, part: Int) -> Range<Int> {
    let lower = count * part / parts, upper = count * (part + 1) / parts
    return lower..<upper
}
