import Logging
import NIOCore
import NIOSSL
import NIOTLS
import SMTPCore

/// The thin network side of `SMTPServerSession`: bytes in, actions out, the
/// delegate's async answers fed back on the event loop.
final class SMTPServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct ShutdownEvent {}

    let configuration: SMTPListener.Configuration
    let tls: NIOSSLContext?
    let delegate: any SMTPServerDelegate
    let info: SMTPSessionInfo
    let logger: Logger
    let admitted: Bool

    var session: SMTPServerSession
    var input = SMTPInputBuffer()
    var reader: SMTPDataReader?
    var timer: Scheduled<Void>?
    var closing = false
    var shuttingDown = false

    init(configuration: SMTPListener.Configuration, tls: NIOSSLContext?, delegate: any SMTPServerDelegate, info: SMTPSessionInfo,
         logger: Logger, admitted: Bool) {
        self.configuration = configuration
        self.tls = tls
        self.delegate = delegate
        self.info = info
        self.logger = logger
        self.admitted = admitted
        self.session = SMTPServerSession(policy: configuration.policy)
    }

    func channelActive(context: ChannelHandlerContext) {
        guard admitted else {
            logger.notice("connection refused: too many connections", metadata: ["remote": .string(info.remoteAddress)])
            // RFC 5321 3.1: a server may answer 421 and close at once.
            send(SMTPReply(421, "4.7.0", "too many connections; try again later"), context: context)
            close(context: context)
            return
        }
        logger.info("session opened", metadata: ["remote": .string(info.remoteAddress)])
        send(session.greeting(), context: context)
        context.flush()
        armTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if admitted { logger.info("session closed") }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard admitted, !closing else { return }
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { input.append($0) }
        armTimer(context: context)
        pump(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted(let proto) = tlsEvent {
            logger.info("TLS established", metadata: ["alpn": .string(proto ?? "none")])
            session.tlsEstablished()
            // RFC 3207 4.2: anything that arrived in clear before the handshake is dropped.
            input.discardAll()
            context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
            pump(context: context)
            return
        }
        if event is ShutdownEvent {
            shuttingDown = true
            if session.mode == .command && input.isEmpty { run(session.shutdown(), context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            // Many clients close without a TLS close_notify after QUIT; nothing was lost.
            logger.debug("TLS closed without close_notify")
        } else if error is NIOSSLError || error is BoringSSLError {
            logger.notice("TLS failed", metadata: ["error": .string("\(error)")])
        } else {
            logger.debug("connection error", metadata: ["error": .string("\(error)")])
        }
        close(context: context)
    }

    // MARK: running the session

    private func pump(context: ChannelHandlerContext) {
        defer { context.flush() }
        while !closing {
            switch session.mode {
            case .closed, .waiting:
                return
            case .data:
                var current = reader ?? session.dataReader()
                guard let outcome = input.read(into: &current) else {
                    reader = current
                    return
                }
                reader = nil
                run(session.dataFinished(outcome), context: context)
            case .command:
                if shuttingDown && input.isEmpty {
                    run(session.shutdown(), context: context)
                    return
                }
                guard let line = input.takeLine(limit: SMTPCommand.maxLineLength) else { return }
                run(session.receive(line), context: context)
            }
        }
    }

    private func run(_ actions: [SMTPServerSession.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .reply(let reply):
                if reply.code >= 400 { logger.info("refused", metadata: ["reply": .string(reply.description)]) }
                send(reply, context: context)
            case .close:
                close(context: context)
            case .startTLS:
                startTLS(context: context)
            case .checkSender(let path):
                perform(context, { d, i in await d.checkSender(path, session: i) }) { $0.senderChecked($1) }
            case .checkRecipient(let path, let from, let user):
                perform(context, { d, i in await d.checkRecipient(path, mailFrom: from, user: user, session: i) }) { $0.recipientChecked($1) }
            case .authenticate(let user, let password):
                perform(context, { d, i in await d.authenticate(user: user, password: password, session: i) }) { s, ok in
                    s.authenticated(ok)
                }
            case .deliver(let envelope, let message):
                logger.info("message received", metadata: ["bytes": .stringConvertible(message.count), "recipients": .stringConvertible(envelope.recipients.count)])
                perform(context, { d, i in await d.deliver(envelope, message: message, session: i) }) { $0.delivered($1) }
            }
        }
    }

    /// Runs a delegate call off the event loop and feeds its result back on it.
    /// Reading stops meanwhile, so a client cannot pile up input.
    private func perform<T: Sendable>(
        _ context: ChannelHandlerContext, _ call: @escaping @Sendable (any SMTPServerDelegate, SMTPSessionInfo) async -> T,
        then feed: @escaping (inout SMTPServerSession, T) -> [SMTPServerSession.Action]
    ) {
        context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context, feed), eventLoop: loop)
        let delegate = self.delegate, info = self.info
        Task {
            let result = await call(delegate, info)
            loop.execute {
                let (handler, context, feed) = bound.value
                guard !handler.closing else { return }
                handler.run(feed(&handler.session, result), context: context)
                if !handler.closing { context.channel.setOption(.autoRead, value: true).whenComplete { _ in } }
                handler.armTimer(context: context)
                handler.pump(context: context)
            }
        }
    }

    private func startTLS(context: ChannelHandlerContext) {
        guard let tls else { return }
        context.flush()
        input.discardAll()
        do {
            // Added in front of everything: from here on, bytes are TLS records.
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
        } catch {
            logger.error("cannot start TLS", metadata: ["error": .string("\(error)")])
            close(context: context)
        }
    }

    private func send(_ reply: SMTPReply, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeBytes(reply.encoded)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// One timer: the command timeout between commands, the data timeout inside DATA,
    /// none while the HISP is working on the client's behalf.
    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        guard !closing else { return }
        let amount = session.mode == .data ? configuration.dataTimeout : configuration.commandTimeout
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: amount) {
            let (handler, context) = bound.value
            guard handler.session.mode != .waiting, !handler.closing else { return }
            handler.logger.info("timeout")
            handler.run(handler.session.timedOut(), context: context)
            context.flush()
        }
    }
}
