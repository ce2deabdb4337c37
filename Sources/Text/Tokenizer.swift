import Foundation

/// A token that stands for itself wherever its text appears (`<|endoftext|>`): matched in the raw text
/// before any splitting, never merged with its neighbours, as Hugging Face's added special tokens.
public struct SpecialToken: Sendable, Equatable {
    public let content: String
    public let id: Int32

    public init(_ content: String, id: Int32) {
        self.content = content
        self.id = id
    }
}

/// What a tokenizer's ids stand for.
public enum TokenizerKind: String, Sendable {
    /// Byte-level byte-pair encoding (GPT-2's scheme): ids are byte strings, any text encodes.
    case byteLevelBPE = "byte-level BPE"
    /// One id per Unicode character seen in training (nanoGPT's shakespeare_char).
    case characters = "character-level"
}

/// A trained or loaded tokenizer: token ids ↔ bytes, the merges, the split pattern and special tokens.
/// Immutable and shared by threads; each thread encodes with its own `TokenEncoder`.
public final class Tokenizer: @unchecked Sendable {
    public let kind: TokenizerKind
    public let pattern: SplitPattern
    /// The bytes of every token, by id (a special token's: its content; an unused id: empty).
    public let tokenBytes: [[UInt8]]
    public let specialTokens: [SpecialToken]
    /// Whether a piece that is itself a token skips the merges (Llama 3's `ignore_merges`).
    public let ignoresMerges: Bool
    let merges: MergeTable
    /// The id of each byte value's token (byte-level BPE).
    let byteIDs: [Int32]
    /// Ids of whole tokens by their bytes (for `ignoresMerges`).
    let idsByBytes: [[UInt8]: Int32]
    /// The id of each character (character-level).
    let characterIDs: [UInt32: Int32]

    init(kind: TokenizerKind, pattern: SplitPattern, tokenBytes: [[UInt8]], merges: [(Int32, Int32, Int32)],
         specialTokens: [SpecialToken], ignoresMerges: Bool = false) {
        self.kind = kind
        self.pattern = pattern
        self.tokenBytes = tokenBytes
        self.specialTokens = specialTokens.sorted { $0.content.utf8.count > $1.content.utf8.count }
        self.ignoresMerges = ignoresMerges
        self.merges = MergeTable(merges.map { (left: $0.0, right: $0.1, result: $0.2) })
        let specialIDs = Set(specialTokens.map(\.id))
        var byBytes: [[UInt8]: Int32] = [:]
        for (id, bytes) in tokenBytes.enumerated() where !specialIDs.contains(Int32(id)) && !bytes.isEmpty {
            if byBytes[bytes] == nil { byBytes[bytes] = Int32(id) }
        }
        idsByBytes = byBytes
        byteIDs = (0..<256).map { byBytes[[UInt8($0)]] ?? -1 }
        var characters: [UInt32: Int32] = [:]
        if kind == .characters {
            for (bytes, id) in byBytes {
                if let scalar = String(decoding: bytes, as: UTF8.self).unicodeScalars.first { characters[scalar.value] = id }
            }
        }
        characterIDs = characters
    }

    /// Ids 0 ..< vocabularySize.
    public var vocabularySize: Int { tokenBytes.count }
    /// The merge rules, in rank order, as (left, right, result) ids.
    public var mergeRules: [(left: Int32, right: Int32, result: Int32)] { merges.merges }
    /// The end-of-text token that separates documents, if the vocabulary has one.
    public var endOfText: Int32? { specialTokens.first { $0.content == "<|endoftext|>" }?.id }

    /// A new encoder (its own cache and scratch) for one thread.
    public func makeEncoder() -> TokenEncoder { TokenEncoder(self) }

    /// The ids of `text` (valid UTF-8 by construction of Swift strings).
    public func encode(_ text: String) throws -> [Int32] {
        var ids: [Int32] = []
        var copy = text
        try copy.withUTF8 { try makeEncoder().encode($0, appendingTo: &ids) }
        return ids
    }

