import Foundation

/// N ranks as N threads of one process, for tests and for single-process local mode.
///
/// Reductions combine the ranks' buffers in rank order, so every rank gets bitwise the same result.
public final class InProcessGroup: @unchecked Sendable {
    /// One communicator per rank; hand communicators[r] to the thread that plays rank r.
    public private(set) var communicators: [InProcessCommunicator] = []
    let size: Int
    let condition = NSCondition()
    var arrived = 0
    var generation = 0
    /// Each rank's buffer for the collective in progress (a raw allocation: ranks write their own
    /// entries concurrently, which a Swift Array would not allow).
    let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Each rank's slice of a reduction's result, for the others to copy.
    let results: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var abortMessage: (rank: Int, message: String)?
    /// How long a rank waits for the others before giving up.
    let timeoutSeconds: Double

    public init(size: Int, timeoutSeconds: Double = 600) {
        precondition(size > 0, "a group needs at least one rank, got \(size)")
        self.size = size
        self.timeoutSeconds = timeoutSeconds
        slots = .allocate(capacity: size)
        slots.initialize(repeating: nil, count: size)
        results = .allocate(capacity: size)
        results.initialize(repeating: nil, count: size)
        communicators = (0..<size).map { InProcessCommunicator(group: self, rank: $0) }
    }

    deinit {
        slots.deallocate()
        results.deallocate()
    }

    /// Runs `body(communicator)` on `size` threads at once and returns their results by rank.
    public func run<R>(_ body: @escaping (InProcessCommunicator) throws -> R) throws -> [R] {
        let results = ResultSlots<R>(count: size)
        let finished = DispatchSemaphore(value: 0)
        // One real thread per rank: concurrentPerform caps its width at the core count, and a rank
        // that never starts would leave the others waiting in their first collective.
        for rank in 0..<size {
            let thread = Thread { [self] in
                let result = Result { try body(communicators[rank]) }
                if case let .failure(error) = result { markAborted(rank: rank, message: "\(error)") }
                results.store(result, at: rank)
                finished.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<size { finished.wait() }
        return try results.values.map { try $0!.get() }
    }

    /// Waits until all ranks arrive; throws if a rank aborted or the deadline passes.
    func barrier(rank: Int, operation: String) throws {
        condition.lock()
        defer { condition.unlock() }
        if let abortMessage { throw CollectiveError.peerAborted(rank: abortMessage.rank, message: abortMessage.message) }
        let myGeneration = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
            return
        }
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        while generation == myGeneration {
            if let abortMessage { throw CollectiveError.peerAborted(rank: abortMessage.rank, message: abortMessage.message) }
            if !condition.wait(until: deadline) && generation == myGeneration {
                throw CollectiveError.timedOut(operation: operation, seconds: timeoutSeconds)
            }
        }
    }

    func markAborted(rank: Int, message: String) {
        condition.lock()
        if abortMessage == nil { abortMessage = (rank, message) }
        condition.broadcast()
        condition.unlock()
    }
}

/// One rank of an `InProcessGroup`.
public final class InProcessCommunicator: Communicator, @unchecked Sendable {
    unowned let group: InProcessGroup
    public let rank: Int

    init(group: InProcessGroup, rank: Int) {
        self.group = group
        self.rank = rank
    }

    /// A group of one: the local, MPI-free mode.
    public static func single() -> InProcessCommunicator {
        let group = InProcessGroup(size: 1)
        return withExtendedLifetime(group) { group.communicators[0].retainingGroup(group) }
    }

    /// This rank's slice of a reduction's result (grown to the largest slice, then reused: a steady
    /// training step allocates nothing).
    private var scratch: UnsafeMutableRawPointer?
    private var scratchBytes = 0

    deinit { scratch?.deallocate() }

    private var strongGroup: InProcessGroup?
    private func retainingGroup(_ group: InProcessGroup) -> InProcessCommunicator {
        strongGroup = group
        return self
    }

