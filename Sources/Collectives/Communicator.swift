/// A reduction applied elementwise across ranks.
public enum ReduceOperation: Sendable {
    case sum, max
}

/// Element types the collectives move: Float (gradients), Double (metrics), Int64 (exact counts).
public protocol CollectiveScalar: Comparable, AdditiveArithmetic {
    static var scalarKind: ScalarKind { get }
}

/// The wire type of a collective buffer.
public enum ScalarKind: Sendable { case float, double, int64 }

extension Float: CollectiveScalar { public static var scalarKind: ScalarKind { .float } }
extension Double: CollectiveScalar { public static var scalarKind: ScalarKind { .double } }
extension Int64: CollectiveScalar { public static var scalarKind: ScalarKind { .int64 } }

/// Why a collective failed.
public enum CollectiveError: Error, CustomStringConvertible {
    /// The underlying library reported an error.
    case library(call: String, message: String)
    /// A peer gave up (in-process groups): the job is ending.
    case peerAborted(rank: Int, message: String)
    /// No peer arrived before the deadline.
    case timedOut(operation: String, seconds: Double)
    /// One or more ranks failed a phase; every rank throws this with the same text.
    case rankFailed(rank: Int, message: String)

    public var description: String {
        switch self {
        case let .library(call, message): return "\(call) failed: \(message)"
        case let .peerAborted(rank, message): return "rank \(rank) aborted: \(message)"
        case let .timedOut(operation, seconds): return "\(operation) waited \(seconds) s for the other ranks"
        case let .rankFailed(rank, message): return rank >= 0 ? "rank \(rank): \(message)" : message
        }
    }
}

/// A group of ranks that move buffers together; knows nothing of models or data (as Horovod's core).
///
/// Every rank must call the same collectives in the same order with the same counts.
public protocol Communicator: AnyObject {
    /// This process's (or thread's) index, 0..<size.
    var rank: Int { get }
    /// Number of ranks.
    var size: Int { get }
    /// Name of the host this rank runs on.
    var hostName: String { get }
    /// Index among the ranks on this host, and how many ranks this host has.
    var localRank: Int { get }
    var localSize: Int { get }
    /// A short name of the implementation for logs ("MPI", "in-process").
    var kind: String { get }

    /// Combines `buffer` elementwise over all ranks, in place; every rank receives the result.
    func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation) throws
    /// A zeroed arena of `count` floats for repeated in-place sums over ranks (the gradients). Every
    /// rank calls it at the same point with the same count; if any rank asks for `.allreduce`, all get
    /// it. Allreduces move at most `bucketElements` floats per call.
    /// `wire`: the format of the sum between hosts (the shared-memory sum inside a host stays fp32).
    func makeSumArena(count: Int, bucketElements: Int, method: SumMethod, wire: WireFormat) throws -> SumArena
    /// All-gather in place of `range` of an arena sharded in `ownedShard` slices: on entry each rank holds the true
    /// values of its own slice's part of the range; on return every rank holds all of the range. Default: a sum of
    /// owners' values and zeros (exact).
    func allGatherShards(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>) throws
    /// Reduce-scatter in place of `range` of an arena sharded in `ownedShard` slices: on return this rank's own
    /// slice's part of the range holds the sum over ranks; the rest of the range is left undefined (its owners have
    /// it). Default: an allreduce of the range.
    func reduceScatterShards(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>) throws
    /// Copies `buffer` from `root` to every rank.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Returns when every rank has arrived.
    func barrier() throws
    /// Ends every rank of the job at once, after printing `message` from this one.
    func abort(message: String, exitCode: Int32) -> Never
    /// Releases the library; last call on a normal exit path.
    func finalize()
}

extension Communicator {
    /// The portable arena: private memory and `allreduce`, whatever the method.
    public func makeSumArena(count: Int, bucketElements: Int, method: SumMethod, wire: WireFormat) throws -> SumArena {
        AllreduceSumArena(communicator: self, count: count, bucketElements: bucketElements)
    }

    /// An fp32 arena (no hosts to cross, or no reason to compress).
    public func makeSumArena(count: Int, bucketElements: Int, method: SumMethod) throws -> SumArena {
        try makeSumArena(count: count, bucketElements: bucketElements, method: method, wire: .fp32)
    }

    /// True when this rank prints and writes files.
    public var isCoordinator: Bool { rank == 0 }

