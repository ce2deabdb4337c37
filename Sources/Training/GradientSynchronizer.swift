import Collectives
import Layers
import Tensors

/// Sums the gradients over ranks, so every rank holds the exact mean gradient over the global batch
/// whatever the world size: each rank's backward already produced its share of that mean (the loss
/// gradient carries 1 / global sample count), so the sum is a plain sum with no scaling pass.
///
/// The gradients live in the communicator's sum arena (under MPI, memory shared by the ranks of a host),
/// moved there once at construction: backward writes straight into the memory the sum works in.
public final class GradientSynchronizer {
    let communicator: Communicator
    let arena: SumArena
    /// Floats per allreduce call between hosts (and in the portable arena).
    public let bucketElements: Int
    /// Told which bucket is being reduced: the watchdog's messages and the phase clock.
    let tracker: PhaseTracker

    /// Moves `model`'s gradients into a new sum arena. Collective: every rank calls it at the same point.
    public init(communicator: Communicator, model: Sequential, bucketMegabytes: Double, method: SumMethod = .auto,
                wire: WireFormat = .fp32, tracker: PhaseTracker) throws {
        self.communicator = communicator
        self.tracker = tracker
        bucketElements = max(1024, Int(bucketMegabytes * 1_048_576 / 4))
        arena = try communicator.makeSumArena(count: model.parameters.count, bucketElements: bucketElements, method: method, wire: wire)
        model.moveGradients(to: arena.buffer, owner: arena)
    }

    /// Whether backward should check each layer's gradients for NaN/Inf as it writes them: alone there is
    /// no sum whose pass could check them, and backward has them in cache.
    public var finitenessIsCheckedInBackward: Bool { communicator.size == 1 }

    /// In place: gradients ← Σ_ranks gradients; returns true when every summed gradient is finite.
    ///
    /// One rank has nothing to sum and returns backward's own verdict, `finiteAfterBackward`; with more,
    /// the sum's pass checks (a NaN or Inf on any rank survives the sum, so every rank sees it).
    public func sum(finiteAfterBackward: Bool) throws -> Bool {
        if communicator.size == 1 { return finiteAfterBackward }
        return try arena.sumOverRanks { bucket in
            tracker.enter(.gradientSum, bucket: bucket)
        }
    }
}
