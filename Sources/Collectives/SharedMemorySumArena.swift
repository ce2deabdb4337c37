import CKernels
import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// How the ranks of an MPI job sit on hosts, for sums that stay in shared memory inside a host.
struct HostTopology {
    /// The ranks of this host (MPI_COMM_TYPE_SHARED), this rank's index among them, and their count.
    let host: MPI_Comm
    let hostRank: Int
    let hostSize: Int
    /// The ranks with this rank's host index on every host (nil on a single host or when hosts run
    /// different numbers of ranks).
    let peers: MPI_Comm?
    /// Every host runs the same number of ranks.
    let uniform: Bool
}

/// Gradient sums through memory shared by the ranks of a host (an MPI-3 shared window), as the
/// intra-node step of NCCL's and Horovod's hierarchical allreduce.
///
/// Each rank's arena is its segment of the window, so backward writes its gradients where the other
/// ranks of the host can read them. Host rank r sums slice r of every arena in rank order, then, across
/// hosts, allreduces that slice with the ranks holding the same host index (the network carries each
/// value once per host), and writes it into every arena of its host. Two host barriers frame
/// this: contributions complete before any slice is read, and every slice written before anyone goes on.
/// Open MPI's MPI_Allreduce copies through small shared-memory fragments instead, several times slower
/// for a whole gradient arena (BENCHMARKS.md).
///
/// The window lives until `MPICommunicator.finalize()` (freeing it is collective, and a deinit runs on
/// each rank at its own time).
final class SharedMemorySumArena: SumArena {
    let buffer: UnsafeMutableBufferPointer<Float>
    let window: MPI_Win
    private let topology: HostTopology
    private let worldSize: Int
    /// This rank's slice of every arena: the elements it sums for the host.
    private let slice: Range<Int>
    /// Every host rank's arena, as sources and as targets for distrain_sum_spread (hostSize pointers each).
    private let sources: UnsafeMutablePointer<UnsafePointer<Float>?>
    private let targets: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
    /// Each host rank's verdict on its slice (1 = all finite), one float after its arena.
    private let verdicts: [UnsafeMutablePointer<Float>]
    /// The 16-bit sum between hosts (`--wire fp16|bf16`); nil: fp32, or a single host.
    private let wireSum: PackedSum?
    /// Between hosts: this host rank's piece of every bucket (the bucket split in host-size parts of
    /// whole cache lines), one request per bucket, and how many buckets this step has started.
    private var pieces: [Range<Int>] = []
    private var requests = UnsafeMutablePointer<MPI_Request?>.allocate(capacity: 1)
    private var started = 0

    /// The window on every rank of every host, or on every rank the reason it cannot be had (the caller
    /// then falls back to allreduce).
    enum Allocation {
        case ready(SharedMemorySumArena)
        case unavailable(reason: String)
    }

    /// Allocates the window on every rank of every host, or none (every rank gets the same answer).
    static func make(count: Int, topology: HostTopology, world: MPI_Comm, wire: WireFormat) throws -> Allocation {
        // Arena, padded to whole cache lines so that no two ranks write one line, then one line of verdict.
        let arenaFloats = (max(count, 1) + 15) / 16 * 16
        // Open MPI backs the window with a file in /dev/shm; with too little room there it prints a
        // warning and then hangs in the collective allocation instead of failing. So check first.
        let hostBytes = (arenaFloats + 16) * 4 * topology.hostSize
        let room = SharedWindow.backingRoom()
        guard try SharedWindow.everyHostHasRoom(for: hostBytes, world: world) else {
            let needed = "\(hostBytes / 1_048_576 + 1) MB"
            guard let room, room.free < hostBytes + (1 << 20) else {
                return .unavailable(reason: "too little shared memory on another host for \(needed); enlarge /dev/shm")
            }
            return .unavailable(reason: "\(room.directory) has \(room.free / 1_048_576) MB free, the sum needs \(needed); "
                + "enlarge it, e.g. docker run --shm-size=1g")
        }
        guard let window = try SharedWindow.allocate(bytesPerRank: (arenaFloats + 16) * 4, host: topology.host, world: world) else {
            return .unavailable(reason: "the shared-memory window could not be allocated")
        }
        return .ready(try SharedMemorySumArena(count: count, arenaFloats: arenaFloats, window: window,
                                               topology: topology, world: world, wire: wire))
    }

    private init(count: Int, arenaFloats: Int, window: MPI_Win, topology: HostTopology,
                 world: MPI_Comm, wire: WireFormat) throws {
        self.window = window
        wireSum = topology.peers != nil && wire != .fp32 ? try PackedSum(format: wire, capacity: max(count, 1)) : nil
        self.topology = topology
        var size: Int32 = 0
        MPI_Comm_size(world, &size)
        worldSize = Int(size)
        let arenas = try SharedWindow.segments(of: window, ranks: topology.hostSize).map {
            $0.bindMemory(to: Float.self, capacity: arenaFloats + 16)
        }
        let own = arenas[topology.hostRank]
        own.initialize(repeating: 0, count: arenaFloats + 16)
        buffer = UnsafeMutableBufferPointer(start: own, count: count)
        verdicts = arenas.map { $0 + arenaFloats }
        sources = .allocate(capacity: topology.hostSize)
        targets = .allocate(capacity: topology.hostSize)
        for (rank, arena) in arenas.enumerated() {
            (sources + rank).initialize(to: UnsafePointer(arena))
            (targets + rank).initialize(to: arena)
        }
        let share = ((count + topology.hostSize - 1) / topology.hostSize + 15) / 16 * 16
        let lower = min(topology.hostRank * share, count)
        slice = lower..<min(lower + share, count)
        // Passive-target epoch for the window's lifetime; MPI_Win_sync orders the loads and stores.
        try checkMPI(MPI_Win_lock_all(cmpi_mode_nocheck(), window), "MPI_Win_lock_all")
        try hostBarrier()  // every arena zeroed before anyone reads one
        useBuckets([0..<count])  // between hosts: one bucket until the gradient synchronizer plans its own
    }

