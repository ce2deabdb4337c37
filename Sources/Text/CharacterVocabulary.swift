/// Character-level vocabularies (nanoGPT's shakespeare_char): one id per distinct Unicode character of
/// the training text, in code-point order, then the special tokens.
public struct CharacterVocabularyBuilder {
    private var seen = Set<UInt32>()
    public let specialTokens: [String]

    public init(specialTokens: [String] = ["<|endoftext|>"]) { self.specialTokens = specialTokens }

    /// Notes the characters of `text` (valid UTF-8).
    public mutating func count(_ text: UnsafeBufferPointer<UInt8>) {
        let scanner = PreTokenizer.Scanner(text: text)
        var i = 0
        while i < text.count {
            let c = scanner.at(i)
            seen.insert(c.value)
            i += c.length
        }
    }

    /// The tokenizer. Throws when no character was seen or when they and the specials exceed 2^20 ids.
    public func build() throws -> Tokenizer {
        guard !seen.isEmpty else { throw TextError.emptyCorpus(path: "the corpus") }
        var tokenBytes = seen.sorted().map { Array(String(Unicode.Scalar($0)!).utf8) }
        var specials: [SpecialToken] = []
        for content in specialTokens {
            specials.append(SpecialToken(content, id: Int32(tokenBytes.count)))
            tokenBytes.append(Array(content.utf8))
        }
        return Tokenizer(kind: .characters, pattern: .none, tokenBytes: tokenBytes, merges: [], specialTokens: specials)
    }
}
