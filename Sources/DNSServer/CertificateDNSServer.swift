import DNSCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Storage

/// The certificate DNS server: authoritative answers for the hosted domains
/// over UDP and TCP (RFC 1035 4.2, RFC 7766), from the store, reloaded when
/// the store's zone serial changes (no restart).
public final class CertificateDNSServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Answers per second per source network over UDP (0: unlimited).
        public var rateLimit: Double
        public var maxTCPConnections: Int
        /// TCP connections one client address may hold at once.
        public var maxTCPConnectionsPerAddress: Int
        /// RFC 7766 6.2.3: idle TCP connections are closed.
        public var tcpIdleTimeout: TimeAmount
        /// A query over TCP must arrive whole within this time of its first byte.
        public var tcpQueryTimeout: TimeAmount
        public var reloadInterval: Duration

        public init(host: String = "127.0.0.1", port: Int = 5353, rateLimit: Double = 100, maxTCPConnections: Int = 256,
                    maxTCPConnectionsPerAddress: Int = 8, tcpIdleTimeout: TimeAmount = .seconds(10),
                    tcpQueryTimeout: TimeAmount = .seconds(3), reloadInterval: Duration = .seconds(1)) {
            self.host = host
            self.port = port
            self.rateLimit = rateLimit
            self.maxTCPConnections = maxTCPConnections
            self.maxTCPConnectionsPerAddress = maxTCPConnectionsPerAddress
            self.tcpIdleTimeout = tcpIdleTimeout
            self.tcpQueryTimeout = tcpQueryTimeout
            self.reloadInterval = reloadInterval
        }
    }

    let udp: any Channel
    let tcp: any Channel
    let state: ServerState
    let reload: Task<Void, Never>

    /// Where the server listens (the ports the system chose when 0 was asked for).
    public var udpPort: Int { udp.localAddress?.port ?? 0 }
    public var tcpPort: Int { tcp.localAddress?.port ?? 0 }

    init(udp: any Channel, tcp: any Channel, state: ServerState, reload: Task<Void, Never>) {
        self.udp = udp
        self.tcp = tcp
        self.state = state
        self.reload = reload
    }

    /// Loads the zones and starts listening on the same port for UDP and TCP.
    public static func start(store: HISPStore, configuration: Configuration,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             onReload: @escaping @Sendable (Int, UInt32) -> Void = { _, _ in },
                             onError: @escaping @Sendable (String) -> Void = { _ in }) async throws -> CertificateDNSServer {
        let serial = try await store.zoneSerial()
        let state = ServerState(zones: try await HostedZones.load(store), serial: serial, rateLimit: configuration.rateLimit)
        onReload(state.responder.zones.count, serial)
        let udp = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // recvmmsg: up to 32 queries per system call; replies are flushed together (sendmmsg).
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.maxMessagesPerRead, value: 8)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 2048))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPHandler(state: state)) }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        let tcp: any Channel
        do {
            tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let remote = channel.remoteAddress?.addressBytes ?? []
                        guard state.openConnection(from: remote, limit: configuration.maxTCPConnections,
                                                   perAddress: configuration.maxTCPConnectionsPerAddress) else {
                            throw ChannelError.inputClosed
                        }
                        channel.closeFuture.whenComplete { _ in state.closeConnection(from: remote) }
                        try channel.pipeline.syncOperations.addHandlers([
                            DNSTCPDeadlineHandler(idleTimeout: configuration.tcpIdleTimeout, queryTimeout: configuration.tcpQueryTimeout),
                            ByteToMessageHandler(DNSTCPFrameDecoder()),
                            TCPHandler(state: state),
                        ])
                    }
                }
                .bind(host: configuration.host, port: udp.localAddress?.port ?? configuration.port).get()
        } catch {
            try? await udp.close()
            throw error
        }
        let interval = configuration.reloadInterval
        let reload = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                do {
                    let current = try await store.zoneSerial()
                    if current != state.serial {
                        state.replace(zones: try await HostedZones.load(store), serial: current)
                        onReload(state.responder.zones.count, current)
                    }
                } catch {
                    // Stopping cancels a reload in progress; that is not an error.
                    if Task.isCancelled { break }
                    onError("reloading zones: \(error)")
                }
            }
        }
        return CertificateDNSServer(udp: udp, tcp: tcp, state: state, reload: reload)
    }

    public func stop() async {
        reload.cancel()
        try? await udp.close()
        try? await tcp.close()
    }

    /// Completes when either listener closes.
    public func wait() async throws {
        try await tcp.closeFuture.get()
    }
}

/// The zones, the answer cache and the counters the handlers share.
final class ServerState: Sendable {
    private struct Inner {
        var responder: AuthoritativeResponder
        var serial: UInt32
        var generation = 0
        var limiter: RateLimiter
        /// Answers already made for plain queries (see `QueryKey`), emptied on every reload.
        var answers: [QueryKey: [UInt8]] = [:]
        var connections = 0
        var perAddress: [[UInt8]: Int] = [:]
    }

    static let maxCachedAnswers = 10_000
    private let inner: NIOLockedValueBox<Inner>

    init(zones: [Zone], serial: UInt32, rateLimit: Double) {
        inner = NIOLockedValueBox(Inner(responder: AuthoritativeResponder(zones: zones), serial: serial, limiter: RateLimiter(rate: rateLimit)))
    }

    var responder: AuthoritativeResponder { inner.withLockedValue { $0.responder } }
    var serial: UInt32 { inner.withLockedValue { $0.serial } }

