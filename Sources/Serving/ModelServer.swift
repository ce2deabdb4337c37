import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// `distrain serve`: the models behind one HTTP server until SIGTERM or SIGINT, then a drain — no new
/// connections, health checks fail, in-flight requests finish (at most `drainSeconds`) — and a clean return.
public final class ModelServer: @unchecked Sendable {
    public let models: [ServedModel]
    public let options: ServerOptions
    public let metrics: ServerMetrics
    private let draining = DrainFlag()
    private var group: ServiceGroup?
    private var signalSources: [DispatchSourceSignal] = []

    public init(models: [ServedModel], options: ServerOptions, metrics: ServerMetrics) {
        self.models = models
        self.options = options
        self.metrics = metrics
    }

    /// Serves until a stop signal (or `shutdown()`); `onRunning` gets the bound port. Throws when the address
    /// cannot be bound.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let endpoints = Endpoints(models: models, options: options, metrics: metrics, log: AccessLog(enabled: options.accessLog),
                                  draining: draining)
        let responder = CallbackResponder<ServeContext> { request, context in await endpoints.respond(request, context: context) }
        let header = options.headerTimeoutSeconds, body = options.bodyTimeoutSeconds
        let channel = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestDeadlines(headerSeconds: header, bodySeconds: body)],
            idleTimeout: TimeAmount.seconds(Int64(max(header, body) * 4)))
        var logger = Logger(label: "distrain-serve")
        logger.logLevel = .error
        let app = Application(
            responder: responder, server: .http1(configuration: channel),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "distrain",
                                 backlog: 1024, reuseAddress: true,
                                 availableConnectionsDelegate: MaximumAvailableConnections(options.maxConnections)),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        self.group = group
        installSignalHandlers()
        try await group.run()
        for model in models { model.stop() }
    }

    /// Starts the drain (what SIGTERM does): health fails, the listener closes, in-flight requests finish; after
    /// `drainSeconds` the process exits 0 even if some have not.
    public func shutdown() {
        guard !draining.isSet else { return }
        draining.set()
        let group = self.group, seconds = options.drainSeconds
        Task { await group?.triggerGracefulShutdown() }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            FileHandle.standardError.write(Data("distrain serve: requests still running after --drain-seconds \(seconds); exiting\n".utf8))
            exit(0)
        }
    }

    private func installSignalHandlers() {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                let name = number == SIGTERM ? "SIGTERM" : "SIGINT"
                FileHandle.standardError.write(Data(("distrain serve: \(name): not accepting new connections, finishing "
                    + "in-flight requests\n").utf8))
                self?.shutdown()
            }
            source.resume()
            signalSources.append(source)
        }
    }
}
