import Collectives
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
    /// Seconds spent summing over ranks since the last `takeCommunicationSeconds()`.
    private var communicationSeconds = 0.0
    /// Told which bucket is being reduced, for the watchdog's messages.
    var tracker: PhaseTracker?

    /// Moves `store`'s gradients into a new sum arena. Collective: every rank calls it at the same point.
    public init(communicator: Communicator, store: ParameterStore, bucketMegabytes: Double, method: SumMethod = .auto) throws {
        self.communicator = communicator
        bucketElements = max(1024, Int(bucketMegabytes * 1_048_576 / 4))
        arena = try communicator.makeSumArena(count: store.count, bucketElements: bucketElements, method: method)
        store.moveGradients(to: arena.buffer, owner: arena)
    }

    /// In-place: gradients ← Σ_ranks gradients. Returns true when every summed gradient is finite.
    @discardableResult
    public func synchronize() throws -> Bool {
        let start = monotonicSeconds()
        let finite = try arena.sumOverRanks { bucket in
            tracker?.enter(.gradientSum, bucket: bucket)
        }
        if communicator.size > 1 { communicationSeconds += monotonicSeconds() - start }
        return finite
    }

    /// Communication time accumulated since the last call, and resets it.
    public func takeCommunicationSeconds() -> Double {
        defer { communicationSeconds = 0 }
        return communicationSeconds
    }
}
