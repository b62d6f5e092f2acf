import CAllocatorTuning
import DNSCore
import DNSResolver
import DNSServer
import Delivery
import DirectCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
import MailService
import OpenSSLKeys
import CryptographicMessageSyntax
import IMAPCore
import IMAPServer
import POP3Core
import POP3Server
import SMTPClient
import SMTPCore
import SMTPServer
import SecurityAgent
import Storage

/// Everything `hisp serve` runs, built from one configuration: the MX and
/// submission listeners (adapters over the mail service), the certificate DNS
/// server, the queue, the trust anchors' refresher and the delivery
/// connections' sweeper, as the services of one ServiceGroup
/// (swift-service-lifecycle). A graceful shutdown (a signal, or `shutdown`)
/// stops them in reverse order: the listeners first (no new sessions; the
/// current ones finish), then the queue between two steps, then the rest.
public final class HISPServer: Sendable {
    public let inbound: SMTPListener
    public let submission: SMTPListener
    /// POP3 with STLS and with implicit TLS (nil when `pop3.enabled` is false).
    public let pop3: POP3Listener?
    public let pop3s: POP3Listener?
    /// IMAP with STARTTLS and with implicit TLS (nil unless configured).
    public let imap: IMAPListener?
    public let imaps: IMAPListener?
    public let dns: CertificateDNSServer?
    public let mail: MailService
    let group: ServiceGroup
    let running: Task<Void, any Error>
    /// How long current sessions may take to finish at shutdown.
    let grace: ShutdownGrace
    let logger: Logger

    init(inbound: SMTPListener, submission: SMTPListener, pop3: POP3Listener?, pop3s: POP3Listener?, imap: IMAPListener?, imaps: IMAPListener?,
         dns: CertificateDNSServer?, mail: MailService, group: ServiceGroup, grace: ShutdownGrace, logger: Logger) {
        self.inbound = inbound
        self.submission = submission
        self.pop3 = pop3
        self.pop3s = pop3s
        self.imap = imap
        self.imaps = imaps
        self.dns = dns
        self.mail = mail
        self.group = group
        self.grace = grace
        self.logger = logger
        let g = group
        running = Task { try await g.run() }
    }

    /// Until the group stops (a shutdown signal, `shutdown`, or a service that failed).
    public func wait() async throws {
        try await running.value
    }

    /// Graceful shutdown: no new sessions, current ones finish (up to `grace`), the queue stops between steps.
    public func shutdown(grace: Duration = .seconds(10)) async {
        logger.info("shutting down")
        self.grace.set(grace)
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        logger.info("stopped")
    }

    /// How long a delivery connection stays open without work (RFC 5321 3.3 lets a client
    /// send several transactions over one): long enough for the next delivery pass of a
    /// stream of messages, well under the minutes a server waits for a command.
    static let idleConnectionTime: Duration = .seconds(5)

    /// The default bound on message bytes held in memory by all SMTP sessions: 192 MiB, and
    /// always room for one message of the largest size being processed (docs/benchmarks.md,
    /// "Memory under load").
    static func defaultBytesInFlight(maxMessageBytes: Int) -> Int {
        max(192 << 20, minimumBytesInFlight(maxMessageBytes: maxMessageBytes))
    }

    /// Less than this, and a message of the largest size could never be accepted.
    static func minimumBytesInFlight(maxMessageBytes: Int) -> Int {
        SMTPListener.defaultProcessingCharge * maxMessageBytes
    }

    /// A burst that held this much is followed by giving free memory back to the system.
    static let trimAfterBytes = 8 << 20

    /// What `start` decided, for the operator.
    public struct Summary: Sendable {
        public let hostname: String
        public let inbound: String
        public let submission: String
        /// POP3 with STLS and with implicit TLS, HOST:PORT (nil when off).
        public let pop3: String?
        public let pop3s: String?
        /// IMAP with STARTTLS and with implicit TLS, HOST:PORT (nil when off).
        public let imap: String?
        public let imaps: String?
        public let dns: String?
        public let tlsCertificate: String
        public let selfSignedTLS: Bool
    }

