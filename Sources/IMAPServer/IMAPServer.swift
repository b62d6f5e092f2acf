import IMAPCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SMTPServer

/// One IMAP listener over NIO: STARTTLS on the plain port (RFC 9051 6.2.1)
/// or TLS from the first byte (RFC 8314, port 993), connection limits, the
/// idle and session deadlines, graceful shutdown.
public final class IMAPListener: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var implicitTLS: Bool
        public var policy: IMAPSession.Policy
        public var limits: IMAPCommandInput.Limits
        /// RFC 9051 5.4: an inactivity timer of at least 30 minutes (IDLE included; clients re-IDLE within 29).
        public var idleTimeout: TimeAmount
        public var maxConnections: Int
        public var maxConnectionsPerAddress: Int

        public init(host: String, port: Int, implicitTLS: Bool, policy: IMAPSession.Policy, limits: IMAPCommandInput.Limits = .init(),
                    idleTimeout: TimeAmount = .minutes(30), maxConnections: Int = 200, maxConnectionsPerAddress: Int = 20) {
            self.host = host
            self.port = port
            self.implicitTLS = implicitTLS
            self.policy = policy
            self.limits = limits
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
        }
    }

    let channel: any Channel
    let sessions: SessionRegistry
    public let configuration: Configuration
    public var port: Int { channel.localAddress?.port ?? 0 }
    public var activeSessions: Int { sessions.all().count }

    init(channel: any Channel, sessions: SessionRegistry, configuration: Configuration) {
        self.channel = channel
        self.sessions = sessions
        self.configuration = configuration
    }

    public static func start(
        configuration: Configuration, tls: ServerTLS?, delegate: any IMAPServerDelegate, users: IMAPUserSessions, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> IMAPListener {
        var configuration = configuration
        configuration.policy.tlsAvailable = tls != nil
        if configuration.implicitTLS && tls == nil { throw IMAPListenerError(description: "an IMAP listener with implicit TLS needs a TLS certificate") }
        let config = configuration
        let (channel, sessions) = try await MailboxListener.start(
            host: config.host, port: config.port, name: config.implicitTLS ? "imaps" : "imap", implicitTLS: config.implicitTLS, tls: tls,
            maxConnections: config.maxConnections, maxConnectionsPerAddress: config.maxConnectionsPerAddress, logger: logger, group: group
        ) { c in
            IMAPServerHandler(configuration: config, tls: tls, delegate: delegate, users: users,
                              info: IMAPSessionInfo(id: c.id, remoteAddress: c.remoteAddress), logger: c.logger, admitted: c.admitted)
        }
        return IMAPListener(channel: channel, sessions: sessions, configuration: config)
    }

    /// Stops accepting; sessions get BYE once their current command is answered, or after `grace`.
    public func shutdown(grace: Duration = .seconds(10)) async {
        await MailboxListener.shutdown(channel, sessions, grace: grace, event: IMAPServerHandler.ShutdownEvent())
    }
}

/// How many signed-in sessions each user holds, shared by the IMAP listeners of one
/// HISP: a limit on what one account (or one stolen password) can hold open.
public final class IMAPUserSessions: Sendable {
    public let limit: Int
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    public init(limit: Int) { self.limit = max(1, limit) }

    /// Counts one more session for `user`, or refuses when it holds `limit` already.
    func admit(_ user: String) -> Bool {
        counts.withLockedValue { c in
            guard c[user, default: 0] < limit else { return false }
            c[user, default: 0] += 1
            return true
        }
    }

    func release(_ user: String) {
        counts.withLockedValue { c in
            let n = c[user, default: 0] - 1
            c[user] = n > 0 ? n : nil
        }
    }
}

public struct IMAPListenerError: Error, CustomStringConvertible {
    public let description: String
}

