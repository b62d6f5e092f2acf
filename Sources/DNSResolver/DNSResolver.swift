import DNSCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A stub resolver: asks the configured servers (recursion desired) over UDP
/// with EDNS, retries over TCP when the answer is truncated (RFC 7766 5),
/// moves on to the next server on timeout, SERVFAIL or REFUSED, follows CNAMEs
/// and caches answers for their TTL (negative answers for the SOA minimum,
/// RFC 2308 5).
public final class DNSResolver: Sendable {
    public let configuration: ResolverConfiguration
    let group: any EventLoopGroup
    let cache: NIOLockedValueBox<[CacheKey: CacheEntry]>

    struct CacheKey: Hashable {
        let name: DNSName
        let type: DNSType
    }

    struct CacheEntry {
        let answer: DNSAnswer
        let expires: NIODeadline
    }

    static let maxCNAMEHops = 8
    static let maxCacheTTL: UInt32 = 86_400
    static let maxNegativeTTL: UInt32 = 3600

    public init(configuration: ResolverConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.group = group
        self.cache = NIOLockedValueBox([:])
    }

    public func resolve(_ name: DNSName, _ type: DNSType) async throws -> DNSAnswer {
        var aliases: [DNSName] = []
        var current = name
        for _ in 0...Self.maxCNAMEHops {
            let answer = try await resolveOnce(current, type)
            aliases += answer.aliases
            if !answer.records.isEmpty || answer.rcode != .noError || answer.aliases.isEmpty {
                return DNSAnswer(name: name, type: type, rcode: answer.rcode, records: answer.records, aliases: aliases,
                                 server: answer.server, transport: answer.transport, fromCache: answer.fromCache)
            }
            // The answer stopped at a CNAME whose target it did not include: ask for the target.
            current = answer.aliases.last ?? current
        }
        throw ResolverError.failed("\(name) \(type): more than \(Self.maxCNAMEHops) CNAMEs")
    }

    /// One question to the servers (or the cache), CNAMEs inside the answer followed.
    func resolveOnce(_ name: DNSName, _ type: DNSType) async throws -> DNSAnswer {
        let key = CacheKey(name: name, type: type)
        let now = NIODeadline.now()
        if let hit = cache.withLockedValue({ $0[key] }), hit.expires > now {
            let a = hit.answer
            return DNSAnswer(name: a.name, type: a.type, rcode: a.rcode, records: a.records, aliases: a.aliases, server: a.server,
                             transport: a.transport, fromCache: true)
        }
        let servers = configuration.servers(for: name)
        guard !servers.isEmpty else { throw ResolverError.noServers("\(name) \(type)") }
        var problems: [String] = []
        var anyAnswered = false
        for _ in 0..<configuration.attempts {
            for server in servers {
                do {
                    let (response, transport) = try await exchange(name: name, type: type, server: server)
                    anyAnswered = true
                    guard response.rcode == .noError || response.rcode == .nxDomain else {
                        problems.append("\(server) answered \(response.rcode)")
                        continue
                    }
                    let answer = Self.interpret(response, name: name, type: type, server: server, transport: transport)
                    store(answer, response: response, key: key)
                    return answer
                } catch let e as ExchangeError {
                    problems.append("\(server) \(e.text)")
                }
            }
        }
        let detail = "\(name) \(type): " + problems.joined(separator: "; ")
        throw anyAnswered ? ResolverError.failed(detail) : ResolverError.unreachable(detail)
    }

    /// Records of `type` at `name`, following CNAMEs within the answer section.
    static func interpret(_ m: DNSMessage, name: DNSName, type: DNSType, server: DNSServerAddress, transport: String) -> DNSAnswer {
        var owner = name
        var aliases: [DNSName] = []
        for _ in 0...maxCNAMEHops {
            let here = m.answers.filter { $0.name == owner && $0.dnsClass == .in }
            let matching = here.filter { $0.type == type }
            if !matching.isEmpty || type == .cname {
                return DNSAnswer(name: name, type: type, rcode: m.rcode, records: matching, aliases: aliases, server: server,
                                 transport: transport, fromCache: false)
            }
            guard let cname = here.first(where: { $0.type == .cname }), case .cname(let target) = cname.data else { break }
            aliases.append(target)
            owner = target
        }
        return DNSAnswer(name: name, type: type, rcode: m.rcode, records: [], aliases: aliases, server: server, transport: transport, fromCache: false)
    }

    func store(_ answer: DNSAnswer, response: DNSMessage, key: CacheKey) {
        let ttl: UInt32
        if answer.records.isEmpty {
            let soaMinimum = response.authorities.compactMap { r -> UInt32? in
                if case .soa(let s) = r.data { return min(r.ttl, s.minimum) }
                return nil
            }.first
            ttl = min(soaMinimum ?? 60, Self.maxNegativeTTL)
        } else {
            ttl = min(answer.records.map(\.ttl).min() ?? 0, Self.maxCacheTTL)
        }
        guard ttl > 0 else { return }
        let limit = configuration.maxCacheEntries
        cache.withLockedValue { c in
            if c.count >= limit { c.removeAll(keepingCapacity: true) }
            c[key] = CacheEntry(answer: answer, expires: .now() + .seconds(Int64(ttl)))
        }
    }

