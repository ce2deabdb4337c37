/// Where a text can be cut so that each part splits into exactly the pieces the whole would: right after
/// a line feed that a printable ASCII character follows, or before a single space between two printable
/// ASCII characters (GPT-2's and GPT-4's patterns both start a piece there and join nothing across it;
/// special tokens hold neither).
public enum TextChunks {
    /// Whether `text[offset]` starts a part.
    @inline(__always)
    public static func isBoundary(_ text: UnsafeBufferPointer<UInt8>, at offset: Int) -> Bool {
        guard offset > 0 && offset + 1 < text.count else { return false }
        let previous = text[offset - 1], current = text[offset]
        if previous == 0x0A { return isPrintable(current) }
        return current == 0x20 && isPrintable(previous) && isPrintable(text[offset + 1])
    }

    @inline(__always) private static func isPrintable(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F }

    /// The last boundary at or before `limit` (and after `floor`), or nil.
    public static func lastBoundary(_ text: UnsafeBufferPointer<UInt8>, before limit: Int, after floor: Int = 0) -> Int? {
        var offset = min(limit, text.count - 1)
        while offset > floor {
            if isBoundary(text, at: offset) { return offset }
            offset -= 1
        }
        return nil
    }

    /// `text` cut at boundaries into at most `parts` ranges of similar size (one range when the pattern
    /// is `.none`, whose pieces are whole segments).
    public static func split(_ text: UnsafeBufferPointer<UInt8>, into parts: Int, pattern: SplitPattern) -> [Range<Int>] {
        guard parts > 1, pattern != .none, text.count >= 1 << 16 else { return [0..<text.count] }
        var ranges: [Range<Int>] = []
        var start = 0
        for k in 1..<parts {
            let target = text.count * k / parts
            guard target > start, let cut = lastBoundary(text, before: target, after: start) else { continue }
            ranges.append(start..<cut)
            start = cut
        }
        ranges.append(start..<text.count)
        return ranges
    }
}
