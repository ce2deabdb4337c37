/// Sharded arenas (`--shard optimizer`): each rank owns a contiguous slice of an arena of `count` values — the
/// slices differ in size by at most one, in rank order, whatever divides what — and is the only one to update it.
extension Communicator {
    /// The slice of an arena of `count` values this rank owns: [count·rank/size, count·(rank+1)/size).
    public func ownedShard(of count: Int) -> Range<Int> { (count * rank / size)..<(count * (rank + 1) / size) }

    public func allGatherShards(_ values: UnsafeMutableBufferPointer<Float>) throws {
        try allGatherShardsBySum(values)
    }

    /// All-gather in place: on entry each rank holds the true values of its own slice; on return every rank holds
    /// every slice. A sum over ranks of each owner's values and everyone else's zeros — exact (x + 0 = x), and
    /// built on `allreduce` so it works on every communicator — in pieces of at most `chunk` values.
    public func allGatherShardsBySum(_ values: UnsafeMutableBufferPointer<Float>, chunk: Int = 1 << 22) throws {
        guard size > 1 else { return }
        let owned = ownedShard(of: values.count)
        if owned.lowerBound > 0 { values.extracting(0..<owned.lowerBound).update(repeating: 0) }
        if owned.upperBound < values.count { values.extracting(owned.upperBound..<values.count).update(repeating: 0) }
        var start = 0
        while start < values.count {
            let end = min(start + chunk, values.count)
            try allreduce(values.extracting(start..<end), .sum)
            start = end
        }
    }

    /// Gathers a state buffer that covers only this rank's slice (`owned`, `owned.count` values) into `full`
    /// (`count` values) on the coordinator alone; the other ranks need only one chunk of scratch. Collective.
    public func gatherShards(_ owned: UnsafeBufferPointer<Float>, count: Int, into full: UnsafeMutableBufferPointer<Float>?,
                             chunk: Int = 1 << 22) throws {
        let mine = ownedShard(of: count)
        precondition(owned.count == mine.count && (full?.count ?? count) == count, "shard of \(mine.count) of \(count)")
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, min(chunk, count)))
        defer { scratch.deallocate() }
        var start = 0
        while start < count {
            let end = min(start + chunk, count), piece = scratch.extracting(0..<(end - start))
            piece.update(repeating: 0)
            let overlap = mine.clamped(to: start..<end)
            for i in overlap { piece[i - start] = owned[i - mine.lowerBound] }
            try allreduce(piece, .sum)
            if let full { full.extracting(start..<end).update(fromContentsOf: piece) }
            start = end
        }
    }
}

extension UnsafeMutableBufferPointer {
    /// A view of `range` of this buffer.
    fileprivate func extracting(_ range: Range<Int>) -> UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(rebasing: self[range])
    }
}
