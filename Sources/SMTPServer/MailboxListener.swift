import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// What the mailbox-access listeners (IMAP, POP3) share: binding with
/// per-address and total session limits, TLS from the first byte when asked,
/// session names per listener, and a graceful shutdown.
public enum MailboxListener {
    /// A new connection, as its protocol's handler needs to know it.
    public struct Connection: Sendable {
        /// `LISTENER-N`, unique on the listener (and in the audit trail, with the listener's name in it).
        public let id: String
        public let remoteAddress: String
        /// Within the limits; a handler for a refused connection says so and closes.
        public let admitted: Bool
        public let logger: Logger
    }

    /// Binds `host:port`; every connection gets the handler `makeHandler` makes,
    /// behind a TLS handler when `implicitTLS`.
    public static func start(
        host: String, port: Int, name: String, implicitTLS: Bool, tls: ServerTLS?, maxConnections: Int, maxConnectionsPerAddress: Int,
        logger: Logger, group: any EventLoopGroup,
        makeHandler: @escaping @Sendable (Connection) -> any ChannelHandler
    ) async throws -> (channel: any Channel, sessions: SessionRegistry) {
        let sessions = SessionRegistry()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let remote = channel.remoteAddress?.ipAddress ?? "unknown"
                    let admitted = sessions.open(channel, remote: remote, max: maxConnections, unauthenticated: maxConnections,
                                                 perAddress: maxConnectionsPerAddress)
                    channel.closeFuture.whenComplete { _ in sessions.close(channel, remote: remote) }
                    let id = "\(name)-\(sessions.nextID())"
                    var log = logger
                    log[metadataKey: "session"] = .string(id)
                    log[metadataKey: "listener"] = .string(name)
                    if implicitTLS, admitted, let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                    try channel.pipeline.syncOperations.addHandler(makeHandler(Connection(id: id, remoteAddress: remote, admitted: admitted, logger: log)))
                }
            }
            .bind(host: host, port: port).get()
        return (channel, sessions)
    }

    /// Stops accepting; each session is sent `event` (its handler ends it after its current
    /// command), and whatever is still open after `grace` is closed.
    public static func shutdown(_ channel: any Channel, _ sessions: SessionRegistry, grace: Duration, event: any Sendable) async {
        try? await channel.close()
        for child in sessions.all() { child.pipeline.fireUserInboundEventTriggered(event) }
        let deadline = ContinuousClock.now + grace
        while !sessions.all().isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for child in sessions.all() { try? await child.close() }
    }

    /// How a connection's error is logged: a client closing without close_notify is routine, a TLS failure is notable.
    public static func logError(_ error: any Error, _ logger: Logger) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            logger.debug("TLS closed without close_notify")
        } else if error is NIOSSLError || error is BoringSSLError {
            logger.notice("TLS failed", metadata: ["error": .string("\(error)")])
        } else {
            logger.debug("connection error", metadata: ["error": .string("\(error)")])
        }
    }

    /// Puts TLS in front of everything on the channel (after STARTTLS / STLS).
    public static func startTLS(_ tls: ServerTLS, on context: ChannelHandlerContext, logger: Logger) -> Bool {
        do {
            try context.pipeline.syncOperations.addHandler(tls.makeHandler(), position: .first)
            return true
        } catch {
            logger.error("cannot start TLS", metadata: ["error": .string("\(error)")])
            return false
        }
    }
}

/// Runs `work` (a delegate call: the mail store, the agent) off the event loop and
/// `resume` with its result back on it, for the SMTP, POP3 and IMAP handlers. Reading
/// stops meanwhile, so a client cannot pile up input; `resume` turns it back on.
public func offEventLoop<Handler: AnyObject, T: Sendable>(
    _ handler: Handler, _ context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> T,
    resume: @escaping (Handler, ChannelHandlerContext, T) -> Void
) {
    context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
    let loop = context.eventLoop
    let bound = NIOLoopBound((handler, context, resume), eventLoop: loop)
    Task {
        let result = await work()
        loop.execute {
            let (handler, context, resume) = bound.value
            resume(handler, context, result)
        }
    }
}