    public var size: Int { group.size }
    public var hostName: String { ProcessInfo.processInfo.hostName }
    public var localRank: Int { rank }
    public var localSize: Int { group.size }
    public var kind: String { group.size == 1 ? "local" : "in-process" }

    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation) throws {
        if group.size == 1 { return }
        let count = buffer.count, size = group.size
        // Rank r combines slice r of every buffer, element by element in rank order (so the result does not
        // depend on who computes it), then every rank copies all slices: the work is split, the bits identical.
        let share = (count + size - 1) / size, lower = min(rank * share, count), upper = min(lower + share, count)
        let bytes = max(share, 1) * MemoryLayout<T>.stride
        if bytes > scratchBytes {
            scratch?.deallocate()
            scratch = .allocate(byteCount: bytes, alignment: 64)
            scratchBytes = bytes
        }
        let mine = scratch!.assumingMemoryBound(to: T.self)
        let slots = group.slots  // read once: each access to the unowned group retains and releases it
        slots[rank] = UnsafeMutableRawPointer(buffer.baseAddress)
        group.results[rank] = scratch
        try group.barrier(rank: rank, operation: "allreduce")
        // The concrete types get concrete loops: through the protocol requirement this method runs
        // unspecialized, and a generic `+=` per element cost ~8% of a 2-rank CNN step.
        let range = lower..<upper, output = UnsafeMutableRawPointer(mine)
        if T.self == Float.self {
            Self.combine(slots, ranks: size, range, into: output, as: Float.self, operation)
        } else if T.self == Double.self {
            Self.combine(slots, ranks: size, range, into: output, as: Double.self, operation)
        } else {
            Self.combine(slots, ranks: size, range, into: output, as: T.self, operation)
        }
        try group.barrier(rank: rank, operation: "allreduce")  // every slice is combined; nobody reads the inputs again
        for r in 0..<size {
            let from = min(r * share, count), to = min(from + share, count)
            if to > from { (buffer.baseAddress! + from).update(from: group.results[r]!.assumingMemoryBound(to: T.self), count: to - from) }
        }
        try group.barrier(rank: rank, operation: "allreduce")  // nobody reuses a slice before all copied it
    }

    /// output[i - lower] = slot 0[i] ⊕ slot 1[i] ⊕ … for i in `range`, in rank order (the same bits
    /// whichever rank computes it). No allocation: it runs in every training step.
    @inline(__always)
    private static func combine<T: CollectiveScalar>(_ slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>, ranks: Int,
                                                     _ range: Range<Int>, into output: UnsafeMutableRawPointer,
                                                     as: T.Type, _ operation: ReduceOperation) {
        let mine = output.assumingMemoryBound(to: T.self), count = range.count
        mine.update(from: slots[0]!.assumingMemoryBound(to: T.self) + range.lowerBound, count: count)
        for r in 1..<ranks {
            let source = UnsafePointer(slots[r]!.assumingMemoryBound(to: T.self) + range.lowerBound)
            switch operation {
            case .sum: for i in 0..<count { mine[i] += source[i] }
            case .max: for i in 0..<count { mine[i] = Swift.max(mine[i], source[i]) }
            }
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        if group.size == 1 { return }
        if rank == root { group.slots[root] = buffer.baseAddress }
        try group.barrier(rank: rank, operation: "broadcast")
        if rank != root, buffer.count > 0 {
            buffer.baseAddress!.copyMemory(from: group.slots[root]!, byteCount: buffer.count)
        }
        try group.barrier(rank: rank, operation: "broadcast")
    }

    public func barrier() throws {
        try group.barrier(rank: rank, operation: "barrier")
    }

    public func abort(message: String, exitCode: Int32) -> Never {
        group.markAborted(rank: rank, message: message)
        FileHandle.standardError.write(Data("distrain: error: \(message)\n".utf8))
        exit(exitCode)
    }

    public func finalize() {}
}

/// Per-rank results written by the rank threads under a lock.
private final class ResultSlots<R>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Result<R, Error>?]

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func store(_ result: Result<R, Error>, at index: Int) {
        lock.lock(); values[index] = result; lock.unlock()
    }
}
