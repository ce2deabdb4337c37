import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// How gradients may travel between ranks (`--gradient-sum`).
public enum SumMethod: String, CaseIterable, Sendable {
    /// Shared memory between the ranks of a host where the communicator can (MPI, several ranks on a
    /// host, every host with as many), allreduce otherwise.
    case auto
    /// Always the communicator's allreduce (the escape hatch, and the before/after comparison).
    case allreduce
}

/// How gradients cross the network between hosts (`--wire`). fp32 is exact; fp16 and bf16 halve the
/// bytes and round every partial sum to 16 bits, so N ranks no longer give 1 rank's parameters exactly.
public enum WireFormat: String, CaseIterable, Sendable {
    case fp32, fp16, bf16
}

/// Float storage that every rank fills with its contribution and then sums over all ranks in place.
///
/// The gradient arena lives in one (`Sequential.moveGradients`), so backward writes straight into
/// the memory the sum reads: under MPI that is memory shared by the ranks of a host, and the sum needs
/// no copies in or out and no message passing inside a host.
public protocol SumArena: AnyObject {
    /// This rank's floats.
    var buffer: UnsafeMutableBufferPointer<Float> { get }
    /// How the sum travels, for logs: "local", "allreduce", "shared memory (4 ranks per host)", …
    var summary: String { get }
    /// buffer ← Σ_ranks buffer, the same bits on every rank. Returns true when every result is finite
    /// (a NaN or Inf on any rank survives the sum, so every rank returns the same answer).
    ///
    /// - Parameter enteringBucket: told the index of each piece before it is exchanged (hang reports).
    func sumOverRanks(enteringBucket: (Int) -> Void) throws -> Bool

    /// Whether the sum has a part between hosts that buckets can start early (`startBucket`).
    var hasSumBetweenHosts: Bool { get }
    /// Splits the sum between hosts into buckets: ranges of the arena in the order backward completes
    /// them (the last layers' first). Called once, on every rank alike.
    func useBuckets(_ ranges: [Range<Int>])
    /// Starts the sum of bucket `index` (and of any earlier one not yet started) while backward goes on.
    /// Collective over the host: every rank starts the same buckets in the same order.
    func startBucket(_ index: Int) throws
    /// Lets MPI move the started buckets along (called between layers).
    func progress()
}

extension SumArena {
    public var hasSumBetweenHosts: Bool { false }
    public func useBuckets(_ ranges: [Range<Int>]) {}
    public func startBucket(_ index: Int) throws {}
    public func progress() {}
}

/// The portable arena: private memory, summed with the communicator's allreduce in pieces of
/// `bucketElements`, then checked for finiteness (one read-only pass).
public final class AllreduceSumArena: SumArena {
    public let buffer: UnsafeMutableBufferPointer<Float>
    /// The mapping behind `buffer` (at least one float, so that an empty arena has an address): zeroed huge pages
    /// that cost no memory until written (a sharded rank writes little of them; `distrain_map_zeroed`).
    private let storage: UnsafeMutablePointer<Float>
    let communicator: Communicator
    let bucketElements: Int
    /// Why the shared-memory arena could not be used, for `summary` (nil when it was not tried).
    let fallbackReason: String?

    public init(communicator: Communicator, count: Int, bucketElements: Int, fallbackReason: String? = nil) {
        precondition(count >= 0 && bucketElements > 0)
        self.communicator = communicator
        self.bucketElements = bucketElements
        self.fallbackReason = fallbackReason
        guard let mapped = distrain_map_zeroed(max(count, 1) * MemoryLayout<Float>.stride) else {
            fatalError("out of memory mapping \(count) floats")
        }
        storage = mapped
        buffer = UnsafeMutableBufferPointer(start: storage, count: count)
    }

    deinit { distrain_unmap(storage, max(buffer.count, 1) * MemoryLayout<Float>.stride) }

    public var summary: String {
        communicator.size == 1 ? "local" : fallbackReason.map { "allreduce (\($0))" } ?? "allreduce"
    }

    public func sumOverRanks(enteringBucket: (Int) -> Void) throws -> Bool {
        enteringBucket(0)
        if communicator.size > 1 {
            try forEachBucket(of: 0..<buffer.count, bucketElements: bucketElements, enteringBucket: enteringBucket) { piece in
                try communicator.allreduce(UnsafeMutableBufferPointer(rebasing: buffer[piece]), .sum)
            }
        }
        return distrain_all_finite(buffer.baseAddress!, buffer.count) != 0
    }
}

/// Runs `body` on consecutive pieces of at most `bucketElements` of `range`, telling `enteringBucket`
/// the index of every piece after the first (the callers announce bucket 0 before their first wait).
func forEachBucket(of range: Range<Int>, bucketElements: Int, enteringBucket: (Int) -> Void,
                   _ body: (Range<Int>) throws -> Void) rethrows {
    var offset = range.lowerBound, bucket = 0
    while offset < range.upperBound {
        if bucket > 0 { enteringBucket(bucket) }
        let end = min(offset + bucketElements, range.upperBound)
        try body(offset..<end)
        offset = end
        bucket += 1
    }
}
