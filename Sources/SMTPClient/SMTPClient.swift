import DirectCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SMTPCore

/// How the client protects a connection (RFC 3207; NIST SP 800-52r2 3.1: TLS 1.2+).
public struct SMTPClientTLS: Sendable {
    public enum Verification: String, Sendable, CaseIterable {
        /// The server's certificate must chain to `trustRoots` (or the system's) and name the host.
        case full
        /// The chain is checked, the host name is not (a route by IP address).
        case noHostname = "no-hostname"
        /// Encrypt without checking who answers (development, or a peer whose MX has a self-signed certificate).
        case none
    }

    /// Refuse to send when the server does not offer STARTTLS (the default).
    public var required: Bool
    public var verification: Verification { didSet { memo = TLSContextMemo() } }
    /// PEM certificates to trust instead of the system's roots.
    public var trustRoots: [NIOSSLCertificate]? { didSet { memo = TLSContextMemo() } }
    /// The context these settings make, shared by the copies of this value.
    private var memo = TLSContextMemo()
    /// The same object for copies of these settings, another one once they change.
    var memoIdentity: TLSContextMemo { memo }

    public init(required: Bool = true, verification: Verification = .full, trustRoots: [NIOSSLCertificate]? = nil) {
        self.required = required
        self.verification = verification
        self.trustRoots = trustRoots
    }

    /// The TLS context for these settings, made at the first connection and then
    /// reused: making one loads the trust roots (with the system's, every CA
    /// certificate on the machine), far more work than a handshake.
    func context() throws -> NIOSSLContext {
        try memo.get {
            var config = TLSConfiguration.makeClientConfiguration()
            config.minimumTLSVersion = .tlsv12
            // NIST SP 800-52r2 3.3.1: AEAD suites with ECDHE only.
            config.cipherSuites = TLSPolicy.tls12CipherSuites
            switch verification {
            case .full: config.certificateVerification = .fullVerification
            case .noHostname: config.certificateVerification = .noHostnameVerification
            case .none: config.certificateVerification = .none
            }
            if let roots = trustRoots { config.trustRoots = .certificates(roots) }
            return try NIOSSLContext(configuration: config)
        }
    }
}

/// One `NIOSSLContext`, made on first use (a context is safe to share between connections).
final class TLSContextMemo: Sendable {
    private let box = NIOLockedValueBox<NIOSSLContext?>(nil)

    func get(_ make: () throws -> NIOSSLContext) throws -> NIOSSLContext {
        try box.withLockedValue { memo in
            if let context = memo { return context }
            let context = try make()
            memo = context
            return context
        }
    }
}

public struct SMTPClientConfiguration: Sendable {
    /// The name we give in EHLO.
    public var heloName: String
    public var tls: SMTPClientTLS
    public var connectTimeout: TimeAmount
    /// The longest wait for any reply (RFC 5321 4.5.3.2 allows up to 10 minutes after the data).
    public var replyTimeout: TimeAmount

    public init(heloName: String, tls: SMTPClientTLS = SMTPClientTLS(), connectTimeout: TimeAmount = .seconds(30),
                replyTimeout: TimeAmount = .minutes(10)) {
        self.heloName = heloName
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.replyTimeout = replyTimeout
    }
}

/// Why a delivery attempt failed before any recipient got an answer.
public enum SMTPClientError: Error, CustomStringConvertible, Sendable {
    case connect(host: String, port: Int, String)
    case closed(during: String)
    case timeout(during: String)
    /// The server would not start TLS, and TLS is required.
    case noStartTLS(host: String)
    case tls(host: String, String)
    /// A reply that ends the whole session (greeting, EHLO, MAIL).
    case refused(SMTPReply, during: String)
    case protocolViolation(String)

    /// Worth trying again later (RFC 5321 4.5.4.1); the rest is permanent.
    public var isTransient: Bool {
        switch self {
        case .refused(let reply, _): return reply.isTransient
        case .protocolViolation: return true
        default: return true
        }
    }

