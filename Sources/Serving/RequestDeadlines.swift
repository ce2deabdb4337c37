import NIOCore
import NIOHTTPTypes

/// Closes a connection whose client is too slow: a request head must arrive within `header` seconds of the
/// connection opening or of the previous response ending (so an idle keep-alive connection is also closed
/// then), and its body within `body` seconds of the head. A slowloris client holds one connection for at most
/// that long and delays nobody else (NIO serves other connections meanwhile).
final class RequestDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let header: TimeAmount, body: TimeAmount
    private var deadline: Scheduled<Void>?

    init(headerSeconds: Double, bodySeconds: Double) {
        header = .milliseconds(Int64(headerSeconds * 1000))
        body = .milliseconds(Int64(bodySeconds * 1000))
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(header, context: context) }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(body, context: context)
        case .end: deadline?.cancel(); deadline = nil
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(header, context: context) }
        context.write(data, promise: promise)
    }

    private func arm(_ time: TimeAmount, context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: time) { channel.close(promise: nil) }
    }
}
