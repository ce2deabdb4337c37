import ArgumentParser
import Collectives
import Datasets
import Foundation
import Serving
import Text
import Training

/// `distrain serve --checkpoint DIR …`: the models behind an HTTP server (see docs/serve.md).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve checkpoints over HTTP: predictions with dynamic batching, OpenAI-style completions with "
            + "continuous batching and streaming, /metrics, /healthz and a page at /.",
        discussion: """
        Each --checkpoint is NAME=DIR or DIR (named after its folder); float and int8 checkpoints alike.
          distrain serve --checkpoint mnist=runs/mnist --checkpoint kjv=runs/kjv --port 8080
          curl -s localhost:8080/v1/models/mnist/predict -H 'Content-Type: image/png' --data-binary @digit.png
          curl -sN localhost:8080/v1/completions -d '{"model":"kjv","prompt":"And God said","max_tokens":50,"stream":true}'
        SIGTERM or SIGINT stops accepting, finishes in-flight requests (at most --drain-seconds) and exits 0.
        """)

    @Option(name: .customLong("checkpoint"), help: ArgumentHelp("NAME=DIR or DIR: a checkpoint folder or a --checkpoint-dir "
        + "(its best); repeat for more models.", valueName: "name=dir"))
    var checkpoints: [String] = []

    @Option(help: "Address to listen on; beyond loopback it needs --api-key (or --insecure).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed).")
    var port = 8080

    @Option(name: .customLong("max-batch"), help: "Samples (or sequences of a language model) per forward pass at most.")
    var maxBatch = 64

    @Option(name: .customLong("max-wait-ms"), help: "How long a request waits for others to join its batch.")
    var maxWaitMilliseconds = 0.0

    @Option(name: .customLong("max-queue"), help: "Requests waiting per model beyond which the server answers 503.")
    var maxQueue = 1024

    @Option(name: .customLong("max-body-mb"), help: "Largest request body in MiB (413 beyond).")
    var maxBodyMegabytes = 16.0

    @Option(name: .customLong("max-tokens-limit"), help: "Largest max_tokens a completion may ask for.")
    var maxTokensLimit = 4096

    @Option(name: .customLong("header-timeout"), help: "Seconds a client has to send a request's head (and keep-alive idle time).")
    var headerTimeout = 10.0

    @Option(name: .customLong("body-timeout"), help: "Seconds a client has to send a request's body after its head.")
    var bodyTimeout = 30.0

    @Option(name: .customLong("drain-seconds"), help: "After SIGTERM, how long in-flight requests may run before exit.")
    var drainSeconds = 30.0

    @Option(name: .customLong("api-key"), help: "Bearer token every API request must carry (default: $DISTRAIN_API_KEY).")
    var apiKey: String?

    @Flag(help: "Allow a non-loopback --host without --api-key.")
    var insecure = false

    @Flag(name: .customLong("no-access-log"), help: "Do not print one JSON line per request.")
    var noAccessLog = false

    @Option(help: ttaHelp)
    var tta: TestTimeAugmentation?

    @OptionGroup var resources: ThreadOptions

    var options: ServerOptions {
        var options = ServerOptions()
        options.host = host
        options.port = port
        options.maxBatch = maxBatch
        options.maxWaitMilliseconds = maxWaitMilliseconds
        options.maxQueue = maxQueue
        options.maxBodyBytes = Int(maxBodyMegabytes * 1_048_576)
        options.maxTokensLimit = maxTokensLimit
        options.headerTimeoutSeconds = headerTimeout
        options.bodyTimeoutSeconds = bodyTimeout
        options.drainSeconds = drainSeconds
        options.apiKey = apiKey ?? ProcessInfo.processInfo.environment["DISTRAIN_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        options.accessLog = !noAccessLog
        return options
    }

    func validate() throws {
        if checkpoints.isEmpty { throw ValidationError("serve needs at least one --checkpoint DIR (or NAME=DIR)") }
        if !(0...65_535).contains(port) { throw ValidationError("--port must be in 0...65535, got \(port)") }
        if !(1...4096).contains(maxBatch) { throw ValidationError("--max-batch must be in 1...4096, got \(maxBatch)") }
        if !(0...10_000).contains(maxWaitMilliseconds) {
            throw ValidationError("--max-wait-ms must be in 0...10000, got \(maxWaitMilliseconds)")
        }
        if !(1...1_000_000).contains(maxQueue) { throw ValidationError("--max-queue must be in 1...1000000, got \(maxQueue)") }
        if !(maxBodyMegabytes > 0 && maxBodyMegabytes <= 4096) {
            throw ValidationError("--max-body-mb must be in (0, 4096], got \(maxBodyMegabytes)")
        }
        if !(1...1_000_000).contains(maxTokensLimit) {
            throw ValidationError("--max-tokens-limit must be in 1...1000000, got \(maxTokensLimit)")
        }
        for (name, value) in [("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout),
                              ("--drain-seconds", drainSeconds)] where !(value > 0 && value <= 86_400) {
            throw ValidationError("\(name) must be in (0, 86400] seconds, got \(value)")
        }
        if let apiKey, apiKey.isEmpty || apiKey.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--api-key must be a non-empty token without spaces")
        }
        if !ServerOptions.isLoopback(host) && options.apiKey == nil && !insecure {
            throw ValidationError("--host \(host) reaches beyond this machine: give --api-key KEY (or set DISTRAIN_API_KEY), "
                + "or pass --insecure to serve without one")
        }
        let names = try checkpoints.map { try Self.split($0).name }
        if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw ValidationError("two --checkpoint values are named '\(repeated)'; name them NAME=DIR")
        }
    }

    /// "NAME=DIR" or "DIR" (named after its last path component).
    static func split(_ value: String) throws -> (name: String, path: String) {
        if let equals = value.firstIndex(of: "="), !FileManager.default.fileExists(atPath: value) {
            let name = String(value[..<equals]), path = String(value[value.index(after: equals)...])
            guard !name.isEmpty, !path.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw ValidationError("--checkpoint \(value): give NAME=DIR with a name of letters, digits, - _ or .")
            }
            return (name, path)
        }
        var trimmed = value
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let name = (trimmed as NSString).lastPathComponent.filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }
        return (name.isEmpty ? "model" : name, value)
    }

    func run() throws {
        if let rank = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"], rank != "0" { return }
        let single = resources.makeSingleProcess()
        raiseOpenFileLimit()
        let options = self.options, metrics = ServerMetrics()
        var models: [ServedModel] = []
        do {
            for value in checkpoints {
                let (name, path) = try Self.split(value)
                let (file, folder) = try readSavedModelFile(path, communicator: single)
                var tokenizer: Tokenizer?
                if LanguageModelCheckpoint.holdsLanguageModel(file) {
                    tokenizer = try checkpointTokenizer(for: try LanguageModelCheckpoint(file: file), folder: folder, override: nil)
                }
                let model = try ServedModel.make(name: name, checkpoint: file, tokenizer: tokenizer, testTimeAugmentation: tta,
                                                 options: options, metrics: metrics)
                print("distrain serve: \(name) ← \(folder): \(model.summary)")
                models.append(model)
            }
        } catch {
            printError("\(error)")
            throw ExitCode(error is ValidationError ? ExitCode.validationFailure.rawValue : 1)
        }
        fflush(stdout)
        try serve(ModelServer(models: models, options: options, metrics: metrics))
    }

    /// Runs the server on Swift concurrency's threads and waits for it on this one.
    private func serve(_ server: ModelServer) throws {
        let done = DispatchSemaphore(value: 0)
        let failure = ErrorBox()
        let host = host
        Task {
            do {
                try await server.run { port in
                    print("distrain serve: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)  (Ctrl-C stops)")
                    fflush(stdout)
                }
            } catch { failure.error = error }
            done.signal()
        }
        done.wait()
        if let error = failure.error {
            printError("cannot serve on \(host):\(port): \(error); is the port in use? Pick another with --port")
            throw ExitCode.failure
        }
        print("distrain serve: stopped")
    }

    /// As many open files as the hard limit allows: each connection is one.
    private func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 65_536)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
}

private final class ErrorBox: @unchecked Sendable {
    var error: Error?
}