    public var description: String {
        switch self {
        case .connect(let host, let port, let e): return "cannot connect to \(host):\(port): \(e)"
        case .closed(let during): return "the server closed the connection during \(during)"
        case .timeout(let during): return "no reply from the server during \(during)"
        case .noStartTLS(let host): return "\(host) does not offer STARTTLS, and TLS is required"
        case .tls(let host, let e): return "TLS with \(host) failed: \(e)"
        case .refused(let reply, let during): return "the server refused \(during): \(reply)"
        case .protocolViolation(let s): return s
        }
    }
}

/// What the server said to one message.
public struct SMTPSendResult: Sendable {
    /// The reply for each recipient: its RCPT refusal, or the reply to the data.
    public let replies: [String: SMTPReply]
}

/// One SMTP client connection (RFC 5321 client side, RFC 3207 STARTTLS,
/// RFC 2920 pipelining), reused for several messages to the same host.
public final class SMTPClientConnection: @unchecked Sendable {
    // Used by one task at a time (the one inside `withConnection`).
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let idle: IdleFlag
    private var input = SMTPInputBuffer()
    private var parser = SMTPReplyParser()
    public private(set) var extensions: [String] = []
    public let host: String
    public private(set) var tlsActive = false

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                 outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, idle: IdleFlag, host: String) {
        self.channel = channel
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.idle = idle
        self.host = host
    }

    /// Connects to `address:port` (the MX host `serverName` for TLS), greets,
    /// starts TLS, runs `body`, and says QUIT.
    public static func withConnection<T: Sendable>(
        address: String, port: Int, serverName: String, configuration: SMTPClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (SMTPClientConnection) async throws -> T
    ) async throws -> T {
        let idle = IdleFlag()
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(configuration.connectTimeout)
                .connect(host: address, port: port) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: configuration.replyTimeout), CloseOnIdle(flag: idle),
                        ])
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                    }
                }
        } catch {
            throw SMTPClientError.connect(host: address, port: port, "\(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = SMTPClientConnection(channel: channel, inbound: inbound, outbound: outbound, idle: idle, host: serverName)
            try await connection.open(configuration)
            let result = try await body(connection)
            _ = try? await connection.command("QUIT", during: "QUIT")
            return result
        }
    }

    private func open(_ configuration: SMTPClientConfiguration) async throws {
        let greeting = try await reply(during: "the greeting")
        guard greeting.code == 220 else { throw SMTPClientError.refused(greeting, during: "the connection") }
        try await ehlo(configuration.heloName)
        if extensions.contains("STARTTLS") {
            let r = try await command("STARTTLS", during: "STARTTLS")
            guard r.code == 220 else {
                if configuration.tls.required { throw SMTPClientError.refused(r, during: "STARTTLS") }
                return
            }
            try await startTLS(configuration.tls)
            // RFC 3207 4.2: forget what the server said before TLS, ask again.
            try await ehlo(configuration.heloName)
        } else if configuration.tls.required {
            throw SMTPClientError.noStartTLS(host: host)
        }
    }

    private func ehlo(_ name: String) async throws {
        let r = try await command("EHLO \(name)", during: "EHLO")
        guard r.code == 250 else { throw SMTPClientError.refused(r, during: "EHLO") }
        extensions = r.lines.dropFirst().map { $0.uppercased() }
    }

    private func startTLS(_ tls: SMTPClientTLS) async throws {
        do {
            let context = try tls.context()
            let name = Self.isIPAddress(host) ? nil : host
            let ch = channel.channel
            let handshake = ch.eventLoop.makePromise(of: Void.self)
            try await ch.eventLoop.submit {
                let tls = try NIOSSLClientHandler(context: context, serverHostname: name)
                try ch.pipeline.syncOperations.addHandler(tls, position: .first)
                try ch.pipeline.syncOperations.addHandler(HandshakeWaiter(handshake), position: .after(tls))
            }.get()
            // Wait for the handshake, so a refused certificate is reported as such and not
            // as whatever the next read or write runs into.
            try await handshake.futureResult.get()
        } catch {
            throw SMTPClientError.tls(host: host, "\(error)")
        }
        tlsActive = true
    }

    public static func isIPAddress(_ s: String) -> Bool {
        s.contains(":") || s.split(separator: ".").count == 4 && s.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }

    public var supportsPipelining: Bool { extensions.contains("PIPELINING") }

    /// Whether the connection is still up (a server may close one that waits idle).
    public var isOpen: Bool { channel.channel.isActive }

    /// Closes the connection at once, under whatever is waiting on it.
    public func abort() { channel.channel.close(promise: nil) }

    /// RFC 4954 + RFC 4616: AUTH PLAIN, only over TLS (the password must never cross in clear).
    public func authenticate(user: String, password: String) async throws {
        guard tlsActive else { throw SMTPClientError.protocolViolation("refusing to send a password to \(host) without TLS") }
        guard extensions.contains(where: { $0.hasPrefix("AUTH ") && $0.split(separator: " ").contains("PLAIN") }) else {
            throw SMTPClientError.protocolViolation("\(host) does not offer AUTH PLAIN")
        }
        let token = Base64Text.encode([0] + Array(user.utf8) + [0] + Array(password.utf8))
        let r = try await command("AUTH PLAIN \(token)", during: "AUTH")
        guard r.code == 235 else { throw SMTPClientError.refused(r, during: "AUTH") }
    }

    /// Sends one message to `recipients`. A message refused for every recipient
    /// is a result, not an error; errors mean the session itself failed.
    public func send(from: String, to recipients: [String], message: [UInt8]) async throws -> SMTPSendResult {
        var mail = "MAIL FROM:<\(from)>"
        if extensions.contains(where: { $0.hasPrefix("SIZE") }) { mail += " SIZE=\(message.count)" }
        if extensions.contains("8BITMIME") && message.contains(where: { $0 >= 0x80 }) { mail += " BODY=8BITMIME" }
        let commands = [mail] + recipients.map { "RCPT TO:<\($0)>" } + ["DATA"]
        var replies: [SMTPReply] = []
        if supportsPipelining {
            // RFC 2920 3.1: MAIL, the RCPTs and DATA may go in one write; replies come in order.
            try await write(commands.map { $0 + "\r\n" }.joined())
            for c in commands { replies.append(try await reply(during: String(c.prefix(4)))) }
        } else {
            for c in commands {
                let r = try await command(c, during: String(c.prefix(4)))
                replies.append(r)
                if c == mail && !r.isPositive { break }
            }
        }
        let mailReply = replies[0]
        guard mailReply.code == 250 else {
            if replies.count == commands.count && replies.last?.code == 354 { try await abortData() }
            _ = try? await command("RSET", during: "RSET")
            if mailReply.isTransient { throw SMTPClientError.refused(mailReply, during: "MAIL FROM") }
            return SMTPSendResult(replies: Dictionary(recipients.map { ($0, mailReply) }, uniquingKeysWith: { a, _ in a }))
        }
        var perRecipient: [String: SMTPReply] = [:]
        var accepted: [String] = []
        for (i, r) in recipients.enumerated() {
            let reply = i + 1 < replies.count ? replies[i + 1] : SMTPReply(503, "5.5.1", "no reply")
            if reply.code == 250 || reply.code == 251 { accepted.append(r) } else { perRecipient[r] = reply }
        }
        let dataReply = replies.count == commands.count ? replies[commands.count - 1] : nil
        guard !accepted.isEmpty else {
            if dataReply?.code == 354 { try await abortData() }
            _ = try? await command("RSET", during: "RSET")
            return SMTPSendResult(replies: perRecipient)
        }
        guard let dataReply, dataReply.code == 354 else {
            let r = dataReply ?? SMTPReply(451, "4.5.0", "no reply to DATA")
            _ = try? await command("RSET", during: "RSET")
            for a in accepted { perRecipient[a] = r }
            return SMTPSendResult(replies: perRecipient)
        }
        var buffer = channel.channel.allocator.buffer(capacity: message.count + message.count / 32 + 8)
        Self.writeDotStuffed(message, into: &buffer)
        try await outbound.write(buffer)
        let final = try await reply(during: "the end of the data")
        for a in accepted { perRecipient[a] = final }
        return SMTPSendResult(replies: perRecipient)
    }

    /// When DATA was accepted although no recipient was, an empty message is
    /// sent and its reply ignored (RFC 2920 3.1).
    private func abortData() async throws {
        try await write(".\r\n")
        _ = try await reply(during: "the end of the data")
    }

    /// RFC 5321 4.5.2: a dot at the start of a line is doubled; lines end in
    /// CRLF (a bare LF becomes CRLF); the data ends with CRLF.CRLF.
    static func writeDotStuffed(_ message: [UInt8], into buffer: inout ByteBuffer) {
        var lineStart = true
        var start = 0
        var i = 0
        let n = message.count
        while i < n {
            let b = message[i]
            if lineStart && b == 0x2E {
                buffer.writeBytes(message[start..<i])
                buffer.writeInteger(UInt8(0x2E))
                start = i
            }
            if b == 0x0A && (i == 0 || message[i - 1] != 0x0D) {
                buffer.writeBytes(message[start..<i])
                buffer.writeBytes([0x0D])
                start = i
            }
            lineStart = b == 0x0A
            i += 1
        }
        buffer.writeBytes(message[start..<n])
        if n > 0 && message[n - 1] != 0x0A { buffer.writeBytes([0x0D, 0x0A]) }
        buffer.writeBytes(Array(".\r\n".utf8))
    }

    @discardableResult
    func command(_ line: String, during: String) async throws -> SMTPReply {
        try await write(line + "\r\n")
        return try await reply(during: during)
    }

    private func write(_ text: String) async throws {
        do {
            try await outbound.write(channel.channel.allocator.buffer(string: text))
        } catch {
            // The reply timeout closes the connection; say so rather than "closed".
            if idle.fired { throw SMTPClientError.timeout(during: "writing") }
            throw SMTPClientError.closed(during: "writing")
        }
    }

    private func reply(during: String) async throws -> SMTPReply {
        while true {
            while let line = input.takeLine(limit: SMTPReplyParser.maxLineLength) {
                guard case .line(let bytes) = line else { throw SMTPClientError.protocolViolation("an over-long reply line") }
                do {
                    if let reply = try parser.feed(bytes) { return reply }
                } catch {
                    throw SMTPClientError.protocolViolation("\(error)")
                }
            }
            let next: ByteBuffer?
            do {
                next = try await inbound.next()
            } catch {
                if idle.fired { throw SMTPClientError.timeout(during: during) }
                throw SMTPClientError.tls(host: host, "\(error)")
            }
            guard let chunk = next else {
                if idle.fired { throw SMTPClientError.timeout(during: during) }
                throw SMTPClientError.closed(during: during)
            }
            chunk.withUnsafeReadableBytes { input.append($0) }
        }
    }
}

/// Completes `promise` when the TLS handshake ends: done, failed, or the connection gone.
final class HandshakeWaiter: ChannelInboundHandler, @unchecked Sendable {
    // Touched only on the channel's event loop.
    typealias InboundIn = ByteBuffer
    private var promise: EventLoopPromise<Void>?

    init(_ promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            promise?.succeed(())
            promise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise?.fail(error)
        promise = nil
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise?.fail(ChannelError.ioOnClosedChannel)
        promise = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        promise?.fail(ChannelError.ioOnClosedChannel)
        promise = nil
    }
}

final class IdleFlag: Sendable {
    private let box = NIOLockedValueBox(false)
    var fired: Bool { box.withLockedValue { $0 } }
    func fire() { box.withLockedValue { $0 = true } }
}

/// Closes the connection when no reply came within the timeout.
final class CloseOnIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let flag: IdleFlag
    init(flag: IdleFlag) { self.flag = flag }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? IdleStateHandler.IdleStateEvent, e == .read {
            flag.fire()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
