import Foundation

/// Learns a byte-level BPE vocabulary from text: counts the corpus's pieces (in parallel), then merges
/// the most frequent adjacent pair until the vocabulary is full. Deterministic: among pairs of equal
/// count the one with the smaller (left id, right id) merges first, so the result depends only on the
/// text, the pattern, the vocabulary size and the special tokens — not on threads or file order within
/// a chunk.
public struct BPETrainer {
    /// The largest vocabulary distrain trains or loads (ids must fit the shard formats and a Float input).
    public static let maximumVocabularySize = 1 << 20
    public let vocabularySize: Int
    public let pattern: SplitPattern
    public let specialTokens: [String]
    public let threads: Int
    private var counter = PieceCounter()
    private let preTokenizer: PreTokenizer

    /// Throws when `vocabularySize` cannot hold the 256 bytes and the special tokens, or exceeds 2^20.
    public init(vocabularySize: Int, pattern: SplitPattern = .gpt2, specialTokens: [String] = ["<|endoftext|>"],
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        let minimum = 256 + specialTokens.count
        guard vocabularySize >= minimum && vocabularySize <= BPETrainer.maximumVocabularySize else {
            throw TextError.vocabularySize(requested: vocabularySize, minimum: minimum,
                                           maximum: BPETrainer.maximumVocabularySize)
        }
        self.vocabularySize = vocabularySize
        self.pattern = pattern
        self.specialTokens = specialTokens
        self.threads = max(1, threads)
        preTokenizer = PreTokenizer(pattern: pattern)
    }

    /// Counts the pieces of `text` (valid UTF-8, whole documents or cut at `TextChunks` boundaries).
    public mutating func count(_ text: UnsafeBufferPointer<UInt8>) {
        count(text, segments: TextChunks.split(text, into: threads, pattern: pattern))
    }

    /// Counts the pieces of each segment of `text` (documents, or parts cut at `TextChunks` boundaries),
    /// the segments shared among the threads.
    public mutating func count(_ text: UnsafeBufferPointer<UInt8>, segments: [Range<Int>]) {
        let workers = min(threads, segments.count)
        if workers <= 1 {
            for segment in segments { countPieces(UnsafeBufferPointer(rebasing: text[segment]), into: &counter) }
            return
        }
        var partial = [PieceCounter](repeating: PieceCounter(), count: workers)
        partial.withUnsafeMutableBufferPointer { counters in
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for k in stride(from: worker, to: segments.count, by: workers) {
                    countPieces(UnsafeBufferPointer(rebasing: text[segments[k]]), into: &counters[worker])
                }
            }
        }
        for part in partial { counter.add(part) }
    }

    private func countPieces(_ text: UnsafeBufferPointer<UInt8>, into counter: inout PieceCounter) {
        var start = 0
        let specials = specialTokens.enumerated().map { SpecialToken($0.element, id: Int32($0.offset)) }
        for (matchStart, length, _) in SpecialTokenMatches(text: text, specials: specials) {
            splitAndCount(UnsafeBufferPointer(rebasing: text[start..<matchStart]), into: &counter)
            start = matchStart + length
        }
        splitAndCount(UnsafeBufferPointer(rebasing: text[start...]), into: &counter)
    }

    private func splitAndCount(_ text: UnsafeBufferPointer<UInt8>, into counter: inout PieceCounter) {
        preTokenizer.split(text) { counter.add(UnsafeBufferPointer(rebasing: text[$0])) }
    }

    /// Distinct pieces counted so far.
    public var distinctPieces: Int { counter.distinctCount }

    /// The tokenizer: 256 byte tokens (id = byte value), the merges in order, then the special tokens.
    /// Throws `emptyCorpus` when nothing was counted.
    public func train() throws -> Tokenizer {
        guard counter.distinctCount > 0 else { throw TextError.emptyCorpus(path: "the corpus") }
        var merging = PairMerging(counter: counter)
        let mergeBudget = vocabularySize - 256 - specialTokens.count
        merging.run(untilTokens: 256 + mergeBudget)
        var tokenBytes = merging.tokenBytes
        var specials: [SpecialToken] = []
        for content in specialTokens {
            specials.append(SpecialToken(content, id: Int32(tokenBytes.count)))
            tokenBytes.append(Array(content.utf8))
        }
        return Tokenizer(kind: .byteLevelBPE, pattern: pattern, tokenBytes: tokenBytes, merges: merging.merges,
                         specialTokens: specials)
    }
}

