import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Text
import Training

/// The request context of `distrain serve`: Hummingbird's, plus the connection (to stop reading a body
/// that is too large) and the client's address (the access log).
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Routes and answers requests: the OpenAI-style model list and completions, KServe-style predictions,
/// health, metrics and the page. Every refusal is a JSON error with a 4xx/5xx status naming the problem.
final class Endpoints: Sendable {
    let models: [String: ServedModel]
    let order: [String]
    let options: ServerOptions
    let metrics: ServerMetrics
    let log: AccessLog
    let draining: DrainFlag

    init(models: [ServedModel], options: ServerOptions, metrics: ServerMetrics, log: AccessLog, draining: DrainFlag) {
        self.models = Dictionary(uniqueKeysWithValues: models.map { ($0.name, $0) })
        order = models.map(\.name)
        self.options = options
        self.metrics = metrics
        self.log = log
        self.draining = draining
    }

    /// Answers one request; records its status and latency, and logs it.
    func respond(_ request: Request, context: ServeContext) async -> Response {
        let started = Date()
        var entry = AccessLog.Entry(method: request.method.rawValue, path: request.uri.path,
                                    remote: context.channel.remoteAddress?.ipAddress ?? "")
        let (endpoint, response): (String, Response)
        do {
            (endpoint, response) = try await route(request, context: context, entry: &entry)
        } catch let problem as HTTPProblem {
            endpoint = Self.endpointName(request.uri.path)
            response = Self.problemResponse(problem)
        } catch {
            endpoint = Self.endpointName(request.uri.path)
            response = Self.problemResponse(HTTPProblem(500, "internal error: \(error)"))
        }
        entry.status = Int(response.status.code)
        if !entry.streamed {
            let seconds = Date().timeIntervalSince(started)
            metrics.record(endpoint: endpoint, status: entry.status, seconds: seconds)
            log.write(entry, seconds: seconds)
        }
        return response
    }

    private func route(_ request: Request, context: ServeContext,
                       entry: inout AccessLog.Entry) async throws -> (String, Response) {
        let path = request.uri.path, method = request.method
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if path == "/" || path == "/index.html" {
            try requireMethod(method, .get, path)
            return ("/", Self.text(WebPage.html, type: "text/html; charset=utf-8"))
        }
        if path == "/healthz" {
            try requireMethod(method, .get, path)
            if draining.isSet { throw HTTPProblem(503, "the server is draining after SIGTERM") }
            return ("/healthz", Self.json(.object([("status", .string("ok")), ("models", .integer(Int64(models.count)))])))
        }
        try authorize(request)
        if path == "/metrics" {
            try requireMethod(method, .get, path)
            return ("/metrics", Self.text(metrics.exposition(), type: "text/plain; version=0.0.4; charset=utf-8"))
        }
        if parts == ["v1", "models"] {
            try requireMethod(method, .get, path)
            return ("/v1/models", Self.json(.object([("object", .string("list")),
                                                    ("data", .array(order.map { models[$0]!.description }))])))
        }
        if parts.count == 3, parts[0] == "v1", parts[1] == "models" {
            try requireMethod(method, .get, path)
            return ("/v1/models/{name}", Self.json(try model(parts[2]).description))
        }
        if parts.count == 4, parts[0] == "v1", parts[1] == "models", parts[3] == "predict" {
            try requireMethod(method, .post, path)
            entry.model = parts[2]
            return ("/v1/models/{name}/predict", try await predict(request, model: try model(parts[2]), context: context))
        }
        if parts == ["v1", "completions"] {
            try requireMethod(method, .post, path)
            return ("/v1/completions", try await complete(request, context: context, entry: &entry))
        }
        throw HTTPProblem(404, "no endpoint \(path); see GET /v1/models, POST /v1/models/NAME/predict, "
            + "POST /v1/completions, GET /healthz, GET /metrics")
    }

    static func endpointName(_ path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        if parts.count == 4 && parts[0] == "v1" && parts[3] == "predict" { return "/v1/models/{name}/predict" }
        if parts.count == 3 && parts[0] == "v1" && parts[1] == "models" { return "/v1/models/{name}" }
        return ["/", "/healthz", "/metrics", "/v1/models", "/v1/completions"].contains(path) ? path : "other"
    }

    private func requireMethod(_ method: HTTPRequest.Method, _ expected: HTTPRequest.Method, _ path: String) throws {
        guard method == expected else {
            throw HTTPProblem(405, "\(path) takes \(expected.rawValue), not \(method.rawValue)", headers: [("Allow", expected.rawValue)])
        }
    }

    /// `Authorization: Bearer KEY` when the server has a key; the comparison takes the same time wherever they differ.
    private func authorize(_ request: Request) throws {
        guard let key = options.apiKey else { return }
        let given = request.headers[.authorization] ?? ""
        let expected = Array("Bearer \(key)".utf8), actual = Array(given.utf8)
        var difference = UInt8(expected.count == actual.count ? 0 : 1)
        for i in 0..<expected.count { difference |= expected[i] ^ (i < actual.count ? actual[i] : 0) }
        guard difference == 0 else {
            throw HTTPProblem(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY' with the server's "
                + "--api-key", headers: [("WWW-Authenticate", "Bearer")])
        }
    }

    func model(_ name: String) throws -> ServedModel {
        guard let model = models[name.removingPercentEncoding ?? name] else {
            throw HTTPProblem(404, "no model '\(name)'; this server has: \(order.joined(separator: ", "))")
        }
        return model
    }

    /// The body, at most `maxBodyBytes`: a longer declared length is refused before reading, a longer body as
    /// soon as it passes the limit; either way the connection stops reading and closes after the 413.
    func body(_ request: Request, context: ServeContext) async throws -> [UInt8] {
        let limit = options.maxBodyBytes
        let tooLarge = HTTPProblem(413, "the body is larger than \(limit) bytes (--max-body-mb); send less per request",
                                   headers: [("Connection", "close")])
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            context.channel.close(mode: .input, promise: nil)
            throw tooLarge
        }
        var bytes: [UInt8] = []
        for try await buffer in request.body {
            guard bytes.count + buffer.readableBytes <= limit else {
                context.channel.close(mode: .input, promise: nil)
                throw tooLarge
            }
            bytes.append(contentsOf: buffer.readableBytesView)
        }
        return bytes
    }

    static func json(_ value: JSONValue, status: Int = 200) -> Response {
        text(value.serialized, type: "application/json", status: status)
    }

    static func text(_ text: String, type: String, status: Int = 200) -> Response {
        Response(status: .init(code: status), headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func problemResponse(_ problem: HTTPProblem) -> Response {
        var response = text(problem.json, type: "application/json", status: problem.status)
        for (name, value) in problem.headers { response.headers[HTTPField.Name(name)!] = value }
        return response
    }
}

/// Set once SIGTERM arrives: health checks then fail so a load balancer stops sending.
final class DrainFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
