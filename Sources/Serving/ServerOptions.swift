import Foundation
import Training

/// How `distrain serve` listens, batches and protects itself; every limit has a default a user can raise.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (the tests); the chosen one is printed.
    public var port = 8080
    /// Samples (classifiers) or sequences (language models) in one forward pass at most.
    public var maxBatch = 64
    /// How long the first queued request waits for others to join its batch.
    public var maxWaitMilliseconds = 0.0
    /// Requests waiting per model beyond which new ones get 503 with Retry-After.
    public var maxQueue = 1024
    /// Request bodies above this get 413 without being read further.
    public var maxBodyBytes = 16 << 20
    /// A request's head must arrive within this (also the keep-alive idle limit), its body within the other.
    public var headerTimeoutSeconds = 10.0
    public var bodyTimeoutSeconds = 30.0
    /// Open connections at most; more wait in the listen backlog.
    public var maxConnections = 4096
    /// After SIGTERM, in-flight requests get this long before the server exits anyway.
    public var drainSeconds = 30.0
    /// Bearer token every API request must carry (nil: none).
    public var apiKey: String?
    /// `max_tokens` a completion may ask for (also capped by the context).
    public var maxTokensLimit = 4096
    /// One JSON line per request on standard output.
    public var accessLog = true

    public init() {}

    /// Whether the address is this machine only (no key needed).
    public static func isLoopback(_ host: String) -> Bool {
        ["127.0.0.1", "localhost", "::1"].contains(host) || host.hasPrefix("127.")
    }
}

/// A request the server refuses: its HTTP status, a one-line message naming the problem and what to do,
/// and headers such as Retry-After. The body is OpenAI's error shape, `{"error": {"message", "type", "code"}}`.
public struct HTTPProblem: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    public var headers: [(String, String)] = []

    public init(_ status: Int, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status): \(message)" }

    /// OpenAI's error type for the status.
    var type: String {
        switch status {
        case 401: return "authentication_error"
        case 404: return "not_found_error"
        case 413, 400, 422, 405, 415: return "invalid_request_error"
        case 503: return "overloaded_error"
        default: return "server_error"
        }
    }

    var json: String {
        JSONValue.object([("error", .object([("message", .string(message)), ("type", .string(type)),
                                            ("code", .integer(Int64(status)))]))]).serialized
    }
}
