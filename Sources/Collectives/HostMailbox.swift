import CKernels
import CMPI

/// ZeRO's reduce-scatter and all-gather between the ranks of one host (`--shard gradients|parameters`), through a
/// small MPI-3 shared window: each rank has a box of `chunk` floats the others can read. A range is moved a chunk at a
/// time: every rank puts its part in its box, a host barrier, every rank reads what it needs from the others' boxes,
/// another barrier. The arenas themselves stay private, so their pages can be given back (MADV_DONTNEED) — pages of
/// a shared window would have to be punched out of /dev/shm and faulted back in at several times the cost — and
/// Open MPI's own MPI_Reduce_scatter, copying through small fragments, took 570 ms a step for GPT-2 124M on 2 ranks
/// where this takes about 40 (BENCHMARKS.md).
final class HostMailbox {
    let window: MPI_Win
    private let host: MPI_Comm
    private let hostRank: Int
    private let hostSize: Int
    /// Floats per box.
    private let chunk: Int
    /// Every host rank's box.
    private let boxes: [UnsafeMutablePointer<Float>]
    /// distrain_sum_spread's sources (every box, rebased to the arena's indices) and target (this rank's arena).
    private let sources: UnsafeMutablePointer<UnsafePointer<Float>?>
    private let target: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>

    /// The window on every rank of the (single) host, or nil on every rank when it cannot be had (too little room in
    /// /dev/shm: the sharded collectives then use MPI's own).
    static func make(topology: HostTopology, world: MPI_Comm, chunk: Int = 1 << 22) throws -> HostMailbox? {
        guard try SharedWindow.everyHostHasRoom(for: chunk * 4 * topology.hostSize, world: world),
              let window = try SharedWindow.allocate(bytesPerRank: chunk * 4, host: topology.host, world: world) else { return nil }
        return try HostMailbox(window: window, topology: topology, chunk: chunk)
    }

    private init(window: MPI_Win, topology: HostTopology, chunk: Int) throws {
        self.window = window
        host = topology.host
        hostRank = topology.hostRank
        hostSize = topology.hostSize
        self.chunk = chunk
        boxes = try SharedWindow.segments(of: window, ranks: hostSize).map { $0.bindMemory(to: Float.self, capacity: chunk) }
        sources = .allocate(capacity: hostSize)
        sources.initialize(repeating: nil, count: hostSize)
        target = .allocate(capacity: 1)
        target.initialize(to: nil)
        try checkMPI(MPI_Win_lock_all(cmpi_mode_nocheck(), window), "MPI_Win_lock_all")
    }

    deinit {
        sources.deallocate()
        target.deallocate()
    }

    /// Rank r's part of an arena of `count` values (`Communicator.ownedShard`; host rank = world rank on one host).
    private func owned(by rank: Int, of count: Int) -> Range<Int> {
        (count * rank / hostSize)..<(count * (rank + 1) / hostSize)
    }

    /// On return this rank's part of `range` of `values` (an arena of `count`) holds the sum over the host's ranks, in
    /// rank order — the bits the shared-memory allreduce gives.
    func reduceScatter(_ values: UnsafeMutablePointer<Float>, count: Int, range: Range<Int>) throws {
        let mine = owned(by: hostRank, of: count)
        try forEachChunk(of: range) { piece in
            // Only what the others sum goes in the box: this rank's own part is read from its arena.
            let part = mine.clamped(to: piece)
            let below = piece.lowerBound..<(part.isEmpty ? piece.upperBound : part.lowerBound)
            let above = (part.isEmpty ? piece.upperBound : part.upperBound)..<piece.upperBound
            post(values, below, piece)
            post(values, above, piece)
            try hostBarrier()
            if !part.isEmpty {
                for rank in 0..<hostSize { sources[rank] = UnsafePointer(boxes[rank] - piece.lowerBound) }
                sources[hostRank] = UnsafePointer(values)
                target[0] = values
                _ = distrain_sum_spread(sources, hostSize, target, 1, part.lowerBound, part.upperBound)
            }
        }
    }

    /// Copies `values[part]` into this rank's box, placed as in `piece`.
    private func post(_ values: UnsafeMutablePointer<Float>, _ part: Range<Int>, _ piece: Range<Int>) {
        if part.isEmpty { return }
        (boxes[hostRank] + (part.lowerBound - piece.lowerBound)).update(from: values + part.lowerBound, count: part.count)
    }

    /// On return every rank holds all of `range` of `values`, each rank's part taken from its owner.
    func allGather(_ values: UnsafeMutablePointer<Float>, count: Int, range: Range<Int>) throws {
        let mine = owned(by: hostRank, of: count)
        try forEachChunk(of: range) { piece in
            post(values, mine.clamped(to: piece), piece)
            try hostBarrier()
            for rank in 0..<hostSize where rank != hostRank {
                let theirs = owned(by: rank, of: count).clamped(to: piece)
                if theirs.isEmpty { continue }
                (values + theirs.lowerBound).update(from: boxes[rank] + (theirs.lowerBound - piece.lowerBound), count: theirs.count)
            }
        }
    }

    /// Runs `body` on consecutive pieces of at most `chunk` values of `range`, with a host barrier after each
    /// (every rank has read the boxes before they are filled again).
    private func forEachChunk(of range: Range<Int>, _ body: (Range<Int>) throws -> Void) throws {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + chunk, range.upperBound)
            try body(start..<end)
            try hostBarrier()
            start = end
        }
    }

    private func hostBarrier() throws {
        try SharedWindow.barrier(window, host: host)
    }
}
