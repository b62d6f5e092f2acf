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
    let tls: ServerTLS?
    let delegate: any SMTPServerDelegate
    let info: SMTPSessionInfo
    let logger: Logger
    let admitted: Bool
    let onAuthenticated: @Sendable () -> Void

    var session: SMTPServerSession
    var input = SMTPInputBuffer()
    var reader: SMTPDataReader?
    var timer: Scheduled<Void>?
    var closing = false
    var shuttingDown = false

    // The deadlines (see `armTimer`).
    let started = NIODeadline.now()
    /// When the server last became ready for a command line (its last reply).
    var commandStarted = NIODeadline.now()
    var dataStarted = NIODeadline.now()
    var lastDataByte = NIODeadline.now()
    var dataReceived = 0
    /// The TLS handshake after STARTTLS is under way (it has the command deadline).
    var handshaking = false
    /// A deadline passed while the HISP was working for the client: close after its answer.
    var expired = false
    /// Bytes of this session's message taken from the budget.
    var reserved = 0

    init(configuration: SMTPListener.Configuration, tls: ServerTLS?, delegate: any SMTPServerDelegate, info: SMTPSessionInfo,
         logger: Logger, admitted: Bool, onAuthenticated: @escaping @Sendable () -> Void = {}) {
        self.configuration = configuration
        self.tls = tls
        self.delegate = delegate
        self.info = info
        self.logger = logger
        self.admitted = admitted
        self.onAuthenticated = onAuthenticated
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
        commandStarted = .now()
        armTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        releaseBudget()
        if admitted { logger.info("session closed") }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard admitted, !closing else { return }
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { input.append($0) }
        if session.mode == .data {
            // Only data moves the data deadline; bytes of a command line never move the command deadline.
            lastDataByte = .now()
            dataReceived += buffer.readableBytes
            armTimer(context: context)
        }
        pump(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted(let proto) = tlsEvent {
            logger.info("TLS established", metadata: ["alpn": .string(proto ?? "none")])
            session.tlsEstablished()
            handshaking = false
            commandStarted = .now()
            armTimer(context: context)
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
                var current: SMTPDataReader
                if let reader {
                    current = reader
                } else {
                    current = session.dataReader()
                    dataStarted = .now()
                    lastDataByte = dataStarted
                    dataReceived = input.count
                    armTimer(context: context)
                }
                let outcome = input.read(into: &current) { size in admitProcessing(size) }
                account(&current)
                guard let outcome else {
                    reader = current
                    return
                }
                reader = nil
                if case .message = outcome {} else { releaseBudget(refused: true) }
                run(session.dataFinished(outcome), context: context)
                readyForCommand(context: context)
            case .command:
                if shuttingDown && input.isEmpty {
                    run(session.shutdown(), context: context)
                    return
                }
                guard let line = input.takeLine(limit: SMTPCommand.maxLineLength) else { return }
                run(session.receive(line), context: context)
                readyForCommand(context: context)
            }
        }
    }

    /// A reply went out and the next command line is awaited: its deadline starts now.
    private func readyForCommand(context: ChannelHandlerContext) {
        guard session.mode == .command, !closing else { return }
        commandStarted = .now()
        armTimer(context: context)
    }

    /// Takes what the reader now holds from the memory budget; when it does not
    /// fit, the message is refused at its end with 452 and its bytes are dropped.
    private func account(_ current: inout SMTPDataReader) {
        guard let budget = configuration.budget else { return }
        let held = current.storedBytes
        guard held > reserved else { return }
        if budget.reserve(held - reserved) {
            reserved = held
        } else {
            // RFC 5321 4.5.3.1.10 / RFC 3463 4.3.1: insufficient system storage, try again later.
            current.stopStoring(SMTPReply(452, "4.3.1", "insufficient system storage for this message now; try again later"))
            logger.notice("message refused: memory budget spent", metadata: ["limit": .stringConvertible(budget.limit)])
            releaseBudget(refused: true)
        }
    }

    /// At the end of a message's data, before it is put together: while the HISP decrypts,
    /// verifies, signs or stores it, a message takes several times its size, and that is
    /// taken from the budget now, or the message is deferred with 452.
    private func admitProcessing(_ size: Int) -> SMTPReply? {
        guard let budget = configuration.budget else { return nil }
        let needed = size * configuration.processingCharge
        guard needed > reserved else { return nil }
        guard budget.reserve(needed - reserved) else {
            logger.notice("message deferred: memory budget spent", metadata: ["limit": .stringConvertible(budget.limit)])
            // RFC 5321 4.5.3.1.10 / RFC 3463 4.3.1.
            return SMTPReply(452, "4.3.1", "insufficient system storage for this message now; try again later")
        }
        reserved = needed
        return nil
    }

    private func releaseBudget(refused: Bool = false) {
        guard reserved > 0 else { return }
        if refused { configuration.budget?.releaseRefused(reserved) } else { configuration.budget?.release(reserved) }
        reserved = 0
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
                let promote = onAuthenticated
                perform(context, { d, i in await d.authenticate(user: user, password: password, session: i) }) { s, ok in
                    let actions = s.authenticated(ok)
                    if s.user != nil { promote() }
                    return actions
                }
            case .deliver(let envelope, let message):
                logger.info("message received", metadata: ["bytes": .stringConvertible(message.count), "recipients": .stringConvertible(envelope.recipients.count)])
                // The budget stays taken while the HISP works on the message, and is given back with its answer.
                perform(context, { d, i in await d.deliver(envelope, message: message, session: i) }) { [weak self] s, reply in
                    self?.releaseBudget()
                    return s.delivered(reply)
                }
            }
        }
    }

    /// Runs a delegate call off the event loop and feeds its result back on it.
    /// Reading stops meanwhile, so a client cannot pile up input.
    private func perform<T: Sendable>(
        _ context: ChannelHandlerContext, _ call: @escaping @Sendable (any SMTPServerDelegate, SMTPSessionInfo) async -> T,
        then feed: @escaping (inout SMTPServerSession, T) -> [SMTPServerSession.Action]
    ) {
        let delegate = self.delegate, info = self.info
        offEventLoop(self, context, { await call(delegate, info) }) { handler, context, result in
            guard !handler.closing else { return }
            handler.run(feed(&handler.session, result), context: context)
            if handler.expired {
                // A deadline passed while the HISP worked: the answer went out, now the session ends.
                handler.run(handler.session.timedOut(), context: context)
                context.flush()
                return
            }
            if !handler.closing { context.channel.setOption(.autoRead, value: true).whenComplete { _ in } }
            handler.readyForCommand(context: context)
            handler.pump(context: context)
        }
        // While the HISP works, only the session's (and authentication's) deadline runs.
        armTimer(context: context)
    }

    private func startTLS(context: ChannelHandlerContext) {
        guard let tls else { return }
        // The handshake must finish within the command deadline.
        handshaking = true
        commandStarted = .now()
        armTimer(context: context)
        context.flush()
        input.discardAll()
        do {
            // Added in front of everything: from here on, bytes are TLS records.
            try context.pipeline.syncOperations.addHandler(tls.makeHandler(), position: .first)
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

    enum Deadline: String {
        case command, data, session, authentication
    }

    /// The deadline now in force, and which one it is: the session's whole time; on
    /// submission, the time to authenticate; then by mode, the command line (from the
    /// last reply, or the STARTTLS handshake), or inside DATA the sooner of the longest
    /// silence and the minimum average rate. While the HISP works for the client
    /// (`.waiting`) only the session's whole time counts.
    func currentDeadline() -> (NIODeadline, Deadline) {
        var best = (started + configuration.sessionTimeout, Deadline.session)
        func consider(_ d: NIODeadline, _ kind: Deadline) { if d < best.0 { best = (d, kind) } }
        if configuration.policy.role == .submission && session.user == nil {
            consider(started + configuration.authTimeout, .authentication)
        }
        switch session.mode {
        case .command:
            consider(commandStarted + configuration.commandTimeout, .command)
        case .data:
            consider(lastDataByte + configuration.dataTimeout, .data)
            let rate = max(1, configuration.minDataRate)
            let earned = TimeAmount.nanoseconds(Int64(min(Double(dataReceived) / Double(rate), 1e9) * 1e9))
            consider(dataStarted + configuration.dataGrace + earned, .data)
        case .waiting:
            if handshaking { consider(commandStarted + configuration.commandTimeout, .command) }
        case .closed:
            break
        }
        return best
    }

    /// One timer, set to `currentDeadline()`.
    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        guard !closing else { return }
        let (deadline, kind) = currentDeadline()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            guard !handler.closing else { return }
            handler.logger.info("timeout", metadata: ["deadline": .string(kind.rawValue)])
            if handler.session.mode == .waiting && !handler.handshaking {
                // The HISP is working for the client: the session ends right after its answer.
                handler.expired = true
                return
            }
            if handler.handshaking {
                handler.close(context: context)
                return
            }
            handler.run(handler.session.timedOut(), context: context)
            context.flush()
        }
    }
}
