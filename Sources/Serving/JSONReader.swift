import Foundation

/// A parsed JSON value of a request body. Numbers stay Double (JSON's own model); objects keep key order.
public indirect enum JSONNode: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONNode])
    case object([(String, JSONNode)])

    public static func == (a: JSONNode, b: JSONNode) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONNode? {
        if case let .object(pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }

    /// "a number", "an array", … for error messages.
    public var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A strict RFC 8259 reader for request bodies: one pass over the bytes, nesting at most `maxDepth` deep,
/// numbers by `strtod` (a 784-pixel instance reads in microseconds; Foundation's JSONSerialization takes
/// ~200 µs and reports booleans as numbers). Errors say what was found where.
public struct JSONReader {
    public static let maxDepth = 64
    private let bytes: UnsafeBufferPointer<UInt8>
    private var at = 0

    /// Parses `data` as one JSON value; throws a 400 problem naming the byte offset and what is wrong.
    public static func parse(_ data: UnsafeBufferPointer<UInt8>) throws -> JSONNode {
        var reader = JSONReader(bytes: data)
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.at == data.count else { throw reader.fail("unexpected text after the JSON value") }
        return value
    }

    public static func parse(_ data: [UInt8]) throws -> JSONNode {
        try data.withUnsafeBufferPointer { try parse($0) }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private func fail(_ problem: String) -> HTTPProblem {
        HTTPProblem(400, "the body is not valid JSON: \(problem) at byte \(at); send a JSON object")
    }

    private mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
    }

    private mutating func value(depth: Int) throws -> JSONNode {
        guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
        guard at < bytes.count else { throw fail("it ends early") }
        switch bytes[at] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    private mutating func literal(_ word: String) throws {
        for byte in word.utf8 {
            guard at < bytes.count, bytes[at] == byte else { throw fail("expected \(word)") }
            at += 1
        }
    }

    private mutating func array(depth: Int) throws -> JSONNode {
        at += 1
        var items: [JSONNode] = []
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard at < bytes.count else { throw fail("an array is not closed") }
            if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
            guard bytes[at] == UInt8(ascii: ",") else { throw fail("expected , or ] in an array") }
            at += 1
        }
    }

    private mutating func object(depth: Int) throws -> JSONNode {
        at += 1
        var pairs: [(String, JSONNode)] = []
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(pairs) }
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let key = try string()
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected : after a key") }
            at += 1
            skipSpace()
            pairs.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard at < bytes.count else { throw fail("an object is not closed") }
            if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(pairs) }
            guard bytes[at] == UInt8(ascii: ",") else { throw fail("expected , or } in an object") }
            at += 1
        }
    }

    private mutating func number() throws -> Double {
        let start = at
        if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
        let digits = at
        while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) { at += 1 }
        guard at > digits else { at = start; throw fail("unexpected character '\(Self.shown(bytes[start]))'") }
        if bytes[digits] == UInt8(ascii: "0") && at - digits > 1 { throw fail("a number with a leading zero") }
        var integral = true
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            integral = false
            at += 1
            let fraction = at
            while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) { at += 1 }
            guard at > fraction else { throw fail("a number without digits after its point") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            integral = false
            at += 1
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            let exponent = at
            while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) { at += 1 }
            guard at > exponent else { throw fail("a number without exponent digits") }
        }
        let length = at - start
        if integral && length <= 15 {
            var value = 0.0
            for i in digits..<at { value = value * 10 + Double(bytes[i] - UInt8(ascii: "0")) }
            return bytes[start] == UInt8(ascii: "-") ? -value : value
        }
        var text = [CChar](repeating: 0, count: length + 1)
        for i in 0..<length { text[i] = CChar(bitPattern: bytes[start + i]) }
        let value = strtod(text, nil)
        guard value.isFinite else { throw fail("a number beyond the range of a double") }
        return value
    }

    private mutating func string() throws -> String {
        at += 1
        var plainStart = at
        var utf8: [UInt8] = []
        while true {
            guard at < bytes.count else { throw fail("a string is not closed") }
            let byte = bytes[at]
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { throw fail("a control character inside a string") }
            if byte != UInt8(ascii: "\\") { at += 1; continue }
            utf8.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainStart..<at]))
            at += 1
            guard at < bytes.count else { throw fail("a string is not closed") }
            let escape = bytes[at]
            at += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"): utf8.append(contentsOf: Array(String(try unicodeEscape()).utf8))
            default: throw fail("an unknown escape \\\(Self.shown(escape))")
            }
            plainStart = at
        }
        utf8.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainStart..<at]))
        at += 1
        guard let text = String(validating: utf8, as: UTF8.self) else { throw fail("a string that is not UTF-8") }
        return text
    }

    /// \uXXXX, with a surrogate pair as one character.
    private mutating func unicodeEscape() throws -> Character {
        let high = try hex4()
        if (0xD800..<0xDC00).contains(high) {
            guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else {
                throw fail("a lone surrogate escape")
            }
            at += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate escape") }
            return Character(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!)
        }
        guard let scalar = Unicode.Scalar(high) else { throw fail("a lone surrogate escape") }
        return Character(scalar)
    }

    private mutating func hex4() throws -> UInt32 {
        guard at + 4 <= bytes.count else { throw fail("a short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Character(Unicode.Scalar(bytes[at])).hexDigitValue else { throw fail("a bad \\u escape") }
            value = value * 16 + UInt32(digit)
            at += 1
        }
        return value
    }

    private static func shown(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : String(format: "0x%02X", byte)
    }
}