    func replace(zones: [Zone], serial: UInt32) {
        inner.withLockedValue {
            $0.responder = AuthoritativeResponder(zones: zones)
            $0.serial = serial
            $0.generation += 1
            $0.answers.removeAll()
        }
    }

    /// The reply to one query (nil: send nothing). `source` is the client's
    /// address for rate limiting (UDP only). Plain queries are answered from the
    /// cache, fitted to the query's ID, flags and name case.
    func reply(to bytes: [UInt8], over transport: AuthoritativeResponder.Transport, source: [UInt8]?) -> [UInt8]? {
        let fast = QueryKey.read(bytes, transport: transport)
        let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
        let (decision, cached, responder, generation) = inner.withLockedValue { s -> (RateLimiter.Decision, [UInt8]?, AuthoritativeResponder, Int) in
            let d = source.map { s.limiter.decide(source: $0, now: now) } ?? .answer
            return (d, fast.flatMap { s.answers[$0.key] }, s.responder, s.generation)
        }
        switch decision {
        case .drop:
            return nil
        case .slip:
            // An empty truncated answer: a real client retries over TCP.
            return (try? DNSMessage(parsing: bytes)).flatMap { q in
                q.isResponse ? nil : DNSMessage(id: q.id, isResponse: true, opcode: q.opcode, truncated: true, questions: q.questions).encoded()
            }
        case .answer:
            break
        }
        guard let fast else { return responder.respond(to: bytes, over: transport) }
        if let cached { return QueryKey.fit(cached, to: bytes, nameEnd: fast.nameEnd) }
        let key = fast.key
        guard let template = responder.respond(to: key.query(), over: key.maxSize > AuthoritativeResponder.maxUDPPayload ? .tcp : .udp) else {
            return nil
        }
        inner.withLockedValue { s in
            // Not across a reload: the answer was made from the zones of `generation`.
            guard s.generation == generation else { return }
            if s.answers.count >= Self.maxCachedAnswers { s.answers.removeAll(keepingCapacity: true) }
            s.answers[key] = template
        }
        return QueryKey.fit(template, to: bytes, nameEnd: fast.nameEnd)
    }

    func openConnection(from address: [UInt8], limit: Int, perAddress: Int) -> Bool {
        inner.withLockedValue {
            guard $0.connections < limit, $0.perAddress[address, default: 0] < perAddress else { return false }
            $0.connections += 1
            $0.perAddress[address, default: 0] += 1
            return true
        }
    }

    func closeConnection(from address: [UInt8]) {
        inner.withLockedValue {
            $0.connections -= 1
            $0.perAddress[address, default: 1] -= 1
            if $0.perAddress[address] == 0 { $0.perAddress[address] = nil }
        }
    }
}

final class UDPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let state: ServerState
    init(state: ServerState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        guard let reply = state.reply(to: bytes, over: .udp, source: envelope.remoteAddress.addressBytes) else { return }
        let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: context.channel.allocator.buffer(bytes: reply))
        context.write(wrapOutboundOut(out), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP error (e.g. ICMP unreachable for one client) must not stop the server.
    }
}

final class TCPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let state: ServerState
    init(state: ServerState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        guard let reply = state.reply(to: bytes, over: .tcp, source: nil) else {
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.dnsTCPFrame(reply, allocator: context.channel.allocator)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension SocketAddress {
    /// The address octets (4 or 16), for rate limiting by network.
    var addressBytes: [UInt8] {
        switch self {
        case .v4(let a): return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a): return withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        default: return []
        }
    }
}

/// RFC 7766 6.2.3 / 6.2.4: the deadlines of a DNS connection over TCP, read
/// from the raw bytes before framing. Between queries the connection may stay
/// idle for `idleTimeout`; once a query's first byte (its length) arrives, the
/// whole query must follow within `queryTimeout`, however its bytes trickle in.
final class DNSTCPDeadlineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let idleTimeout: TimeAmount
    let queryTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// Bytes still missing of the query being received (its length prefix included); 0 between queries.
    private var missing = 0
    /// The first byte of a two-byte length, when only it has arrived.
    private var lengthHigh: UInt8?

    init(idleTimeout: TimeAmount, queryTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.queryTimeout = queryTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, in: idleTimeout)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let wasBetweenQueries = missing == 0 && lengthHigh == nil
        for byte in buffer.readableBytesView { step(byte) }
        let betweenQueries = missing == 0 && lengthHigh == nil
        if betweenQueries {
            arm(context, in: idleTimeout)
        } else if wasBetweenQueries || queryCompletedInThisRead {
            // A new query started: its deadline runs from now and is not moved by later bytes.
            arm(context, in: queryTimeout)
        }
        queryCompletedInThisRead = false
        context.fireChannelRead(data)
    }

    private var queryCompletedInThisRead = false

    /// Follows the framing one byte at a time: two length bytes, then that many.
    private func step(_ byte: UInt8) {
        if missing > 0 {
            missing -= 1
            if missing == 0 { queryCompletedInThisRead = true }
        } else if let high = lengthHigh {
            lengthHigh = nil
            missing = Int(high) << 8 | Int(byte)
            if missing == 0 { queryCompletedInThisRead = true }
        } else {
            lengthHigh = byte
        }
    }

    private func arm(_ context: ChannelHandlerContext, in amount: TimeAmount) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: amount) { channel.close(promise: nil) }
    }
}