/// The thin network side of `IMAPSession`: commands in, actions out, the
/// delegate's answers and the folder's changes fed back on the event loop.
final class IMAPServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct ShutdownEvent: Sendable {}

    let configuration: IMAPListener.Configuration
    let tls: ServerTLS?
    let delegate: any IMAPServerDelegate
    let users: IMAPUserSessions
    let info: IMAPSessionInfo
    let logger: Logger
    let admitted: Bool
    /// The user this session counts against in `users`, once signed in.
    var countedUser: String?

    var session: IMAPSession
    var input: IMAPCommandInput
    var timer: Scheduled<Void>?
    var closing = false
    var shuttingDown = false
    var lastActivity = NIODeadline.now()
    /// The task feeding the selected folder's changes.
    var watcher: Task<Void, Never>?
    /// Operations waiting for the client to take what was written (see `perform`).
    var whenWritable: [() -> Void] = []

    init(configuration: IMAPListener.Configuration, tls: ServerTLS?, delegate: any IMAPServerDelegate, users: IMAPUserSessions,
         info: IMAPSessionInfo, logger: Logger, admitted: Bool) {
        self.configuration = configuration
        self.tls = tls
        self.delegate = delegate
        self.users = users
        self.info = info
        self.logger = logger
        self.admitted = admitted
        self.session = IMAPSession(policy: configuration.policy, tls: configuration.implicitTLS)
        self.input = IMAPCommandInput(limits: configuration.limits)
    }

    func channelActive(context: ChannelHandlerContext) {
        guard admitted else {
            logger.notice("connection refused: too many connections", metadata: ["remote": .string(info.remoteAddress)])
            write(Array("* BYE [UNAVAILABLE] too many connections; try again later\r\n".utf8), context: context)
            close(context: context)
            return
        }
        logger.info("session opened", metadata: ["remote": .string(info.remoteAddress)])
        if !configuration.implicitTLS { greet(context: context) }
        armTimer(context: context)
        context.fireChannelActive()
    }

    private func greet(context: ChannelHandlerContext) {
        write(session.greeting(), context: context)
        context.flush()
        lastActivity = .now()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        watcher?.cancel()
        watcher = nil
        whenWritable = []
        if let countedUser { users.release(countedUser) }
        countedUser = nil
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
                // RFC 9051 6.2.1: nothing sent in clear before the handshake is acted on.
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
            if !session.isWaiting {
                run(session.shutdown(), context: context)
                context.flush()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        MailboxListener.logError(error, logger)
        close(context: context)
    }

    private func pump(context: ChannelHandlerContext) {
        defer { context.flush() }
        while !closing && !session.isWaiting && session.state != .logout {
            if shuttingDown {
                run(session.shutdown(), context: context)
                return
            }
            guard let event = input.next() else { return }
            lastActivity = .now()
            switch event {
            case .command(let bytes): run(session.receive(bytes), context: context)
            // RFC 9051 7.5: the command continuation request for a synchronizing literal.
            case .continueLiteral: write(Array("+ Ready for literal data\r\n".utf8), context: context)
            case .lineTooLong: run(session.lineTooLong(), context: context)
            case .literalTooLarge(let tag, let size): run(session.literalTooLarge(tag: tag, size: size), context: context)
            case .fatal(let why):
                write(Array("* BYE \(why)\r\n".utf8), context: context)
                close(context: context)
            }
        }
    }

    private func run(_ actions: [IMAPSession.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let bytes):
                write(bytes, context: context)
                lastActivity = .now()
            case .close:
                close(context: context)
            case .startTLS:
                startTLS(context: context)
            case .authenticate(let user, let password):
                perform(context, { d, i in await d.signIn(user: user, password: password, session: i) }) { [self] s, name in
                    guard let name, countedUser == nil else { return s.authenticated(name) }
                    guard users.admit(name) else {
                        logger.notice("sign-in refused: the user's session limit", metadata: ["limit": "\(users.limit)"])
                        return s.signInRefused("\(users.limit) IMAP sessions are open for this user already; close one and try again")
                    }
                    countedUser = name
                    return s.authenticated(name)
                }
            case .perform(let operation):
                let user = session.user ?? ""
                perform(context, { d, i in await d.perform(operation, user: user, session: i) }) { s, outcome in s.completed(outcome) }
            case .watch(let folder):
                watch(folder, context: context)
            }
        }
    }

    /// Feeds the folder's changes into the session, on the event loop.
    private func watch(_ folder: String?, context: ChannelHandlerContext) {
        watcher?.cancel()
        watcher = nil
        guard let folder, let user = session.user, let view = session.selected else { return }
        let since = view.highestModSeq, uidNext = view.uidNext
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let delegate = self.delegate
        watcher = Task {
            guard let stream = await delegate.changes(folder: folder, user: user, since: since, uidNext: uidNext) else { return }
            for await changes in stream {
                if Task.isCancelled { return }
                loop.execute {
                    let (handler, context) = bound.value
                    guard !handler.closing, handler.session.selectedName == folder else { return }
                    handler.run(handler.session.changed(changes), context: context)
                    context.flush()
                }
            }
        }
    }

    private func perform<T: Sendable>(
        _ context: ChannelHandlerContext, _ call: @escaping @Sendable (any IMAPServerDelegate, IMAPSessionInfo) async -> T,
        then feed: @escaping (inout IMAPSession, T) -> [IMAPSession.Action]
    ) {
        let delegate = self.delegate, info = self.info
        let start = { [self] in
            offEventLoop(self, context, { await call(delegate, info) }) { handler, context, result in
                guard !handler.closing else { return }
                handler.run(feed(&handler.session, result), context: context)
                handler.lastActivity = .now()
                // A FETCH answered in parts asks for its next part in `run`: reading stays off until it is answered.
                if !handler.closing && !handler.session.isWaiting { context.channel.setOption(.autoRead, value: true).whenComplete { _ in } }
                handler.armTimer(context: context)
                handler.pump(context: context)
            }
        }
        // The next part of a large answer is read only once the client has taken most of the last one:
        // what a slow reader makes the server hold is one part and the channel's high-water mark.
        context.flush()
        if context.channel.isWritable {
            start()
        } else {
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
            whenWritable.append(start)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiting = whenWritable
            whenWritable = []
            for resume in waiting { resume() }
        }
        context.fireChannelWritabilityChanged()
    }

    private func startTLS(context: ChannelHandlerContext) {
        guard let tls else { return }
        context.flush()
        input.discardAll()
        if !MailboxListener.startTLS(tls, on: context, logger: logger) { close(context: context) }
    }

    private func write(_ bytes: [UInt8], context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        watcher?.cancel()
        watcher = nil
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The inactivity deadline (not while the HISP works for the client).
    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        guard !closing else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: lastActivity + configuration.idleTimeout) {
            let (handler, context) = bound.value
            guard !handler.closing else { return }
            if handler.session.isWaiting || handler.lastActivity + handler.configuration.idleTimeout > .now() {
                handler.armTimer(context: context)
                return
            }
            handler.logger.info("timeout")
            handler.run(handler.session.timedOut(), context: context)
            context.flush()
        }
    }
}
