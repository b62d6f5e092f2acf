import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SMTPCore

/// One SMTP listener (the MX or submission) over NIO: TLS by STARTTLS,
/// connection limits, command and data timeouts, graceful shutdown.
public final class SMTPListener: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var policy: SMTPServerSession.Policy
        /// RFC 5321 4.5.3.2.7: the time a client has for each command line, counted
        /// from the server's last reply, not restarted by bytes that do not end the line.
        public var commandTimeout: TimeAmount
        /// RFC 5321 4.5.3.2.5: the longest silence inside DATA.
        public var dataTimeout: TimeAmount
        /// Inside DATA, after `dataGrace`, the data must keep arriving at this many
        /// bytes per second on average (a slow sender cannot hold a session for hours).
        public var minDataRate: Int
        public var dataGrace: TimeAmount
        /// The longest a session may last, whatever it does.
        public var sessionTimeout: TimeAmount
        /// Submission: a session that has not authenticated by then is closed.
        public var authTimeout: TimeAmount
        public var maxConnections: Int
        public var maxConnectionsPerAddress: Int
        /// Slots only authenticated sessions may fill: sessions that have not
        /// authenticated are admitted up to `maxConnections - reservedForAuthenticated`.
        public var reservedForAuthenticated: Int
        /// Message bytes in flight across sessions (shared by listeners); nil: unbounded.
        public var budget: SMTPMemoryBudget?
        /// Budget bytes per message byte while the HISP works on a received message (measured:
        /// decrypting, verifying and storing a 32 MiB message takes about 8 times its size at
        /// its peak; docs/benchmarks.md, "Memory under load").
        public var processingCharge: Int = SMTPListener.defaultProcessingCharge

        public init(host: String, port: Int, policy: SMTPServerSession.Policy, commandTimeout: TimeAmount = .minutes(5),
                    dataTimeout: TimeAmount = .minutes(3), minDataRate: Int = 4096, dataGrace: TimeAmount = .seconds(30),
                    sessionTimeout: TimeAmount = .minutes(30), authTimeout: TimeAmount = .minutes(2),
                    maxConnections: Int = 200, maxConnectionsPerAddress: Int = 10, reservedForAuthenticated: Int? = nil,
                    budget: SMTPMemoryBudget? = nil) {
            self.host = host
            self.port = port
            self.policy = policy
            self.commandTimeout = commandTimeout
            self.dataTimeout = dataTimeout
            self.minDataRate = minDataRate
            self.dataGrace = dataGrace
            self.sessionTimeout = sessionTimeout
            self.authTimeout = authTimeout
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
            // A fifth of the slots on submission by default; the MX has no authenticated sessions.
            self.reservedForAuthenticated = min(maxConnections, max(0, reservedForAuthenticated ?? (policy.role == .submission ? maxConnections / 5 : 0)))
            self.budget = budget
        }
    }

    public static let defaultProcessingCharge = 8

    let channel: any Channel
    let sessions: SessionRegistry
    public let configuration: Configuration

    /// The port listened on (the one the system chose when 0 was asked for).
    public var port: Int { channel.localAddress?.port ?? 0 }

    init(channel: any Channel, sessions: SessionRegistry, configuration: Configuration) {
        self.channel = channel
        self.sessions = sessions
        self.configuration = configuration
    }

    /// Starts listening with one TLS context.
    public static func start(
        configuration: Configuration, tls: NIOSSLContext?, delegate: any SMTPServerDelegate, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SMTPListener {
        try await start(configuration: configuration, serverTLS: tls.map { ServerTLS(primary: $0) }, delegate: delegate, logger: logger, group: group)
    }

    /// Starts listening. `serverTLS` is required when the policy offers STARTTLS.
    public static func start(
        configuration: Configuration, serverTLS tls: ServerTLS?, delegate: any SMTPServerDelegate, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SMTPListener {
        var configuration = configuration
        configuration.policy.tlsAvailable = tls != nil
        let config = configuration
        let sessions = SessionRegistry()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let remote = channel.remoteAddress?.ipAddress ?? "unknown"
                    let admitted = sessions.open(channel, remote: remote, max: config.maxConnections,
                                                 unauthenticated: config.maxConnections - config.reservedForAuthenticated,
                                                 perAddress: config.maxConnectionsPerAddress)
                    channel.closeFuture.whenComplete { _ in sessions.close(channel, remote: remote) }
                    let info = SMTPSessionInfo(id: sessions.nextID(), remoteAddress: remote, role: config.policy.role)
                    var log = logger
                    log[metadataKey: "session"] = .string(info.id)
                    log[metadataKey: "listener"] = .string(config.policy.role.rawValue)
                    try channel.pipeline.syncOperations.addHandler(
                        SMTPServerHandler(configuration: config, tls: tls, delegate: delegate, info: info, logger: log, admitted: admitted,
                                          onAuthenticated: { sessions.authenticated(channel) }))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        return SMTPListener(channel: channel, sessions: sessions, configuration: config)
    }

    /// Stops accepting; idle sessions get 421 at once, busy ones after their
    /// current command; whatever is still open after `grace` is closed.
    public func shutdown(grace: Duration = .seconds(10)) async {
        try? await channel.close()
        for child in sessions.all() { child.pipeline.fireUserInboundEventTriggered(SMTPServerHandler.ShutdownEvent()) }
        let deadline = ContinuousClock.now + grace
        while !sessions.all().isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for child in sessions.all() { try? await child.close() }
    }

    public var activeSessions: Int { sessions.all().count }
}

/// The open sessions, counted per remote address and by whether they authenticated.
public final class SessionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var authenticated: Set<ObjectIdentifier> = []
        var perAddress: [String: Int] = [:]
        var counter = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Admits a new (unauthenticated) session while there is room for one in all
    /// and among the unauthenticated, and its address has fewer than `perAddress`.
    public init() {}

    public func open(_ channel: any Channel, remote: String, max: Int, unauthenticated: Int, perAddress: Int) -> Bool {
        state.withLockedValue { s in
            guard s.channels.count < max, s.channels.count - s.authenticated.count < unauthenticated,
                  s.perAddress[remote, default: 0] < perAddress else { return false }
            s.channels[ObjectIdentifier(channel)] = channel
            s.perAddress[remote, default: 0] += 1
            return true
        }
    }

    /// The session authenticated: from now on it counts against the reserved slots.
    public func authenticated(_ channel: any Channel) {
        state.withLockedValue { s in
            guard s.channels[ObjectIdentifier(channel)] != nil else { return }
            s.authenticated.insert(ObjectIdentifier(channel))
        }
    }

    public func close(_ channel: any Channel, remote: String) {
        state.withLockedValue { s in
            guard s.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            s.authenticated.remove(ObjectIdentifier(channel))
            s.perAddress[remote, default: 1] -= 1
            if s.perAddress[remote] == 0 { s.perAddress[remote] = nil }
        }
    }

    public func nextID() -> String {
        state.withLockedValue { s in
            s.counter += 1
            return String(s.counter, radix: 36)
        }
    }

    public func all() -> [any Channel] { state.withLockedValue { Array($0.channels.values) } }
}