    /// Builds a whole HISP and starts it: the listeners are bound (port 0 picks free ports) and the services run until
    /// `shutdown`, or one of `signals` (graceful shutdown; `hisp serve` gives SIGTERM and SIGINT).
    public static func start(
        configuration c: AppConfiguration, store: HISPStore, dataDirectory: String, fetcher: (any HTTPFetching)?, logger: Logger,
        signals: [UnixSignal] = []
    ) async throws -> (HISPServer, Summary) {
        // The signals are trapped before anything listens, so that one arriving while the
        // services start is handled, not fatal (SIGHUP's default action ends the process).
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let stops = await UnixSignalsSequence(trapping: signals)
        let domains = try await store.domains()
        let hostname = c.hostname ?? domains.first.map { $0.dns.host } ?? "localhost"
        // A self-signed certificate names the addresses clients are told to use.
        let listenerHosts = [c.inbound?.listen, c.submission?.listen, c.imap?.listen, c.imap?.tlsListen, c.pop3?.listen, c.pop3?.tlsListen]
            .compactMap { $0.flatMap { try? parseHostPort($0, what: "").host } }
        let tls = try ListenerTLS.context(certificate: c.tls?.certificate, key: c.tls?.key,
                                          rsaCertificate: c.tls?.rsaCertificate, rsaKey: c.tls?.rsaKey,
                                          selfSignedIn: (dataDirectory as NSString).appendingPathComponent("tls"), hostname: hostname,
                                          addresses: listenerHosts)

        // Private-key operations: chosen once, before anything signs (docs/keys.md).
        let keys: any KeyProvider
        switch (KeyProviderChoice(rawValue: c.crypto?.provider ?? "auto") ?? .auto).make() {
        case .success(let chosen):
            keys = chosen.provider
            logger.notice("\(chosen.note)")
        case .failure(let e):
            throw ConfigurationError("crypto.provider openssl: \(e.description)")
        }

        // DNS: our own zones are asked of our own server; upstreams for the rest.
        let dnsListen = try parseHostPort(c.dns?.listen ?? AppConfiguration.defaultDNS, what: "dns.listen")
        let dnsEnabled = c.dns?.enabled ?? true
        var dnsServer: CertificateDNSServer? = nil
        if dnsEnabled {
            dnsServer = try await CertificateDNSServer.start(
                store: store,
                configuration: CertificateDNSServer.Configuration(host: dnsListen.host, port: dnsListen.port, rateLimit: max(0, c.dns?.rateLimit ?? 100)),
                onReload: { zones, serial in logger.info("zones loaded", metadata: ["zones": .stringConvertible(zones), "serial": .stringConvertible(serial)]) },
                onError: { logger.warning("dns: \($0)") })
        }
        var upstreams: [DNSServerAddress] = []
        for s in c.resolver?.servers ?? [] {
            guard let a = DNSServerAddress(s) else { throw ConfigurationError("resolver.servers: \(s) is not IP:PORT") }
            upstreams.append(a)
        }
        if upstreams.isEmpty {
            upstreams = ResolverConfiguration.nameservers(resolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "")
        }
        var zoneServers: [(zone: DNSName, servers: [DNSServerAddress])] = []
        for (zone, servers) in (c.resolver?.zones ?? [:]).sorted(by: { $0.key < $1.key }) {
            let list = try servers.map { s -> DNSServerAddress in
                guard let a = DNSServerAddress(s) else { throw ConfigurationError("resolver.zones.\(zone): \(s) is not IP:PORT") }
                return a
            }
            zoneServers.append((try DNSName(zone), list))
        }
        if let dnsServer {
            let own = DNSServerAddress(host: dnsListen.host == "0.0.0.0" ? "127.0.0.1" : dnsListen.host, port: dnsServer.udpPort)
            for d in domains where !zoneServers.contains(where: { $0.zone.description.lowercased() == d.name }) {
                zoneServers.append((try DNSName(d.name), [own]))
            }
        }
        guard !upstreams.isEmpty || !zoneServers.isEmpty else { throw ConfigurationError("no DNS server: set resolver.servers") }
        let resolver = DNSResolver(configuration: ResolverConfiguration(
            servers: upstreams, zoneServers: zoneServers, timeout: .seconds(c.resolver?.timeoutSeconds ?? 3)))

        // Delivery: configured routes, else MX; our own domains go to our own MX listener.
        let inboundListen = try parseHostPort(c.inbound?.listen ?? AppConfiguration.defaultInbound, what: "inbound.listen")
        let submissionListen = try parseHostPort(c.submission?.listen ?? AppConfiguration.defaultSubmission, what: "submission.listen")
        let routes = c.routes ?? [:]
        var routeTLS: [String: SMTPClientTLS] = [:]
        for (domain, route) in routes {
            routeTLS[domain] = try SMTPClientTLS.from(verify: route.tlsVerify, trustRoots: route.trustRoots, required: route.requireTLS)
        }
        let anchors = StoreAnchors(store: store, fetcher: fetcher, logger: logger)
        let timeouts = c.timeouts
        let gatewayConfig = GatewayConfiguration(
            hostname: hostname,
            notificationTimeout: .seconds(timeouts?.notificationSeconds ?? 3600),
            maxQueueAge: .seconds(timeouts?.maxQueueAgeSeconds ?? 86_400),
            retrySchedule: (timeouts?.retrySeconds ?? [60, 300, 900, 1800, 3600]).map { .seconds(max(1, $0)) },
            pollInterval: .milliseconds(Int64((timeouts?.queuePollSeconds ?? 1) * 1000)),
            sessionDiscoveryLimit: .milliseconds(Int64((timeouts?.sessionDiscoverySeconds ?? 2) * 1000)))
        let mailConfig = MailServiceConfiguration(
            rejectUntrustedAtRCPT: c.delivery?.rejectUntrustedAtRcpt ?? false,
            passwordMemory: TimeInterval(max(0, timeouts?.authCacheSeconds ?? 600)),
            signIn: SignInPolicy(delayAfterFailures: c.auth?.delayAfterFailures ?? 5, lockoutFailures: c.auth?.lockoutFailures ?? 10,
                                 window: TimeInterval(c.auth?.lockoutWindowSeconds ?? 900), lockout: TimeInterval(c.auth?.lockoutSeconds ?? 900)))

        let limits = c.limits
        let maxMessageBytes = limits?.maxMessageBytes ?? 32 * 1024 * 1024
        // One budget for both listeners: the bytes of messages held in memory at once.
        if let configured = limits?.maxBytesInFlight, configured < Self.minimumBytesInFlight(maxMessageBytes: maxMessageBytes) {
            throw ConfigurationError("limits.max_bytes_in_flight: \(configured) cannot hold one message of limits.max_message_bytes "
                                     + "(\(maxMessageBytes)) while it is processed; give at least \(Self.minimumBytesInFlight(maxMessageBytes: maxMessageBytes))")
        }
        let releaser = MemoryReleaser()
        let budget = SMTPMemoryBudget(limit: limits?.maxBytesInFlight ?? Self.defaultBytesInFlight(maxMessageBytes: maxMessageBytes),
                                      afterRefusal: { releaser.request() })
        func listenerConfig(_ hp: (host: String, port: Int), role: SMTPServerSession.Role, requireTLS: Bool) -> SMTPListener.Configuration {
            SMTPListener.Configuration(
                host: hp.host, port: hp.port,
                policy: SMTPServerSession.Policy(
                    hostname: hostname, role: role, maxMessageBytes: maxMessageBytes,
                    maxRecipients: limits?.maxRecipients ?? 100, requireTLS: requireTLS),
                commandTimeout: .seconds(Int64(timeouts?.commandSeconds ?? 300)), dataTimeout: .seconds(Int64(timeouts?.dataSeconds ?? 180)),
                minDataRate: limits?.minDataRate ?? 4096,
                sessionTimeout: .seconds(Int64(timeouts?.sessionSeconds ?? 1800)), authTimeout: .seconds(Int64(timeouts?.authSeconds ?? 120)),
                maxConnections: limits?.maxConnections ?? 200, maxConnectionsPerAddress: limits?.maxConnectionsPerAddress ?? 10,
                reservedForAuthenticated: role == .submission ? limits?.reservedForAuthenticated : 0, budget: budget)
        }

        // Mail for our own domains is delivered in process (MailService: InProcessDelivery), not over SMTP to our own MX.
        let connections = SMTPConnectionPool(idleTime: Self.idleConnectionTime)
        let transport = Router(
            routes: routes.mapValues { Route(host: $0.host, port: $0.port ?? 25) }, mxPort: c.delivery?.mxPort ?? 25,
            dns: ResolverMailExchangers(resolver: resolver),
            sender: SMTPHostSender(
                defaultTLS: try SMTPClientTLS.from(verify: c.delivery?.tlsVerify, trustRoots: c.delivery?.trustRoots, required: true),
                routeTLS: routeTLS, client: SMTPClientConfiguration(heloName: hostname), pool: connections, logger: logger))
        let agent = SecurityAgent(keys: store, provider: keys)
        let gateway = DirectGateway(
            configuration: gatewayConfig, store: store, agent: agent,
            certificates: DiscoveredCertificates(resolver: resolver, anchors: anchors, fetcher: fetcher, ldapTimeout: .seconds(5),
                                                 certificateCache: agent.smime.certificateCache),
            incomingTrust: anchors, transport: transport, logger: logger)
        let mail = MailService(configuration: mailConfig, queue: gateway)
        let inbound: SMTPListener
        let submission: SMTPListener
        do {
            inbound = try await SMTPListener.start(
                configuration: listenerConfig(inboundListen, role: .inbound, requireTLS: c.inbound?.requireTLS ?? true),
                serverTLS: tls.context, delegate: InboundEdge(mail: mail), logger: logger)
            do {
                submission = try await SMTPListener.start(
                    configuration: listenerConfig(submissionListen, role: .submission, requireTLS: true),
                    serverTLS: tls.context, delegate: SubmissionEdge(mail: mail), logger: logger)
            } catch {
                await inbound.shutdown(grace: .zero)
                throw error
            }
        } catch {
            await dnsServer?.stop()
            throw error
        }
        // POP3 (RFC 1939) on INBOX, for mail clients and practice software; IMAP (RFC 9051) on every
        // folder, for mail clients; the same TLS certificate.
        var pop3: POP3Listener? = nil
        var pop3s: POP3Listener? = nil
        var imap: IMAPListener? = nil
        var imaps: IMAPListener? = nil
        /// A listener failed to start: what started is stopped again.
        func stopStarted() async {
            for l in [imap, imaps].compactMap({ $0 }) { await l.shutdown(grace: .zero) }
            for l in [pop3, pop3s].compactMap({ $0 }) { await l.shutdown(grace: .zero) }
            await submission.shutdown(grace: .zero)
            await inbound.shutdown(grace: .zero)
            await dnsServer?.stop()
        }
        // Only when configured (a `pop3` section, or `--pop3`/`--pop3s`; quickstart adds it), so
        // that an existing configuration does not start listening on new ports after an upgrade.
        if let section = c.pop3, section.enabled ?? true {
            let edge = POP3Edge(mail: mail)
            func pop3Config(_ hp: (host: String, port: Int), implicitTLS: Bool) -> POP3Listener.Configuration {
                POP3Listener.Configuration(
                    host: hp.host, port: hp.port, implicitTLS: implicitTLS, policy: POP3Session.Policy(hostname: hostname),
                    idleTimeout: .minutes(Int64(section.idleMinutes ?? 10)), sessionTimeout: .seconds(Int64(max(1800, timeouts?.sessionSeconds ?? 7200))),
                    maxConnections: limits?.maxConnections ?? 200, maxConnectionsPerAddress: limits?.maxConnectionsPerAddress ?? 10)
            }
            do {
                let plain = try parseHostPort(section.listen ?? AppConfiguration.defaultPOP3, what: "pop3.listen")
                let implicit = try parseHostPort(section.tlsListen ?? AppConfiguration.defaultPOP3S, what: "pop3.tls_listen")
                pop3 = try await POP3Listener.start(configuration: pop3Config(plain, implicitTLS: false), tls: tls.context, delegate: edge, logger: logger)
                pop3s = try await POP3Listener.start(configuration: pop3Config(implicit, implicitTLS: true), tls: tls.context, delegate: edge, logger: logger)
            } catch {
                await stopStarted()
                throw error
            }
        }
        if let section = c.imap, section.enabled ?? true {
            let edge = IMAPEdge(mail: mail)
            func imapConfig(_ hp: (host: String, port: Int), implicitTLS: Bool) -> IMAPListener.Configuration {
                IMAPListener.Configuration(
                    host: hp.host, port: hp.port, implicitTLS: implicitTLS, policy: IMAPSession.Policy(hostname: hostname),
                    limits: IMAPCommandInput.Limits(maxLiteral: maxMessageBytes), idleTimeout: .minutes(Int64(section.idleMinutes ?? 30)),
                    maxConnections: limits?.maxConnections ?? 200, maxConnectionsPerAddress: max(20, limits?.maxConnectionsPerAddress ?? 20))
            }
            // Both listeners count one user's sessions together.
            let users = IMAPUserSessions(limit: section.maxSessionsPerUser ?? AppConfiguration.defaultIMAPSessionsPerUser)
            do {
                let plain = try parseHostPort(section.listen ?? AppConfiguration.defaultIMAP, what: "imap.listen")
                let implicit = try parseHostPort(section.tlsListen ?? AppConfiguration.defaultIMAPS, what: "imap.tls_listen")
                imap = try await IMAPListener.start(configuration: imapConfig(plain, implicitTLS: false), tls: tls.context, delegate: edge, users: users,
                                                    logger: logger)
                imaps = try await IMAPListener.start(configuration: imapConfig(implicit, implicitTLS: true), tls: tls.context, delegate: edge, users: users,
                                                     logger: logger)
            } catch {
                await stopStarted()
                throw error
            }
        }
        // Anchors and bundles are read (bundles fetched) before the first message, then kept fresh.
        await anchors.reload()
        let grace = ShutdownGrace()
        let sweeper = Background("connections") {
            var lastRefusals = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                connections.sweep()
                // Under a burst of large messages (the budget half spent, or refusing) and after it,
                // give freed memory back to the system: `hisp` keeps up to 128 MiB of free heap
                // mapped per arena for speed, which a burst would otherwise leave resident.
                let refusals = budget.refusals
                if budget.inFlight >= budget.limit / 2 || refusals != lastRefusals
                    || (budget.inFlight == 0 && budget.takePeak() >= Self.trimAfterBytes) {
                    MemoryRelease.releaseFreeMemory()
                }
                lastRefusals = refusals
            }
        } stopped: {
            // The queue has stopped: the delivery connections say QUIT.
            connections.closeAll()
        }
        // Stopped in reverse order: the listeners, the queue, the anchors, the connections, DNS.
        var services: [any Service] = []
        if let dnsServer { services.append(Stopping("dns") { await dnsServer.stop() }) }
        services.append(sweeper)
        services.append(Background("anchors") { await anchors.run() })
        let started = GroupHandle()
        if !signals.isEmpty {
            services.append(Background("signals") {
                // Runs until the shutdown it starts reaches it (a service that returned early would fail the group).
                for await signal in stops {
                    logger.notice("signal \(signal): stopping gracefully")
                    await started.group?.triggerGracefulShutdown()
                }
            })
        }
        services.append(Background("hangup") {
            // SIGHUP rereads the trust anchors and bundles now; nothing else is reloaded, and it never stops the server.
            for await _ in hangups {
                logger.notice("SIGHUP: trust anchors and bundles reread; other configuration changes need a restart")
                await anchors.reload()
            }
        })
        services.append(Background("queue") { await mail.run() })
        services.append(Stopping("inbound") { await inbound.shutdown(grace: grace.value) })
        services.append(Stopping("submission") { await submission.shutdown(grace: grace.value) })
        if let pop3 { services.append(Stopping("pop3") { await pop3.shutdown(grace: grace.value) }) }
        if let pop3s { services.append(Stopping("pop3s") { await pop3s.shutdown(grace: grace.value) }) }
        if let imap { services.append(Stopping("imap") { await imap.shutdown(grace: grace.value) }) }
        if let imaps { services.append(Stopping("imaps") { await imaps.shutdown(grace: grace.value) }) }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            logger: logger))
        started.set(group)
        let summary = Summary(
            hostname: hostname, inbound: "\(inboundListen.host):\(inbound.port)", submission: "\(submissionListen.host):\(submission.port)",
            pop3: pop3.map { "\($0.configuration.host):\($0.port)" }, pop3s: pop3s.map { "\($0.configuration.host):\($0.port)" },
            imap: imap.map { "\($0.configuration.host):\($0.port)" }, imaps: imaps.map { "\($0.configuration.host):\($0.port)" },
            dns: dnsServer.map { "\(dnsListen.host):\($0.udpPort)" }, tlsCertificate: tls.certificatePath, selfSignedTLS: tls.selfSigned)
        return (HISPServer(inbound: inbound, submission: submission, pop3: pop3, pop3s: pop3s, imap: imap, imaps: imaps, dns: dnsServer, mail: mail,
                           group: group, grace: grace, logger: logger), summary)
    }
}