/// The merge loop over distinct pieces: pair counts, which pieces hold each pair, and a max-heap of
/// (count, pair) updated lazily (a popped entry whose count is stale is pushed back with the true one).
struct PairMerging {
    private var words: [[Int32]]
    private let weights: [Int64]
    private var pairCounts: [UInt64: Int64] = [:]
    private var pairWords: [UInt64: [Int32]] = [:]
    private var heap = PairHeap()
    private var idsByBytes: [[UInt8]: Int32] = [:]
    private(set) var tokenBytes: [[UInt8]] = (0..<256).map { [UInt8($0)] }
    private(set) var merges: [(Int32, Int32, Int32)] = []

    init(counter: PieceCounter) {
        words = counter.ranges.map { range in counter.bytes[range].map { Int32($0) } }
        weights = counter.occurrences
        for (id, bytes) in tokenBytes.enumerated() { idsByBytes[bytes] = Int32(id) }
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let pair = MergeTable.key(word[i], word[i + 1])
                pairCounts[pair, default: 0] += weights[w]
                pairWords[pair, default: []].append(Int32(w))
            }
        }
        for (pair, count) in pairCounts { heap.push(count: count, pair: pair) }
    }

    mutating func run(untilTokens target: Int) {
        var lastTouched = [Int](repeating: -1, count: words.count)
        while tokenBytes.count < target, let top = heap.pop() {
            let current = pairCounts[top.pair] ?? 0
            if current != top.count {
                if current > 0 { heap.push(count: current, pair: top.pair) }
                continue
            }
            let left = Int32(truncatingIfNeeded: top.pair >> 32), right = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let bytes = tokenBytes[Int(left)] + tokenBytes[Int(right)]
            let result: Int32
            if let existing = idsByBytes[bytes] {
                result = existing
            } else {
                result = Int32(tokenBytes.count)
                tokenBytes.append(bytes)
                idsByBytes[bytes] = result
            }
            merges.append((left, right, result))
            let iteration = merges.count
            for w in pairWords[top.pair] ?? [] where lastTouched[Int(w)] != iteration {
                lastTouched[Int(w)] = iteration
                merge(word: Int(w), left: left, right: right, into: result)
            }
            pairWords[top.pair] = nil
        }
    }

    /// Replaces every (left, right) in word `w` by `result`, moving the word's weight from its old pairs
    /// to its new ones and queueing the pairs the merge created.
    private mutating func merge(word w: Int, left: Int32, right: Int32, into result: Int32) {
        let old = words[w], weight = weights[w]
        var new: [Int32] = []
        new.reserveCapacity(old.count)
        var i = 0
        while i < old.count {
            if i + 1 < old.count && old[i] == left && old[i + 1] == right {
                new.append(result)
                i += 2
            } else {
                new.append(old[i])
                i += 1
            }
        }
        guard new.count != old.count else { return }
        for i in 0..<(old.count - 1) { pairCounts[MergeTable.key(old[i], old[i + 1])]! -= weight }
        var created: [UInt64] = []
        for i in 0..<max(new.count - 1, 0) {
            let pair = MergeTable.key(new[i], new[i + 1])
            pairCounts[pair, default: 0] += weight
            if new[i] == result || new[i + 1] == result {
                created.append(pair)
                pairWords[pair, default: []].append(Int32(w))
            }
        }
        words[w] = new
        for pair in created { heap.push(count: pairCounts[pair]!, pair: pair) }
    }
}

/// A binary max-heap of (count, pair): the highest count first, the smaller pair key first among equals.
struct PairHeap {
    private var counts: [Int64] = []
    private var pairs: [UInt64] = []

    @inline(__always) private func before(_ a: Int, _ b: Int) -> Bool {
        counts[a] != counts[b] ? counts[a] > counts[b] : pairs[a] < pairs[b]
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        counts.swapAt(a, b)
        pairs.swapAt(a, b)
    }

    mutating func push(count: Int64, pair: UInt64) {
        counts.append(count)
        pairs.append(pair)
        var child = counts.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(child, parent) else { break }
            swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (count: Int64, pair: UInt64)? {
        guard !counts.isEmpty else { return nil }
        let top = (counts[0], pairs[0])
        swapAt(0, counts.count - 1)
        counts.removeLast()
        pairs.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var best = parent
            if left < counts.count && before(left, best) { best = left }
            if right < counts.count && before(right, best) { best = right }
            if best == parent { break }
            swapAt(parent, best)
            parent = best
        }
        return top
    }
}
