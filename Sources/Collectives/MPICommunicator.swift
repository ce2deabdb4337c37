import CKernels
import CMPI
import Foundation

/// The MPI world, for jobs started by mpirun. The only code in distrain that imports MPI.
///
/// Every call is checked: errors return (MPI_ERRORS_RETURN) and are thrown with the library's text.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let hostName: String
    public let localRank: Int
    public let localSize: Int
    public var kind: String { "MPI" }
    private let world: MPI_Comm
    private var finalized = false
    /// Found on the first `makeSumArena` (collective), then reused.
    private var topology: HostTopology?
    /// Shared windows of the arenas handed out; freed together in `finalize()`.
    private var windows: [MPI_Win] = []

    /// True when this process was started by Open MPI's mpirun (or a compatible launcher).
    public static var isLaunchedByMPIRun: Bool {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// Initializes MPI. Call once, after all argument validation (a failed init cannot be caught).
    public init() throws {
        var argc: Int32 = 0
        var provided: Int32 = 0
        let status = MPI_Init_thread(&argc, nil, Int32(MPI_THREAD_FUNNELED), &provided)
        world = cmpi_comm_world()
        guard status == MPI_SUCCESS else { throw CollectiveError.library(call: "MPI_Init", message: "code \(status)") }
        MPI_Comm_set_errhandler(world, cmpi_errors_return())
        var value: Int32 = 0
        MPI_Comm_rank(world, &value); rank = Int(value)
        MPI_Comm_size(world, &value); size = Int(value)
        var name = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var length: Int32 = 0
        MPI_Get_processor_name(&name, &length)
        hostName = String(cString: name)
        let environment = ProcessInfo.processInfo.environment
        localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init) ?? 0
        localSize = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        shardCounts = .allocate(capacity: size)
        shardDisplacements = .allocate(capacity: size)
    }

    private func datatype(_ kind: ScalarKind) -> MPI_Datatype {
        switch kind {
        case .float: return cmpi_float()
        case .double: return cmpi_double()
        case .int64: return cmpi_int64()
        }
    }

    public func allreduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation) throws {
        if size == 1 || buffer.isEmpty { return }
        let op = operation == .sum ? cmpi_op_sum() : cmpi_op_max()
        // MPI counts are Int32: move very large buffers in pieces.
        let piece = Int(Int32.max / 2)
        // Marked so the allocation counter can tell Open MPI's allocations from distrain's own.
        distrain_enter_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue))
        defer { distrain_leave_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue)) }
        var start = 0
        while start < buffer.count {
            let count = min(piece, buffer.count - start)
            try checkMPI(MPI_Allreduce(cmpi_in_place(), buffer.baseAddress! + start, Int32(count),
                                    datatype(T.scalarKind), op, world), "MPI_Allreduce")
            start += count
        }
    }

    /// On one host, through the host's mailbox; else MPI_Allgatherv in place: each rank sends its part once (half the
    /// traffic of the sum of zeros).
    public func allGatherShards(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>) throws {
        if size == 1 || range.isEmpty { return }
        if let mailbox = try hostMailbox() { return try mailbox.allGather(values.baseAddress!, count: values.count, range: range) }
        guard range.count < Int(Int32.max) else { return try allGatherShardsBySum(values, range: range) }
        layOutShards(range, of: values.count)
        distrain_enter_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue))
        defer { distrain_leave_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue)) }
        try checkMPI(MPI_Allgatherv(cmpi_in_place(), 0, cmpi_float(), values.baseAddress! + range.lowerBound, shardCounts,
                                    shardDisplacements, cmpi_float(), world), "MPI_Allgatherv")
    }

    /// On one host, through the host's mailbox; else MPI_Reduce_scatter in place: each rank receives only the sum of
    /// its own part.
    public func reduceScatterShards(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>) throws {
        if size == 1 || range.isEmpty { return }
        if let mailbox = try hostMailbox() {
            return try mailbox.reduceScatter(values.baseAddress!, count: values.count, range: range)
        }
        guard range.count < Int(Int32.max) else {
            return try allreduce(UnsafeMutableBufferPointer(rebasing: values[range]), .sum)
        }
        layOutShards(range, of: values.count)
        let start = values.baseAddress! + range.lowerBound
        distrain_enter_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue))
        defer { distrain_leave_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue)) }
        try checkMPI(MPI_Reduce_scatter(cmpi_in_place(), start, shardCounts, cmpi_float(), cmpi_op_sum(), world),
                     "MPI_Reduce_scatter")
        // In place, this rank's sum lands at the start of the range (MPI-3 §5.10.1): move it to its own place.
        let mine = Int(shardCounts[rank]), offset = Int(shardDisplacements[rank])
        if mine > 0 && offset > 0 { memmove(start + offset, start, mine * MemoryLayout<Float>.stride) }
    }

    /// The sharded collectives' shared boxes when every rank is on this host (made by the first of them: collective).
    private var mailbox: HostMailbox??

    private func hostMailbox() throws -> HostMailbox? {
        if let mailbox { return mailbox }
        let topology = try hostTopology()
        let made = topology.hostSize == size && ProcessInfo.processInfo.environment["DISTRAIN_SHARD_VIA_MPI"] == nil
            ? try HostMailbox.make(topology: topology, world: world) : nil
        if let made { windows.append(made.window) }
        mailbox = .some(made)
        return made
    }

    /// Per-rank counts and displacements of the sharded collectives, filled by every call (no allocation).
    private let shardCounts: UnsafeMutablePointer<Int32>
    private let shardDisplacements: UnsafeMutablePointer<Int32>

    /// Rank r's part of `range` of an arena of `count` values is its `ownedShard` clamped to the range.
    private func layOutShards(_ range: Range<Int>, of count: Int) {
        for r in 0..<size {
            let part = ((count * r / size)..<(count * (r + 1) / size)).clamped(to: range)
            shardCounts[r] = Int32(part.count)
            shardDisplacements[r] = Int32(part.isEmpty ? 0 : part.lowerBound - range.lowerBound)
        }
    }

    /// A shared-memory arena (SharedMemorySumArena) when several ranks share a host and every host runs
    /// as many ranks; otherwise, if the window cannot be allocated, or if any rank asks for
    /// `.allreduce`, the allreduce arena.
    public func makeSumArena(count: Int, bucketElements: Int, method: SumMethod, wire: WireFormat) throws -> SumArena {
        if size > 1 {
            try requireSameWireFormat(wire)
            // Decided together: ranks started with different flags must still take the same path.
            var wantsAllreduce: Int32 = method == .allreduce ? 1 : 0
            try checkMPI(MPI_Allreduce(cmpi_in_place(), &wantsAllreduce, 1, cmpi_int32(), cmpi_op_max(), world),
                         "MPI_Allreduce")
            if wantsAllreduce == 1 {
                return AllreduceSumArena(communicator: self, count: count, bucketElements: bucketElements)
            }
            let topology = try hostTopology()
            if topology.hostSize > 1 && topology.uniform {
                switch try SharedMemorySumArena.make(count: count, topology: topology, world: world, wire: wire) {
                case .ready(let arena):
                    windows.append(arena.window)
                    return arena
                case .unavailable(let reason):
                    return AllreduceSumArena(communicator: self, count: count, bucketElements: bucketElements,
                                             fallbackReason: reason)
                }
            }
        }
        return AllreduceSumArena(communicator: self, count: count, bucketElements: bucketElements)
    }

    /// Every rank must send the same format: a mixed sum would be garbage, so a disagreement is an error.
    private func requireSameWireFormat(_ wire: WireFormat) throws {
        let code = Int32(WireFormat.allCases.firstIndex(of: wire)!)
        var extremes: [Int32] = [code, -code]
        try checkMPI(MPI_Allreduce(cmpi_in_place(), &extremes, 2, cmpi_int32(), cmpi_op_max(), world), "MPI_Allreduce")
        if extremes[0] != -extremes[1] {
            let formats = "\(WireFormat.allCases[Int(-extremes[1])].rawValue) and \(WireFormat.allCases[Int(extremes[0])].rawValue)"
            throw CollectiveError.rankFailed(rank: -1, message: "ranks disagree on --wire (\(formats)); start every rank with the "
                + "same flags")
        }
    }

    private func hostTopology() throws -> HostTopology {
        if let topology { return topology }
        var split: MPI_Comm?
        try checkMPI(MPI_Comm_split_type(world, cmpi_comm_type_shared(), Int32(rank), cmpi_info_null(), &split),
                     "MPI_Comm_split_type")
        let host = split!
        var value: Int32 = 0
        MPI_Comm_rank(host, &value)
        let hostRank = Int(value)
        MPI_Comm_size(host, &value)
        let hostSize = Int(value)
        // min(size) and min(-size) over the world: equal magnitudes mean every host runs as many ranks.
        var extremes: [Int32] = [Int32(hostSize), -Int32(hostSize)]
        try checkMPI(MPI_Allreduce(cmpi_in_place(), &extremes, 2, cmpi_int32(), cmpi_op_min(), world), "MPI_Allreduce")
        let uniform = extremes[0] == -extremes[1]
        var peers: MPI_Comm?
        if uniform && hostSize < size {
            var comm: MPI_Comm?
            try checkMPI(MPI_Comm_split(world, Int32(hostRank), Int32(rank), &comm), "MPI_Comm_split")
            peers = comm!
        }
        let found = HostTopology(host: host, hostRank: hostRank, hostSize: hostSize, peers: peers, uniform: uniform)
        topology = found
        return found
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        if size == 1 || buffer.isEmpty { return }
        let piece = Int(Int32.max / 2)
        // Marked so the allocation counter can tell Open MPI's allocations from distrain's own.
        distrain_enter_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue))
        defer { distrain_leave_library(Int32(DISTRAIN_LIBRARY_MPI.rawValue)) }
        var start = 0
        while start < buffer.count {
            let count = min(piece, buffer.count - start)
            try checkMPI(MPI_Bcast(buffer.baseAddress! + start, Int32(count), cmpi_byte(), Int32(root), world), "MPI_Bcast")
            start += count
        }
    }

    public func barrier() throws {
        try checkMPI(MPI_Barrier(world), "MPI_Barrier")
    }

    public func abort(message: String, exitCode: Int32) -> Never {
        FileHandle.standardError.write(Data("distrain: error: \(message)\n".utf8))
        fflush(nil)
        MPI_Abort(world, exitCode)
        exit(exitCode)  // MPI_Abort does not return; this satisfies the type checker.
    }

    public func finalize() {
        if finalized { return }
        finalized = true
        for window in windows {
            MPI_Win_unlock_all(window)
            var handle: MPI_Win? = window
            MPI_Win_free(&handle)
        }
        MPI_Finalize()
    }
}
