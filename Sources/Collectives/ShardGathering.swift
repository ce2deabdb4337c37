/// Sharded arenas (`--shard optimizer`): each rank owns a contiguous slice of an arena of `count` values — the
/// slices differ in size by at most one, in rank order, whatever divides what — and is the only one to update it.
extension Communicator {
    /// The slice of an arena of `count` values this rank owns: [count·rank/size, count·(rank+1)/size).
    public func ownedShard(of count: Int) -> Range<Int> { (count * rank / size)..<(count * (rank + 1) / size) }

    /// All-gather of a whole arena, in ranges of at most 2^28 values (MPI counts are 32-bit).
    public func allGatherShards(_ values: UnsafeMutableBufferPointer<Float>) throws {
        var start = 0
        while start < values.count {
            let end = min(start + (1 << 28), values.count)
            try allGatherShards(values, range: start..<end)
            start = end
        }
    }

    public func allGatherShards(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>) throws {
        try allGatherShardsBySum(values, range: range)
    }

    public func reduceScatterShards(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>) throws {
        try allreduceInPieces(values, range: range)
    }

    /// All-gather in place of `range`: a sum over ranks of each owner's values and everyone else's zeros — exact
    /// (x + 0 = x), and built on `allreduce` so it works on every communicator — in pieces of at most `chunk` values.
    public func allGatherShardsBySum(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>, chunk: Int = 1 << 22) throws {
        guard size > 1, !range.isEmpty else { return }
        let owned = ownedShard(of: values.count).clamped(to: range)
        let kept = owned.isEmpty ? range.lowerBound..<range.lowerBound : owned
        values.extracting(range.lowerBound..<kept.lowerBound).update(repeating: 0)
        values.extracting(kept.upperBound..<range.upperBound).update(repeating: 0)
        try allreduceInPieces(values, range: range, chunk: chunk)
    }

    /// `values[range]` summed over ranks in place, in pieces of at most `chunk` values.
    func allreduceInPieces(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>, chunk: Int = 1 << 22) throws {
        guard size > 1 else { return }
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + chunk, range.upperBound)
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
