import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import POP3Core
import SMTPCore
import SMTPServer

/// One POP3 listener over NIO: STLS on the plain port (RFC 2595) or TLS from
/// the first byte (RFC 8314, port 995), connection limits, the idle and
/// session deadlines, graceful shutdown.
public final class POP3Listener: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// TLS from the first byte (port 995) instead of STLS.
        public var implicitTLS: Bool
        public var policy: POP3Session.Policy
        /// RFC 1939 3: a server may close a session idle for at least 10 minutes.
        public var idleTimeout: TimeAmount
        /// The longest a session may last, whatever it does.
        public var sessionTimeout: TimeAmount
        public var maxConnections: Int
        public var maxConnectionsPerAddress: Int

        public init(host: String, port: Int, implicitTLS: Bool, policy: POP3Session.Policy, idleTimeout: TimeAmount = .minutes(10),
                    sessionTimeout: TimeAmount = .hours(2), maxConnections: Int = 200, maxConnectionsPerAddress: Int = 10) {
            self.host = host
            self.port = port
            self.implicitTLS = implicitTLS
            self.policy = policy
            self.idleTimeout = idleTimeout
            self.sessionTimeout = sessionTimeout
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
        }
    }

    let channel: any Channel
    let sessions: SessionRegistry
    public let configuration: Configuration

    /// The port listened on (the one the system chose when 0 was asked for).
    public var port: Int { channel.localAddress?.port ?? 0 }
    public var activeSessions: Int { sessions.all().count }

    init(channel: any Channel, sessions: SessionRegistry, configuration: Configuration) {
        self.channel = channel
        self.sessions = sessions
        self.configuration = configuration
    }

    /// Starts listening. Without `tls`, STLS is not offered and nobody can sign in
    /// (passwords travel only over TLS), and an implicit-TLS listener cannot start.
    public static func start(
        configuration: Configuration, tls: ServerTLS?, delegate: any POP3ServerDelegate, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> POP3Listener {
        var configuration = configuration
        configuration.policy.tlsAvailable = tls != nil
        if configuration.implicitTLS && tls == nil { throw POP3ListenerError("a POP3 listener with implicit TLS needs a TLS certificate") }
        let config = configuration
        // Named by listener too, so that the two POP3 listeners' sessions differ in the audit trail.
        let (channel, sessions) = try await MailboxListener.start(
            host: config.host, port: config.port, name: config.implicitTLS ? "pop3s" : "pop3", implicitTLS: config.implicitTLS, tls: tls,
            maxConnections: config.maxConnections, maxConnectionsPerAddress: config.maxConnectionsPerAddress, logger: logger, group: group
        ) { c in
            POP3ServerHandler(configuration: config, tls: tls, delegate: delegate, info: POP3SessionInfo(id: c.id, remoteAddress: c.remoteAddress),
                              logger: c.logger, admitted: c.admitted)
        }
        return POP3Listener(channel: channel, sessions: sessions, configuration: config)
    }

    /// Stops accepting; sessions are told and closed (without UPDATE: RFC 1939 6
    /// deletes only at QUIT) once their current command is answered, or after `grace`.
    public func shutdown(grace: Duration = .seconds(10)) async {
        await MailboxListener.shutdown(channel, sessions, grace: grace, event: POP3ServerHandler.ShutdownEvent())
    }
}

