/// A byte-pair vocabulary's merge rules in rank order, looked up by the pair of token ids they join.
struct MergeTable: Sendable {
    /// Each merge's (left, right, result) token ids, in rank order (rank = index).
    let merges: [(left: Int32, right: Int32, result: Int32)]
    private let slots: [UInt64]  // (left << 32 | right) keys, open addressing; .max = empty
    private let values: [UInt64]  // (rank << 32 | result) for the key in the same slot
    private let mask: Int

    init(_ merges: [(left: Int32, right: Int32, result: Int32)]) {
        self.merges = merges
        var capacity = 16
        while capacity < merges.count * 2 { capacity <<= 1 }
        var slots = [UInt64](repeating: .max, count: capacity), values = [UInt64](repeating: 0, count: capacity)
        mask = capacity - 1
        for (rank, merge) in merges.enumerated() {
            let key = MergeTable.key(merge.left, merge.right)
            var slot = MergeTable.slot(of: key, mask: mask)
            while slots[slot] != .max && slots[slot] != key { slot = (slot + 1) & mask }
            slots[slot] = key  // a repeated merge: the last rank wins, as Hugging Face's map of merges keeps it
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merge.result))
        }
        self.slots = slots
        self.values = values
    }

    @inline(__always) static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always) private static func slot(of key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// The rank and result of merging `left` with `right`, or nil when no rule joins them.
    @inline(__always) func merge(_ left: Int32, _ right: Int32) -> (rank: Int32, result: Int32)? {
        let key = MergeTable.key(left, right)
        var slot = MergeTable.slot(of: key, mask: mask)
        while true {
            let found = slots[slot]
            if found == key {
                let value = values[slot]
                return (Int32(truncatingIfNeeded: value >> 32), Int32(truncatingIfNeeded: value & 0xFFFF_FFFF))
            }
            if found == .max { return nil }
            slot = (slot + 1) & mask
        }
    }

    /// Applies the merges to `symbols` in place, lowest rank first and leftmost first among equals (the
    /// order Hugging Face's BPE and GPT-2's `bpe()` produce), leaving the final token ids.
    func apply(to symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count <= 48 { applyByScanning(&symbols) } else { applyWithHeap(&symbols) }
    }

    /// Short pieces: find the best pair by a scan, merge, repeat (n² but n is small).
    private func applyByScanning(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var bestRank = Int32.max, bestIndex = -1, bestResult: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                if let found = merge(symbols[i], symbols[i + 1]), found.rank < bestRank {
                    bestRank = found.rank
                    bestIndex = i
                    bestResult = found.result
                }
            }
            if bestIndex < 0 { return }
            symbols[bestIndex] = bestResult
            symbols.remove(at: bestIndex + 1)
        }
    }

    /// Long pieces (a run of spaces, a line without a pattern): a heap of (rank, position) over a linked
    /// list of symbols, n log n.
    private func applyWithHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        var next = Array(1...n), previous = Array(-1..<(n - 1))  // next == n: end; previous == -1: start
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            if let found = merge(symbols[i], symbols[i + 1]) { heap.push(rank: found.rank, position: i) }
        }
        while let top = heap.pop() {
            let i = top.position, j = next[i]
            guard alive[i], j < n, let found = merge(symbols[i], symbols[j]), found.rank == top.rank else { continue }
            symbols[i] = found.result
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { previous[next[j]] = i }
            if previous[i] >= 0, let left = merge(symbols[previous[i]], symbols[i]) {
                heap.push(rank: left.rank, position: previous[i])
            }
            if next[i] < n, let right = merge(symbols[i], symbols[next[i]]) { heap.push(rank: right.rank, position: i) }
        }
        var merged: [Int32] = []
        var i = 0
        while i < n { merged.append(symbols[i]); i = next[i] }
        symbols = merged
    }
}

/// A binary min-heap of (rank, position), ordered by rank then position.
struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(rank: Int32, position: Int) {
        items.append(UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(position))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && items[left] < items[smallest] { smallest = left }
                if right < items.count && items[right] < items[smallest] { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (Int32(truncatingIfNeeded: top >> 32), Int(top & 0xFFFF_FFFF))
    }
}
