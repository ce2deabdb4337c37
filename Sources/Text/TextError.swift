/// Everything that can be wrong with a corpus, a tokenizer or a token shard, each saying what to do.
public enum TextError: Error, CustomStringConvertible, Equatable {
    /// A file's bytes are not UTF-8 at `offset`.
    case invalidUTF8(path: String, offset: Int)
    /// The corpus holds no text.
    case emptyCorpus(path: String)
    /// A tokenizer file that distrain cannot use, and why.
    case badTokenizer(path: String, problem: String)
    /// A token shard or its manifest is malformed.
    case badShard(path: String, problem: String)
    /// A requested vocabulary size outside what the tokenizer can have.
    case vocabularySize(requested: Int, minimum: Int, maximum: Int)
    /// An id outside the vocabulary.
    case invalidToken(id: Int, vocabularySize: Int)
    /// A character a character-level vocabulary never saw.
    case unknownCharacter(scalar: UInt32)
    /// A corpus path that is not a regular file or folder, or cannot be read.
    case unreadable(path: String, reason: String)
    /// An output that would destroy something distrain did not write.
    case refusedOutput(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidUTF8(path, offset):
            return "\(path): not UTF-8 at byte \(offset); convert it (iconv -f latin1 -t utf-8) "
                + "or pass --invalid-utf8 replace to read bad bytes as U+FFFD"
        case let .emptyCorpus(path): return "\(path): the corpus holds no text; give files with text in them"
        case let .badTokenizer(path, problem): return "\(path): \(problem)"
        case let .badShard(path, problem): return "\(path): \(problem); tokenize the corpus again (distrain tokenize)"
        case let .vocabularySize(requested, minimum, maximum):
            return "--vocab-size \(requested) is outside \(minimum)...\(maximum) (256 bytes + special tokens "
                + "at least, 2^20 at most)"
        case let .invalidToken(id, size): return "token id \(id) is outside the vocabulary (0..<\(size))"
        case let .unknownCharacter(scalar):
            return "character U+\(String(scalar, radix: 16, uppercase: true)) is not in the character-level "
                + "vocabulary; train the tokenizer on text that has it, or use byte-level BPE"
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .refusedOutput(path, reason): return "refusing to write \(path): \(reason)"
        }
    }
}

/// UTF-8 checks and repairs for bytes read from files.
public enum UTF8Validation {
    /// The offset of the first byte that does not begin or continue a well-formed UTF-8 sequence, or nil.
    public static func firstInvalidOffset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int, minimum: UInt32
            switch lead {
            case 0xC2...0xDF: length = 2; minimum = 0x80
            case 0xE0...0xEF: length = 3; minimum = 0x800
            case 0xF0...0xF4: length = 4; minimum = 0x10000
            default: return i
            }
            guard i + length <= n else { return i }
            var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            for k in 1..<length {
                let byte = bytes[i + k]
                guard byte & 0xC0 == 0x80 else { return i }
                value = value << 6 | UInt32(byte & 0x3F)
            }
            guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else { return i }
            i += length
        }
        return nil
    }

    /// `bytes` with every ill-formed sequence replaced by U+FFFD, one per maximal invalid subpart
    /// (Unicode's recommended practice, which Python's `errors="replace"` also follows).
    public static func replacingInvalid(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        Array(String(decoding: bytes, as: UTF8.self).utf8)
    }
}