/// The group, for a service inside it that shuts it down (set once it exists).
final class GroupHandle: Sendable {
    private let value = Mutex<ServiceGroup?>(nil)
    var group: ServiceGroup? { value.withLock { $0 } }
    func set(_ g: ServiceGroup) { value.withLock { $0 = g } }
}

/// How long current sessions may take to finish at shutdown (set by `shutdown`).
final class ShutdownGrace: Sendable {
    private let duration = Mutex<Duration>(.seconds(10))
    var value: Duration { duration.withLock { $0 } }
    func set(_ d: Duration) { duration.withLock { $0 = d } }
}

/// A service that runs until the group shuts down, then stops what it serves.
struct Stopping: Service, CustomStringConvertible {
    let description: String
    let stop: @Sendable () async -> Void

    init(_ name: String, stop: @escaping @Sendable () async -> Void) {
        description = name
        self.stop = stop
    }

    func run() async throws {
        // Cancelled (a failed service) or shut down gracefully: either way, stop.
        try? await gracefulShutdown()
        await stop()
    }
}

/// Work that runs until the group shuts down (then it is cancelled), and what to do once it has stopped.
struct Background: Service, CustomStringConvertible {
    let description: String
    let work: @Sendable () async -> Void
    let stopped: @Sendable () async -> Void

    init(_ name: String, _ work: @escaping @Sendable () async -> Void, stopped: @escaping @Sendable () async -> Void = {}) {
        description = name
        self.work = work
        self.stopped = stopped
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { await work() }
        await stopped()
    }
}