    deinit {
        requests.deallocate()
        sources.deallocate()
        targets.deallocate()
    }

    var summary: String {
        let hosts = topology.peers == nil ? 1 : worldSize / topology.hostSize
        return "shared memory (\(topology.hostSize) ranks per host)" + (hosts > 1 ? " + allreduce across \(hosts) hosts" : "")
            + (wireSum.map { ", \($0.format.rawValue) on the wire (lossy: not bitwise equal to 1 rank)" } ?? "")
    }

    var hasSumBetweenHosts: Bool { topology.peers != nil }

    /// Only between hosts: on one host the whole sum is one shared-memory pass after backward.
    func useBuckets(_ ranges: [Range<Int>]) {
        guard topology.peers != nil, !ranges.isEmpty else { return }
        pieces = ranges.map { range in
            let share = ((range.count + topology.hostSize - 1) / topology.hostSize + 15) / 16 * 16
            let lower = min(range.lowerBound + topology.hostRank * share, range.upperBound)
            return lower..<min(lower + share, range.upperBound)
        }
        requests.deallocate()
        requests = .allocate(capacity: ranges.count)
        requests.initialize(repeating: cmpi_request_null(), count: ranges.count)
    }

    func startBucket(_ index: Int) throws {
        while started <= index && started < pieces.count { try startPiece(started) }
    }

    /// After a host barrier (every rank has written the bucket), sums this rank's piece over the host
    /// into its own arena and starts its sum between hosts.
    private func startPiece(_ index: Int) throws {
        try hostBarrier()
        started = index + 1
        let piece = pieces[index], hostRank = topology.hostRank
        if piece.isEmpty { return }
        _ = distrain_sum_spread(sources, topology.hostSize, targets + hostRank, 1, piece.lowerBound, piece.upperBound)
        let own = targets[hostRank]!
        if let wireSum { return try wireSum.start(own, piece, over: topology.peers!, request: requests + index) }
        try checkMPI(MPI_Iallreduce(cmpi_in_place(), own + piece.lowerBound, Int32(piece.count), cmpi_float(), cmpi_op_sum(),
                                    topology.peers!, requests + index), "MPI_Iallreduce")
    }

    func progress() {
        guard started > 0 else { return }
        var done: Int32 = 0
        _ = MPI_Testall(Int32(started), requests, &done, cmpi_statuses_ignore())
    }

    /// The bucketed sum: starts the buckets backward has not, waits for all, then spreads this rank's
    /// pieces into every arena of the host. Started early or late, every bucket makes the same calls on
    /// the same pieces, so the bits do not depend on when (overlap on or off).
    private func sumBuckets(enteringBucket: (Int) -> Void) throws -> Bool {
        while started < pieces.count {
            enteringBucket(started)
            try startPiece(started)
        }
        try checkMPI(MPI_Waitall(Int32(pieces.count), requests, cmpi_statuses_ignore()), "MPI_Waitall")
        started = 0
        var finite = true
        let hostRank = topology.hostRank, hostSize = topology.hostSize
        for piece in pieces where !piece.isEmpty {
            wireSum?.unpack(targets[hostRank]!, piece)
            finite = distrain_sum_spread(sources + hostRank, 1, targets, hostSize, piece.lowerBound, piece.upperBound) != 0 && finite
        }
        return finite
    }

    func sumOverRanks(enteringBucket: (Int) -> Void) throws -> Bool {
        if topology.peers != nil {
            let finite = try sumBuckets(enteringBucket: enteringBucket)
            verdicts[topology.hostRank].pointee = finite ? 1 : 0
            try hostBarrier()  // every piece is summed and written into every arena
            for rank in 0..<topology.hostSize where verdicts[rank].pointee != 1 { return false }
            return true
        }
        enteringBucket(0)
        try hostBarrier()  // every contribution is complete
        let hostRank = topology.hostRank, hostSize = topology.hostSize
        let finite = distrain_sum_spread(sources, hostSize, targets, hostSize, slice.lowerBound, slice.upperBound) != 0
        verdicts[hostRank].pointee = finite ? 1 : 0
        try hostBarrier()  // every slice is summed and written into every arena
        for rank in 0..<hostSize where verdicts[rank].pointee != 1 { return false }
        return true
    }

    private func hostBarrier() throws {
        try SharedWindow.barrier(window, host: topology.host)
    }
}

/// Throws the library's text for a failed MPI call.
func checkMPI(_ status: Int32, _ call: String) throws {
    guard status != MPI_SUCCESS else { return }
    var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
    var length: Int32 = 0
    MPI_Error_string(status, &text, &length)
    throw CollectiveError.library(call: call, message: String(cString: text))
}