    struct ExchangeError: Error {
        let text: String
    }

    /// One query to one server: UDP, then TCP if the answer was truncated.
    func exchange(name: DNSName, type: DNSType, server: DNSServerAddress) async throws -> (DNSMessage, String) {
        let address: SocketAddress
        do { address = try SocketAddress(ipAddress: server.host, port: server.port) } catch {
            throw ExchangeError(text: "is not an IP address")
        }
        var rng = SystemRandomNumberGenerator()
        let id = UInt16.random(in: 0...UInt16.max, using: &rng)
        let query = DNSMessage.query(id: id, name: name, type: type, recursionDesired: true, edns: EDNS(udpPayloadSize: 1232)).encoded()
        let udp = try await udpExchange(query, id: id, server: address)
        let response = try check(udp, id: id, name: name, type: type)
        if !response.truncated { return (response, "udp") }
        let tcp = try await tcpExchange(query, server: address)
        return (try check(tcp, id: id, name: name, type: type), "tcp after truncation")
    }

    func check(_ bytes: [UInt8], id: UInt16, name: DNSName, type: DNSType) throws -> DNSMessage {
        let m: DNSMessage
        do { m = try DNSMessage(parsing: bytes) } catch {
            throw ExchangeError(text: "sent an unreadable answer (\(error))")
        }
        guard m.id == id, m.isResponse, m.questions.count == 1, m.questions[0].name == name, m.questions[0].type == type else {
            throw ExchangeError(text: "answered a different question")
        }
        return m
    }

    var timeout: TimeAmount { .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000 + configuration.timeout.components.attoseconds / 1_000_000_000) }

    func udpExchange(_ query: [UInt8], id: UInt16, server: SocketAddress) async throws -> [UInt8] {
        let loop = group.next()
        let promise = loop.makePromise(of: [UInt8].self)
        let channel: any Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(UDPAnswerHandler(server: server, id: id, promise: promise)) }
                }
                .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        } catch {
            promise.fail(error)
            throw ExchangeError(text: "cannot open a UDP socket: \(error)")
        }
        let timer = loop.scheduleTask(in: timeout) { promise.fail(ExchangeError(text: "did not answer within \(self.configuration.timeout)")) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        let envelope = AddressedEnvelope(remoteAddress: server, data: channel.allocator.buffer(bytes: query))
        channel.writeAndFlush(envelope).whenFailure { promise.fail(ExchangeError(text: "unreachable (\($0))")) }
        do { return try await promise.futureResult.get() } catch let e as ExchangeError { throw e } catch {
            throw ExchangeError(text: "\(error)")
        }
    }

    func tcpExchange(_ query: [UInt8], server: SocketAddress) async throws -> [UInt8] {
        let loop = group.next()
        let promise = loop.makePromise(of: [UInt8].self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandlers([ByteToMessageHandler(DNSTCPFrameDecoder()), TCPAnswerHandler(promise: promise)])
                    }
                }
                .connect(to: server).get()
        } catch {
            promise.fail(error)
            throw ExchangeError(text: "refused a TCP connection (\(error))")
        }
        let timer = loop.scheduleTask(in: timeout) { promise.fail(ExchangeError(text: "did not answer over TCP within \(self.configuration.timeout)")) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        channel.writeAndFlush(ByteBuffer.dnsTCPFrame(query, allocator: channel.allocator), promise: nil)
        do { return try await promise.futureResult.get() } catch let e as ExchangeError { throw e } catch {
            throw ExchangeError(text: "\(error)")
        }
    }
}

/// Accepts the first datagram from the server with the query's ID; anything else (spoofing attempts, strays) is ignored.
final class UDPAnswerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let server: SocketAddress
    let id: UInt16
    let promise: EventLoopPromise<[UInt8]>

    init(server: SocketAddress, id: UInt16, promise: EventLoopPromise<[UInt8]>) {
        self.server = server
        self.id = id
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        guard envelope.remoteAddress == server, DNSMessage.headerID(bytes) == id else { return }
        promise.succeed(bytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable arrives as a read error on a connected-less socket.
        promise.fail(DNSResolver.ExchangeError(text: "unreachable (\(error))"))
    }
}

final class TCPAnswerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<[UInt8]>
    init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        promise.succeed(Array(unwrapInboundIn(data).readableBytesView))
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSResolver.ExchangeError(text: "closed the TCP connection without an answer"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(DNSResolver.ExchangeError(text: "TCP error (\(error))"))
    }
}
