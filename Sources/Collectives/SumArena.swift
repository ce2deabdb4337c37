import CKernels

/// How gradients may travel between ranks (`--gradient-sum`).
public enum SumMethod: String, CaseIterable, Sendable {
    /// Shared memory between the ranks of a host where the communicator can (MPI, several ranks on a
    /// host, every host with as many), allreduce otherwise.
    case auto
    /// Always the communicator's allreduce (the escape hatch, and the before/after comparison).
    case allreduce
}

/// Float storage that every rank fills with its contribution and then sums over all ranks in place.
///
/// The gradient arena lives in one (`ParameterStore.moveGradients`), so backward writes straight into
/// the memory the sum reads: under MPI that is memory shared by the ranks of a host, and the sum needs
/// no copies in or out and no message passing inside a host.
public protocol SumArena: AnyObject {
    /// This rank's floats.
    var buffer: UnsafeMutableBufferPointer<Float> { get }
    /// How the sum travels, for logs: "allreduce", "shared memory (4 ranks on 1 host)", …
    var summary: String { get }
    /// buffer ← scale · Σ_ranks buffer, the same bits on every rank. Returns true when every result is
    /// finite (a NaN or Inf on any rank survives the sum, so every rank returns the same answer).
    ///
    /// - Parameter enteringBucket: told the index of each piece before it is exchanged (hang reports).
    func sumOverRanks(scale: Float, enteringBucket: (Int) -> Void) throws -> Bool
}

/// The portable arena: private memory, summed with the communicator's allreduce in pieces of
/// `bucketElements`, then scaled (one pass that also checks finiteness).
public final class AllreduceSumArena: SumArena {
    public let buffer: UnsafeMutableBufferPointer<Float>
    /// The allocation behind `buffer` (at least one float, so that an empty arena has an address).
    private let storage: UnsafeMutableBufferPointer<Float>
    let communicator: Communicator
    let bucketElements: Int
    /// Why a faster arena was not used, for `summary` (nil: it was not asked for or not possible).
    let fallbackReason: String?

    public init(communicator: Communicator, count: Int, bucketElements: Int, fallbackReason: String? = nil) {
        precondition(count >= 0 && bucketElements > 0)
        self.communicator = communicator
        self.bucketElements = bucketElements
        self.fallbackReason = fallbackReason
        storage = .allocate(capacity: max(count, 1))
        storage.initialize(repeating: 0)
        buffer = UnsafeMutableBufferPointer(rebasing: storage[0..<count])
    }

    deinit { storage.deallocate() }

    public var summary: String {
        communicator.size == 1 ? "local" : fallbackReason.map { "allreduce (\($0))" } ?? "allreduce"
    }

    public func sumOverRanks(scale: Float, enteringBucket: (Int) -> Void) throws -> Bool {
        enteringBucket(0)
        if communicator.size > 1 {
            var offset = 0, bucket = 0
            while offset < buffer.count {
                if bucket > 0 { enteringBucket(bucket) }
                let count = min(bucketElements, buffer.count - offset)
                try communicator.allreduce(UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + count)]), .sum)
                offset += count
                bucket += 1
            }
        }
        return distrain_scale_all_finite(buffer.baseAddress!, buffer.count, scale) != 0
    }
}
