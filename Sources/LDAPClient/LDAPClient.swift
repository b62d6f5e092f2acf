import DirectTrust
import LDAPCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The LDAP side of certificate discovery (Direct AS 1.2 5.3, RFC 4511): anonymous bind,
/// the root DSE's namingContexts, `(mail=...)` under each, the certificate
/// attributes. One connection per call, closed with an unbind.
public struct LDAPDiscoveryClient: DiscoveryLDAP {
    public static let certificateAttributes = ["userCertificate;binary", "userCertificate", "userSMIMECertificate"]
    /// Entries per search and naming contexts per server that are read.
    public static let maxEntries = 50
    public static let maxContexts = 8

    public let timeout: Duration
    let group: any EventLoopGroup

    public init(timeout: Duration = .seconds(5), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.timeout = timeout
        self.group = group
    }

    var amount: TimeAmount {
        .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    public func certificates(host: String, port: Int, mail: String) async throws -> [LDAPCertificateValue] {
        let conversation = try await LDAPConversation.open(host: host, port: port, timeout: amount, group: group)
        defer { conversation.close() }
        // RFC 4513 5.1.1: anonymous simple bind (empty name and password).
        let bind = try await conversation.request(.bindRequest(name: "", password: []))
        guard case .bindResponse(let result)? = bind.last?.operation, result.code == LDAPResult.success else {
            throw LDAPError.result("anonymous bind refused: \(Self.describe(bind.last))")
        }
        // RFC 4512 5.1: the root DSE lists the naming contexts.
        let rootDSE = try await conversation.search(LDAPSearch(
            base: "", scope: .baseObject, sizeLimit: 1, timeLimit: 10, filter: .present("objectClass"), attributes: ["namingContexts"]))
        var contexts = rootDSE.entries.flatMap { entry in
            entry.attributes.filter { $0.type.lowercased() == "namingcontexts" }.flatMap(\.values)
        }.compactMap { String(bytes: $0, encoding: .utf8) }
        if contexts.isEmpty { contexts = [""] }
        var out: [LDAPCertificateValue] = []
        for base in contexts.prefix(Self.maxContexts) {
            let found = try await conversation.search(LDAPSearch(
                base: base, scope: .wholeSubtree, sizeLimit: Self.maxEntries, timeLimit: 10, filter: .equal("mail", mail),
                attributes: Self.certificateAttributes))
            guard found.result.code == LDAPResult.success || found.result.code == LDAPResult.sizeLimitExceeded
                    || found.result.code == 32 /* noSuchObject */ else {
                throw LDAPError.result("search under \(base) failed: result \(found.result.code) \(found.result.diagnostic)")
            }
            for entry in found.entries {
                for attribute in entry.attributes
                where Self.certificateAttributes.contains(where: { $0.lowercased() == attribute.type.lowercased() }) {
                    out += attribute.values.map { LDAPCertificateValue(dn: entry.dn, attribute: attribute.type, value: $0) }
                }
            }
        }
        conversation.unbind()
        return out
    }

    static func describe(_ m: LDAPMessage?) -> String {
        guard let m else { return "no answer" }
        if case .bindResponse(let r) = m.operation { return "result \(r.code) \(r.diagnostic)" }
        return "unexpected \(m.operation)"
    }
}

/// One LDAP connection: requests sent in order, answers collected by message ID.
final class LDAPConversation: Sendable {
    let channel: any Channel
    let inbox: LDAPInbox
    let timeout: TimeAmount
    let nextID = NIOLockedCounter()

    struct Entry {
        let dn: String
        let attributes: [(type: String, values: [[UInt8]])]
    }

    init(channel: any Channel, inbox: LDAPInbox, timeout: TimeAmount) {
        self.channel = channel
        self.inbox = inbox
        self.timeout = timeout
    }

    static func open(host: String, port: Int, timeout: TimeAmount, group: any EventLoopGroup) async throws -> LDAPConversation {
        let inbox = LDAPInbox()
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandlers([ByteToMessageHandler(LDAPFrameDecoder()), inbox])
                    }
                }
                .connect(host: host, port: port).get()
            return LDAPConversation(channel: channel, inbox: inbox, timeout: timeout)
        } catch {
            throw LDAPError.connection("cannot connect to \(host):\(port): \(error)")
        }
    }

    /// Sends an operation and returns every message with its ID up to the final one (bind response or search done).
    func request(_ operation: LDAPOperation) async throws -> [LDAPMessage] {
        let id = nextID.next()
        let bytes = try LDAPMessage(id: id, operation: operation).encoded()
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: [LDAPMessage].self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(LDAPError.connection("no answer within \(self.timeout)")) }
        defer { timer.cancel() }
        loop.execute { self.inbox.await(id: id, promise: promise) }
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
        return try await promise.futureResult.get()
    }

    func search(_ q: LDAPSearch) async throws -> (entries: [Entry], result: LDAPResult) {
        let messages = try await request(.searchRequest(q))
        var entries: [Entry] = []
        var result = LDAPResult(code: -1, diagnostic: "no SearchResultDone")
        for m in messages {
            switch m.operation {
            case .searchResultEntry(let dn, let attributes): entries.append(Entry(dn: dn, attributes: attributes))
            case .searchResultDone(let r): result = r
            default: break
            }
        }
        return (entries, result)
    }

    func unbind() {
        if let bytes = try? LDAPMessage(id: nextID.next(), operation: .unbindRequest).encoded() {
            channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
        }
    }

    func close() { channel.close(promise: nil) }
}

final class NIOLockedCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int { value.withLockedValue { $0 += 1; return $0 } }
}

/// Collects answers per message ID on the event loop.
final class LDAPInbox: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = LDAPMessage

    private var waiting: (id: Int, promise: EventLoopPromise<[LDAPMessage]>)?
    private var collected: [LDAPMessage] = []
    private var failure: (any Error)?

    func await(id: Int, promise: EventLoopPromise<[LDAPMessage]>) {
        if let failure {
            promise.fail(failure)
            return
        }
        waiting = (id, promise)
        collected = []
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard let w = waiting, message.id == w.id else { return }
        collected.append(message)
        guard collected.count <= LDAPDiscoveryClient.maxEntries + 2 else {
            w.promise.fail(LDAPError.limit("more than \(LDAPDiscoveryClient.maxEntries) entries"))
            waiting = nil
            return
        }
        switch message.operation {
        case .bindResponse, .searchResultDone:
            waiting = nil
            w.promise.succeed(collected)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(LDAPError.connection("the server closed the connection"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error as? LDAPError ?? LDAPError.connection("\(error)"))
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        failure = error
        waiting?.promise.fail(error)
        waiting = nil
    }
}

/// Splits the byte stream into BER messages (definite lengths, size-limited).
struct LDAPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = LDAPMessage

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let length = try LDAPMessage.frameLength(ArraySlice(view.prefix(6))), buffer.readableBytes >= length,
              let bytes = buffer.readBytes(length: length)
        else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(try LDAPMessage(parsing: ArraySlice(bytes))))
        return .continue
    }
}
