/// How text is cut into pieces before byte-pair merges, so that no merge crosses a piece boundary:
/// GPT-2's regular expression, GPT-4's (cl100k), or none (each text segment is one piece).
public enum SplitPattern: String, Sendable, CaseIterable {
    case gpt2, gpt4, none

    /// The regular expression as Hugging Face's `tokenizer.json` and tiktoken state it.
    public var regex: String? {
        switch self {
        case .gpt2: return #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        case .gpt4:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"#
                + #"\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .none: return nil
        }
    }
}

/// The character classes the split patterns name: letters (\p{L}), numbers (\p{N}), white space (\s,
/// Unicode's White_Space as Oniguruma's \s), anything else.
enum CharacterClass: UInt8 {
    case other = 0, letter = 1, number = 2, space = 3
}

/// Cuts valid UTF-8 into pieces exactly as the pattern's regular expression (leftmost alternative first,
/// greedy with backtracking) would, without a regex engine: each alternative is a scan over code points.
struct PreTokenizer {
    let pattern: SplitPattern

    private static let asciiClasses: [CharacterClass] = (0..<128).map { byte in
        classify(Unicode.Scalar(UInt8(byte)))
    }

    static func classify(_ scalar: Unicode.Scalar) -> CharacterClass {
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// Calls `piece` with the byte range of every piece of `text` (valid UTF-8), in order.
    func split(_ text: UnsafeBufferPointer<UInt8>, _ piece: (Range<Int>) -> Void) {
        guard pattern != .none else {
            if !text.isEmpty { piece(0..<text.count) }
            return
        }
        let scanner = Scanner(text: text)
        var start = 0
        while start < text.count {
            let end = pattern == .gpt2 ? scanner.gpt2Piece(at: start) : scanner.gpt4Piece(at: start)
            piece(start..<end)
            start = end
        }
    }

    /// The code points of a UTF-8 buffer, read where the alternatives look.
    struct Scanner {
        let text: UnsafeBufferPointer<UInt8>

        /// The code point at byte `i`, its class and its length in bytes.
        @inline(__always)
        func at(_ i: Int) -> (value: UInt32, kind: CharacterClass, length: Int) {
            let lead = text[i]
            if lead < 0x80 { return (UInt32(lead), PreTokenizer.asciiClasses[Int(lead)], 1) }
            let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
            var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            for k in 1..<length { value = value << 6 | UInt32(text[i + k] & 0x3F) }
            return (value, PreTokenizer.classify(Unicode.Scalar(value) ?? "\u{FFFD}"), length)
        }

        /// The end of the run of `kind` starting at `i`, and the start of its last code point.
        @inline(__always)
        func run(from i: Int, of kind: CharacterClass, limit: Int = .max) -> (end: Int, lastStart: Int) {
            var k = i, last = i, taken = 0
            while k < text.count && taken < limit {
                let c = at(k)
                guard c.kind == kind else { break }
                last = k
                k += c.length
                taken += 1
            }
            return (k, last)
        }

        /// The length of a contraction ('s 't 'm 'd 're 've 'll) starting at the apostrophe at `i`, or 0.
        func contraction(at i: Int, ignoringCase: Bool) -> Int {
            func letter(_ k: Int) -> UInt8? {
                guard k < text.count else { return nil }
                let byte = text[k]
                return ignoringCase && byte >= 65 && byte <= 90 ? byte + 32 : byte
            }
            switch (letter(i + 1), letter(i + 2)) {
            case (UInt8(ascii: "r"), UInt8(ascii: "e")), (UInt8(ascii: "v"), UInt8(ascii: "e")),
                 (UInt8(ascii: "l"), UInt8(ascii: "l")): return 3
            case (UInt8(ascii: "s"), _), (UInt8(ascii: "t"), _), (UInt8(ascii: "m"), _), (UInt8(ascii: "d"), _): return 2
            default: return 0
            }
        }

        /// `\s+(?!\S)|\s+` at white space `i`: the run, less its last code point when \S follows it.
        func spaces(at i: Int) -> Int {
            let (end, lastStart) = run(from: i, of: .space)
            return end < text.count && lastStart > i ? lastStart : end
        }

        /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
        func gpt2Piece(at i: Int) -> Int {
            let first = at(i)
            if first.value == 0x27 {
                let length = contraction(at: i, ignoringCase: false)
                if length > 0 { return i + length }
            }
            let j = first.value == 0x20 ? i + 1 : i
            if j < text.count {
                let kind = at(j).kind
                if kind != .space { return run(from: j, of: kind).end }
            }
            return spaces(at: i)
        }

        /// GPT-4: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
        /// \s*[\r\n]+|\s+(?!\S)|\s+
        func gpt4Piece(at i: Int) -> Int {
            let first = at(i)
            if first.value == 0x27 {
                let length = contraction(at: i, ignoringCase: true)
                if length > 0 { return i + length }
            }
            if first.kind == .letter { return run(from: i, of: .letter).end }
            let isLineBreak = first.value == 0x0A || first.value == 0x0D
            let next = i + first.length
            if !isLineBreak && first.kind != .number && next < text.count && at(next).kind == .letter {
                return run(from: next, of: .letter).end
            }
            if first.kind == .number { return run(from: i, of: .number, limit: 3).end }
            let j = first.value == 0x20 ? i + 1 : i
            if j < text.count && at(j).kind == .other {
                var end = run(from: j, of: .other).end
                while end < text.count && (text[end] == 0x0A || text[end] == 0x0D) { end += 1 }
                return end
            }
            // \s*[\r\n]+: the white-space run up to and including its last line break.
            let (end, _) = run(from: i, of: .space)
            var lastBreak = -1
            for k in i..<end where text[k] == 0x0A || text[k] == 0x0D { lastBreak = k }
            if lastBreak >= 0 { return lastBreak + 1 }
            return spaces(at: i)
        }
    }
}