    /// Convenience: allreduce over an array.
    public func allreduce<T: CollectiveScalar>(_ values: inout [T], _ operation: ReduceOperation) throws {
        try values.withUnsafeMutableBufferPointer { try allreduce($0, operation) }
    }

    /// Every rank's `values` (same count on every rank), indexed by rank.
    ///
    /// Built on a sum-allreduce over a zeroed (size × count) buffer where each rank fills its own row;
    /// meant for small start-up checks, not hot paths.
    public func allGather(_ values: [Int64]) throws -> [[Int64]] {
        var table = [Int64](repeating: 0, count: size * values.count)
        for (i, value) in values.enumerated() { table[rank * values.count + i] = value }
        try allreduce(&table, .sum)
        return (0..<size).map { Array(table[($0 * values.count)..<(($0 + 1) * values.count)]) }
    }

    /// Every rank's text (cut to 480 UTF-8 bytes), indexed by rank.
    public func allGather(text: String) throws -> [String] {
        let limit = 480
        // Whole characters only: never cut a multi-byte character in half.
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            if bytes.count + encoded.count > limit { break }
            bytes += encoded
        }
        var values = [Int64](repeating: 0, count: limit + 1)
        values[0] = Int64(bytes.count)
        for (i, byte) in bytes.enumerated() { values[i + 1] = Int64(byte) }
        return try allGather(values).map { row in
            let count = Int(max(0, min(Int64(limit), row[0])))
            return String(decoding: row[1..<(count + 1)].map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
        }
    }

    /// A collective verdict on a phase that may fail on some ranks (loading data, opening files).
    ///
    /// Every rank calls it with its own error (or nil). If any rank failed, every rank throws
    /// `CollectiveError.rankFailed` naming the lowest failing rank and its message, so the whole job
    /// ends cleanly with one clear line instead of a hang or an abort storm.
    public func agreeOnSuccess(_ localError: Error?) throws {
        if size == 1 {
            if let localError { throw localError }
            return
        }
        var failed: [Int64] = [localError == nil ? 0 : 1]
        let flags = try allGather(failed)
        failed = flags.map { $0[0] }
        guard let first = failed.firstIndex(of: 1) else { return }
        let messages = try allGather(text: localError.map { "\($0)" } ?? "")
        let failing = failed.indices.filter { failed[$0] == 1 }
        var message = messages[first]
        if failing.count == size && Set(messages).count == 1 {
            // Every rank saw the same problem (shared input): no rank to single out.
            throw CollectiveError.rankFailed(rank: -1, message: message)
        }
        if failing.count > 1 {
            message += " (ranks \(failing.map(String.init).joined(separator: ", ")) failed)"
        }
        throw CollectiveError.rankFailed(rank: first, message: message)
    }
}

extension Communicator {
    /// Every rank runs `body`; all agree on the outcome (`agreeOnSuccess`): its value when it succeeded on every
    /// rank, else every rank throws the lowest failing rank's error. The one form of "each rank tries, all agree".
    public func collectively<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        var localError: Error?
        do { result = try body() } catch { localError = error }
        try agreeOnSuccess(localError)
        return result!
    }

    /// The coordinator alone runs `body` (reading or writing a file); every rank learns whether it succeeded.
    /// Returns its value on the coordinator, nil elsewhere.
    @discardableResult
    public func onCoordinator<T>(_ body: () throws -> T) throws -> T? {
        var result: T?
        var localError: Error?
        if isCoordinator {
            do { result = try body() } catch { localError = error }
        }
        try agreeOnSuccess(localError)
        return result
    }
}

extension Communicator {
    /// `bytes` from `root` on every rank (length first, then the data).
    public func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8] {
        if size == 1 { return bytes }
        var length: [Int64] = [rank == root ? Int64(bytes.count) : 0]
        try length.withUnsafeMutableBytes { try broadcast($0, root: root) }
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length[0]))
        try buffer.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return buffer
    }

    /// Runs `resolve` on the coordinator only (it reads the file system) and gives every rank its answer.
    public func resolveOnCoordinator(_ resolve: () throws -> String?) throws -> String? {
        let answer = try onCoordinator { try resolve() } ?? nil
        // "\u{0}" stands for "no answer" (a path never contains NUL).
        let bytes = try broadcast(bytes: Array((answer ?? "\u{0}").utf8), root: 0)
        let text = String(decoding: bytes, as: UTF8.self)
        return text == "\u{0}" ? nil : text
    }
}