public struct POP3ListenerError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// The thin network side of `POP3Session`: lines in, actions out, the delegate's
/// answers fed back on the event loop.
final class POP3ServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct ShutdownEvent: Sendable {}

    let configuration: POP3Listener.Configuration
    let tls: ServerTLS?
    let delegate: any POP3ServerDelegate
    let info: POP3SessionInfo
    let logger: Logger
    let admitted: Bool

    var session: POP3Session
    var input = SMTPInputBuffer()
    var timer: Scheduled<Void>?
    var closing = false
    var shuttingDown = false
    let started = NIODeadline.now()
    /// When the client last sent a whole line or the server last answered.
    var lastActivity = NIODeadline.now()
    /// The signed-in user, until `signedOut` was said.
    var signedIn: String?

    init(configuration: POP3Listener.Configuration, tls: ServerTLS?, delegate: any POP3ServerDelegate, info: POP3SessionInfo, logger: Logger,
         admitted: Bool) {
        self.configuration = configuration
        self.tls = tls
        self.delegate = delegate
        self.info = info
        self.logger = logger
        self.admitted = admitted
        self.session = POP3Session(policy: configuration.policy, tls: configuration.implicitTLS)
    }

    func channelActive(context: ChannelHandlerContext) {
        guard admitted else {
            logger.notice("connection refused: too many connections", metadata: ["remote": .string(info.remoteAddress)])
            send(.err("too many connections; try again later", code: "SYS/TEMP"), context: context)
            close(context: context)
            return
        }
        logger.info("session opened", metadata: ["remote": .string(info.remoteAddress)])
        // With implicit TLS the greeting goes out encrypted, once the handshake is done.
        if !configuration.implicitTLS { greet(context: context) }
        armTimer(context: context)
        context.fireChannelActive()
    }

    private func greet(context: ChannelHandlerContext) {
        send(session.greeting(), context: context)
        context.flush()
        lastActivity = .now()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        endSignIn()
        if admitted { logger.info("session closed") }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard admitted, !closing else { return }
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { input.append($0) }
        pump(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            logger.info("TLS established")
            if configuration.implicitTLS {
                greet(context: context)
            } else {
                session.tlsEstablished()
                // RFC 2595 4: anything sent in clear before the handshake is dropped.
                input.discardAll()
                context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
            }
            lastActivity = .now()
            armTimer(context: context)
            pump(context: context)
            return
        }
        if event is ShutdownEvent {
            shuttingDown = true
            if !session.isWaiting { shutDown(context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        MailboxListener.logError(error, logger)
        close(context: context)
    }

    private func shutDown(context: ChannelHandlerContext) {
        send(.err("the server is shutting down; nothing was deleted", code: "SYS/TEMP"), context: context)
        close(context: context)
    }

    private func pump(context: ChannelHandlerContext) {
        defer { context.flush() }
        while !closing && !session.isWaiting && session.state != .closed {
            if shuttingDown {
                shutDown(context: context)
                return
            }
            let limit = session.isAwaitingSASL ? POP3Session.maxSASLLine : POP3Session.maxCommandLine
            guard let line = input.takeLine(limit: limit) else { return }
            lastActivity = .now()
            switch line {
            case .line(let bytes): run(session.receive(bytes), context: context)
            case .tooLong: run(session.lineTooLong(), context: context)
            }
        }
    }

    private func run(_ actions: [POP3Session.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .reply(let reply):
                if case .err(let text, _) = reply { logger.info("refused", metadata: ["reply": .string(text)]) }
                send(reply, context: context)
                lastActivity = .now()
            case .close:
                close(context: context)
            case .startTLS:
                startTLS(context: context)
            case .authenticate(let user, let password):
                perform(context, { d, i in await d.signIn(user: user, password: password, session: i) }) { handler, s, result in
                    switch result {
                    case .maildrop(let name, let messages):
                        handler.signedIn = name
                        handler.logger.info("signed in", metadata: ["messages": .stringConvertible(messages.count)])
                        return s.authenticated(messages)
                    case .refused:
                        return s.authenticated(nil)
                    case .unavailable(let why, let code):
                        return s.maildropUnavailable(why, code: code)
                    }
                }
            case .retrieve(let uid, let lines):
                let user = signedIn ?? ""
                perform(context, { d, i in await d.retrieve(uid: uid, bodyLines: lines, user: user, session: i) }) { _, s, bytes in
                    s.retrieved(bytes)
                }
            case .update(let uids):
                let user = signedIn ?? ""
                perform(context, { d, i in await d.delete(uids: uids, user: user, session: i) }) { _, s, done in s.updated(done) }
            }
        }
    }

    /// Runs a delegate call off the event loop and feeds its result back on it;
    /// reading stops meanwhile, so a client cannot pile up input.
    private func perform<T: Sendable>(
        _ context: ChannelHandlerContext, _ call: @escaping @Sendable (any POP3ServerDelegate, POP3SessionInfo) async -> T,
        then feed: @escaping (POP3ServerHandler, inout POP3Session, T) -> [POP3Session.Action]
    ) {
        let delegate = self.delegate, info = self.info
        offEventLoop(self, context, { await call(delegate, info) }) { handler, context, result in
            guard !handler.closing else { return }
            handler.run(feed(handler, &handler.session, result), context: context)
            handler.lastActivity = .now()
            if !handler.closing { context.channel.setOption(.autoRead, value: true).whenComplete { _ in } }
            handler.armTimer(context: context)
            handler.pump(context: context)
        }
    }

    private func startTLS(context: ChannelHandlerContext) {
        guard let tls else { return }
        context.flush()
        input.discardAll()
        if !MailboxListener.startTLS(tls, on: context, logger: logger) { close(context: context) }
    }

    private func send(_ reply: POP3Reply, context: ChannelHandlerContext) {
        let bytes = reply.encoded
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func endSignIn() {
        guard let user = signedIn else { return }
        signedIn = nil
        let delegate = self.delegate, info = self.info
        Task { await delegate.signedOut(user: user, session: info) }
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        endSignIn()
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// One timer: the sooner of the idle deadline (not while the HISP works for the client) and the session's.
    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        guard !closing else { return }
        let sessionEnd = started + configuration.sessionTimeout
        let deadline = session.isWaiting ? sessionEnd : min(sessionEnd, lastActivity + configuration.idleTimeout)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            guard !handler.closing else { return }
            // Activity since the timer was set moves the deadline on.
            if !handler.session.isWaiting && handler.lastActivity + handler.configuration.idleTimeout > .now()
                && handler.started + handler.configuration.sessionTimeout > .now() {
                handler.armTimer(context: context)
                return
            }
            handler.logger.info("timeout")
            handler.run(handler.session.timedOut(), context: context)
            context.flush()
        }
    }
}
