/// How often each distinct piece of a corpus occurs, keyed by its bytes (open addressing over one byte
/// arena: counting a piece allocates nothing unless it is new).
struct PieceCounter {
    private var hashes: [UInt64]
    private var entries: [(start: Int, count: Int32, index: Int32)]
    private(set) var bytes: [UInt8] = []
    /// Occurrences of each distinct piece, in order of first appearance.
    private(set) var occurrences: [Int64] = []
    /// Each distinct piece's range in `bytes`, in order of first appearance.
    private(set) var ranges: [Range<Int>] = []

    init(capacity: Int = 1 << 12) {
        var slots = 16
        while slots < capacity * 2 { slots <<= 1 }
        hashes = [UInt64](repeating: 0, count: slots)
        entries = Array(repeating: (0, 0, 0), count: slots)
    }

    var distinctCount: Int { occurrences.count }

    /// Adds `times` occurrences of `piece`.
    mutating func add(_ piece: UnsafeBufferPointer<UInt8>, times: Int64 = 1) {
        let hash = WordCache.hash(piece)
        let mask = hashes.count - 1
        var slot = Int(truncatingIfNeeded: hash >> 16) & mask
        while hashes[slot] != 0 {
            if hashes[slot] == hash && equals(piece, entries[slot]) {
                occurrences[Int(entries[slot].index)] += times
                return
            }
            slot = (slot + 1) & mask
        }
        hashes[slot] = hash
        entries[slot] = (bytes.count, Int32(piece.count), Int32(occurrences.count))
        ranges.append(bytes.count..<(bytes.count + piece.count))
        bytes.append(contentsOf: piece)
        occurrences.append(times)
        if occurrences.count * 2 > hashes.count { grow() }
    }

    /// Adds every piece another counter holds, with its count.
    mutating func add(_ other: PieceCounter) {
        other.bytes.withUnsafeBufferPointer { all in
            for (k, range) in other.ranges.enumerated() {
                add(UnsafeBufferPointer(rebasing: all[range]), times: other.occurrences[k])
            }
        }
    }

    private func equals(_ piece: UnsafeBufferPointer<UInt8>, _ entry: (start: Int, count: Int32, index: Int32)) -> Bool {
        guard Int(entry.count) == piece.count else { return false }
        for k in 0..<piece.count where bytes[entry.start + k] != piece[k] { return false }
        return true
    }

    private mutating func grow() {
        let slots = hashes.count * 2
        hashes = [UInt64](repeating: 0, count: slots)
        entries = Array(repeating: (0, 0, 0), count: slots)
        bytes.withUnsafeBufferPointer { all in
            for (k, range) in ranges.enumerated() {
                let hash = WordCache.hash(UnsafeBufferPointer(rebasing: all[range]))
                var slot = Int(truncatingIfNeeded: hash >> 16) & (slots - 1)
                while hashes[slot] != 0 { slot = (slot + 1) & (slots - 1) }
                hashes[slot] = hash
                entries[slot] = (range.lowerBound, Int32(range.count), Int32(k))
            }
        }
    }
}