/// The bytes of messages that sessions hold in memory (received, or handed to
/// the HISP and not yet answered), bounded across sessions and listeners: a
/// session whose next bytes would pass the limit has its message refused with
/// `452 4.3.1` (the sender retries later) instead of the process growing.
public final class SMTPMemoryBudget: Sendable {
    public let limit: Int
    private struct State {
        var inFlight = 0
        var peak = 0
        var refused = 0
    }
    private let state = NIOLockedValueBox(State())

    /// Called after a refused message's memory was dropped (under pressure only), so that
    /// the process can give the freed memory back to the system at once.
    let afterRefusal: (@Sendable () -> Void)?

    public init(limit: Int, afterRefusal: (@Sendable () -> Void)? = nil) {
        self.limit = limit
        self.afterRefusal = afterRefusal
    }

    /// Gives back what a refused message held; large amounts also call `afterRefusal`.
    func releaseRefused(_ bytes: Int) {
        release(bytes)
        if bytes >= 1 << 20 { afterRefusal?() }
    }

    /// Takes `bytes` from the budget, or nothing when they do not fit.
    public func reserve(_ bytes: Int) -> Bool {
        state.withLockedValue { s in
            guard bytes <= limit - s.inFlight else {
                s.refused += 1
                return false
            }
            s.inFlight += bytes
            s.peak = max(s.peak, s.inFlight)
            return true
        }
    }

    public func release(_ bytes: Int) {
        state.withLockedValue { $0.inFlight = max(0, $0.inFlight - bytes) }
    }

    public var inFlight: Int { state.withLockedValue { $0.inFlight } }
    /// Messages refused for want of budget since the start.
    public var refusals: Int { state.withLockedValue { $0.refused } }

    /// The highest use since the last call, and resets it to the current use.
    public func takePeak() -> Int {
        state.withLockedValue { s in
            defer { s.peak = s.inFlight }
            return s.peak
        }
    }
}
