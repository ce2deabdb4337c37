/// Token ids of recently encoded pieces, keyed by their bytes: most pieces of a text are words seen
/// before, so a lookup replaces the merges. Bounded: cleared when full (memory never follows the corpus).
struct WordCache {
    private static let slotCount = 1 << 16
    private static let maximumKeyBytes = 64
    private var hashes: [UInt64]
    private var keyRanges: [(start: Int32, count: Int32)]
    private var valueRanges: [(start: Int32, count: Int32)]
    private var keyBytes: [UInt8] = []
    private var valueIDs: [Int32] = []
    private var used = 0

    init() {
        hashes = [UInt64](repeating: 0, count: WordCache.slotCount)
        keyRanges = Array(repeating: (0, 0), count: WordCache.slotCount)
        valueRanges = Array(repeating: (0, 0), count: WordCache.slotCount)
        keyBytes.reserveCapacity(WordCache.slotCount * 8)
        valueIDs.reserveCapacity(WordCache.slotCount * 2)
    }

    @inline(__always) static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h | 1  // 0 marks an empty slot
    }

    /// Appends the cached ids of `piece` to `ids` and returns true, or returns false when not cached.
    mutating func lookUp(_ piece: UnsafeBufferPointer<UInt8>, hash: UInt64, appendingTo ids: inout [Int32]) -> Bool {
        guard piece.count <= WordCache.maximumKeyBytes else { return false }
        var slot = Int(truncatingIfNeeded: hash >> 16) & (WordCache.slotCount - 1)
        while hashes[slot] != 0 {
            if hashes[slot] == hash && matches(piece, keyRanges[slot]) {
                let range = valueRanges[slot]
                ids.append(contentsOf: valueIDs[Int(range.start)..<Int(range.start + range.count)])
                return true
            }
            slot = (slot + 1) & (WordCache.slotCount - 1)
        }
        return false
    }

    private func matches(_ piece: UnsafeBufferPointer<UInt8>, _ range: (start: Int32, count: Int32)) -> Bool {
        guard Int(range.count) == piece.count else { return false }
        let start = Int(range.start)
        for k in 0..<piece.count where keyBytes[start + k] != piece[k] { return false }
        return true
    }

    /// Remembers `tokens` as the encoding of `piece` (short pieces only; clears itself when half full).
    mutating func insert(_ piece: UnsafeBufferPointer<UInt8>, hash: UInt64, tokens: ArraySlice<Int32>) {
        guard piece.count <= WordCache.maximumKeyBytes else { return }
        if used >= WordCache.slotCount / 2 { clear() }
        var slot = Int(truncatingIfNeeded: hash >> 16) & (WordCache.slotCount - 1)
        while hashes[slot] != 0 { slot = (slot + 1) & (WordCache.slotCount - 1) }
        hashes[slot] = hash
        keyRanges[slot] = (Int32(keyBytes.count), Int32(piece.count))
        valueRanges[slot] = (Int32(valueIDs.count), Int32(tokens.count))
        keyBytes.append(contentsOf: piece)
        valueIDs.append(contentsOf: tokens)
        used += 1
    }

    private mutating func clear() {
        for i in hashes.indices { hashes[i] = 0 }
        keyBytes.removeAll(keepingCapacity: true)
        valueIDs.removeAll(keepingCapacity: true)
        used = 0
    }
}
