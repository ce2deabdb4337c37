/// A JSON value for the metrics log and `--json` outputs; objects keep their key order.
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case number(Double)
    case integer(Int64)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool { lhs.serialized == rhs.serialized }

    /// Compact one-line text. Non-finite numbers become null (JSON has no NaN).
    public var serialized: String {
        switch self {
        case let .string(text): return JSONValue.quote(text)
        case let .number(value):
            guard value.isFinite else { return "null" }
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return "\(value)"
        case let .integer(value): return String(value)
        case let .bool(value): return value ? "true" : "false"
        case let .array(values): return "[" + values.map(\.serialized).joined(separator: ",") + "]"
        case let .object(pairs):
            return "{" + pairs.map { JSONValue.quote($0.0) + ":" + $0.1.serialized }.joined(separator: ",") + "}"
        case .null: return "null"
        }
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

extension JSONValue {
    /// Floats print by their shortest decimal form (0.001, not 0.0010000000474974513).
    static func number(_ value: Float) -> JSONValue { .number(Double("\(value)") ?? Double(value)) }
    public static func int(_ value: Int) -> JSONValue { .integer(Int64(value)) }
}