    /// The bytes `ids` stand for. Throws for an id outside the vocabulary.
    public func decode(_ ids: [Int32]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0 && Int(id) < tokenBytes.count else {
                throw TextError.invalidToken(id: Int(id), vocabularySize: tokenBytes.count)
            }
            bytes.append(contentsOf: tokenBytes[Int(id)])
        }
        return bytes
    }
}

/// Encodes text with one tokenizer, reusing its cache and scratch between calls (one per thread).
public final class TokenEncoder {
    let tokenizer: Tokenizer
    private let preTokenizer: PreTokenizer
    private var cache = WordCache()
    private var symbols: [Int32] = []

    init(_ tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
        preTokenizer = PreTokenizer(pattern: tokenizer.pattern)
    }

    /// Appends the ids of `text` (valid UTF-8; see `UTF8Validation`) to `ids`: special tokens where
    /// their text appears, the pieces between them merged. Throws only for a character a character-level
    /// vocabulary has never seen.
    public func encode(_ text: UnsafeBufferPointer<UInt8>, appendingTo ids: inout [Int32]) throws {
        var start = 0
        for (matchStart, length, id) in SpecialTokenMatches(text: text, specials: tokenizer.specialTokens) {
            try encodeOrdinary(UnsafeBufferPointer(rebasing: text[start..<matchStart]), into: &ids)
            ids.append(id)
            start = matchStart + length
        }
        try encodeOrdinary(UnsafeBufferPointer(rebasing: text[start...]), into: &ids)
    }

    private func encodeOrdinary(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) throws {
        guard !text.isEmpty else { return }
        if tokenizer.kind == .characters { return try encodeCharacters(text, into: &ids) }
        preTokenizer.split(text) { range in
            encodePiece(UnsafeBufferPointer(rebasing: text[range]), into: &ids)
        }
    }

    private func encodePiece(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        if piece.count == 1 { ids.append(tokenizer.byteIDs[Int(piece[0])]); return }
        let hash = WordCache.hash(piece)
        if cache.lookUp(piece, hash: hash, appendingTo: &ids) { return }
        if tokenizer.ignoresMerges, let whole = tokenizer.idsByBytes[Array(piece)] {
            ids.append(whole)
            return
        }
        symbols.removeAll(keepingCapacity: true)
        for byte in piece { symbols.append(tokenizer.byteIDs[Int(byte)]) }
        tokenizer.merges.apply(to: &symbols)
        cache.insert(piece, hash: hash, tokens: symbols[...])
        ids.append(contentsOf: symbols)
    }

    private func encodeCharacters(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) throws {
        let scanner = PreTokenizer.Scanner(text: text)
        var i = 0
        while i < text.count {
            let c = scanner.at(i)
            guard let id = tokenizer.characterIDs[c.value] else {
                throw TextError.unknownCharacter(scalar: c.value)
            }
            ids.append(id)
            i += c.length
        }
    }
}

/// The leftmost-longest occurrences of special tokens in a text, as (start, length, id).
struct SpecialTokenMatches: Sequence, IteratorProtocol {
    let text: UnsafeBufferPointer<UInt8>
    let specials: [SpecialToken]  // longest first
    private let contents: [[UInt8]]
    private let firstBytes: [Bool]
    private var position = 0

    init(text: UnsafeBufferPointer<UInt8>, specials: [SpecialToken]) {
        self.text = text
        self.specials = specials
        contents = specials.map { Array($0.content.utf8) }
        var first = [Bool](repeating: false, count: 256)
        for content in contents where !content.isEmpty { first[Int(content[0])] = true }
        firstBytes = first
    }

    mutating func next() -> (Int, Int, Int32)? {
        guard !specials.isEmpty else { return nil }
        while position < text.count {
            defer { position += 1 }
            guard firstBytes[Int(text[position])] else { continue }
            for (k, content) in contents.enumerated() where !content.isEmpty && matches(content, at: position) {
                let match = (position, content.count, specials[k].id)
                position += content.count - 1
                return match
            }
        }
        return nil
    }

    private func matches(_ content: [UInt8], at start: Int) -> Bool {
        guard start + content.count <= text.count else { return false }
        for k in 0..<content.count where text[start + k] != content[k] { return false }
        return true
    }
}
