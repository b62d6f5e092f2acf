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
        /// RFC 5321 4.5.3.2.7: at least 5 minutes between commands.
        public var commandTimeout: TimeAmount
        /// RFC 5321 4.5.3.2.6: the gap allowed between data blocks.
        public var dataTimeout: TimeAmount
        public var maxConnections: Int
        public var maxConnectionsPerAddress: Int

        public init(host: String, port: Int, policy: SMTPServerSession.Policy, commandTimeout: TimeAmount = .minutes(5),
                    dataTimeout: TimeAmount = .minutes(3), maxConnections: Int = 200, maxConnectionsPerAddress: Int = 20) {
            self.host = host
            self.port = port
            self.policy = policy
            self.commandTimeout = commandTimeout
            self.dataTimeout = dataTimeout
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
        }
    }

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

    /// Starts listening. `tls` is required when the policy offers STARTTLS.
    public static func start(
        configuration: Configuration, tls: NIOSSLContext?, delegate: any SMTPServerDelegate, logger: Logger,
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
                    let admitted = sessions.open(channel, remote: remote, max: config.maxConnections, perAddress: config.maxConnectionsPerAddress)
                    channel.closeFuture.whenComplete { _ in sessions.close(channel, remote: remote) }
                    let info = SMTPSessionInfo(id: sessions.nextID(), remoteAddress: remote, role: config.policy.role)
                    var log = logger
                    log[metadataKey: "session"] = .string(info.id)
                    log[metadataKey: "listener"] = .string(config.policy.role.rawValue)
                    try channel.pipeline.syncOperations.addHandler(
                        SMTPServerHandler(configuration: config, tls: tls, delegate: delegate, info: info, logger: log, admitted: admitted))
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

/// The open sessions, counted per remote address.
final class SessionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var perAddress: [String: Int] = [:]
        var counter = 0
    }

    private let state = NIOLockedValueBox(State())

    func open(_ channel: any Channel, remote: String, max: Int, perAddress: Int) -> Bool {
        state.withLockedValue { s in
            guard s.channels.count < max, s.perAddress[remote, default: 0] < perAddress else { return false }
            s.channels[ObjectIdentifier(channel)] = channel
            s.perAddress[remote, default: 0] += 1
            return true
        }
    }

    func close(_ channel: any Channel, remote: String) {
        state.withLockedValue { s in
            guard s.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            s.perAddress[remote, default: 1] -= 1
            if s.perAddress[remote] == 0 { s.perAddress[remote] = nil }
        }
    }

    func nextID() -> String {
        state.withLockedValue { s in
            s.counter += 1
            return String(s.counter, radix: 36)
        }
    }

    func all() -> [any Channel] { state.withLockedValue { Array($0.channels.values) } }
}
