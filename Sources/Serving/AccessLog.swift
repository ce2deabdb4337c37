import Foundation
import Training

/// One JSON line per request on standard output (time, client, method, path, model, status, milliseconds,
/// and for completions the tokens), written whole under a lock so lines never interleave.
final class AccessLog: @unchecked Sendable {
    struct Entry {
        var method: String
        var path: String
        var remote: String
        var model: String?
        var status = 0
        var promptTokens: Int?
        var completionTokens: Int?
        /// A streamed response is logged when its stream ends, not when its head is sent.
        var streamed = false
    }

    private let enabled: Bool
    private let lock = NSLock()
    private let formatter = ISO8601DateFormatter()

    init(enabled: Bool) {
        self.enabled = enabled
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    }

    func write(_ entry: Entry, seconds: Double) {
        guard enabled else { return }
        var fields: [(String, JSONValue)] = [("time", .string(lock.withLock { formatter.string(from: Date()) })),
                                             ("remote", .string(entry.remote)), ("method", .string(entry.method)),
                                             ("path", .string(entry.path)), ("status", .integer(Int64(entry.status))),
                                             ("ms", .number((seconds * 1e5).rounded() / 100))]
        if let model = entry.model { fields.append(("model", .string(model))) }
        if let prompt = entry.promptTokens { fields.append(("prompt_tokens", .integer(Int64(prompt)))) }
        if let completion = entry.completionTokens { fields.append(("completion_tokens", .integer(Int64(completion)))) }
        let line = JSONValue.object(fields).serialized + "\n"
        lock.withLock { FileHandle.standardOutput.write(Data(line.utf8)) }
    }
}
