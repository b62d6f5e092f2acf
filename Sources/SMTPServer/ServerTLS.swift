import DirectCore
import NIOCore
import NIOSSL

/// The TLS a listener offers: one context, or an ECDSA one with an RSA one
/// beside it for older partners whose client cannot verify ECDSA; with one
/// context per TLS 1.2 suite, the server's order of suites is kept (NIST SP
/// 800-52r2 3.3.1), which swift-nio-ssl cannot otherwise enforce. Which
/// context a client gets is decided from its ClientHello (`ClientHelloSummary`).
public struct ServerTLS: Sendable {
    public let primary: NIOSSLContext
    /// Served to clients that offer neither an ECDSA suite nor an ECDSA signature algorithm.
    public let rsa: NIOSSLContext?
    /// For clients that speak TLS 1.2 only: per suite, in the server's order, a context
    /// offering that suite alone (ECDSA suites with `primary`'s certificate, RSA ones with `rsa`'s).
    public let tls12: [(suite: UInt16, ecdsa: Bool, context: NIOSSLContext)]

    public init(primary: NIOSSLContext, rsa: NIOSSLContext? = nil, tls12: [(suite: UInt16, ecdsa: Bool, context: NIOSSLContext)] = []) {
        self.primary = primary
        self.rsa = rsa
        self.tls12 = tls12
    }

    /// The handler that starts TLS on a channel: the TLS handler itself, or one that
    /// reads the ClientHello first and then puts the right TLS handler in its place.
    public func makeHandler() -> any ChannelHandler {
        guard rsa != nil || !tls12.isEmpty else { return NIOSSLServerHandler(context: primary) }
        return TLSCertificateSelector(tls: self)
    }

    /// The context for a client that sent `hello`.
    func context(for hello: ClientHelloSummary) -> NIOSSLContext {
        let ecdsa = hello.acceptsECDSA || rsa == nil
        // TLS 1.3 (which a server that has it always chooses) has its own suites.
        guard !hello.supportedVersions.contains(0x0304) else { return ecdsa ? primary : rsa ?? primary }
        // RFC 5246 7.4.1.2: the server picks: our first suite the client offers (an ECDSA one
        // only when the client can verify ECDSA).
        if let pick = tls12.first(where: { (!$0.ecdsa || hello.acceptsECDSA) && hello.cipherSuites.contains($0.suite) }) {
            return pick.context
        }
        return ecdsa ? primary : rsa ?? primary
    }
}

/// What a ClientHello says about the certificates its sender can verify (RFC 8446
/// 4.1.2 and 4.2.3; RFC 5246 7.4.1.2 and 7.4.1.4.1). Read from the first TLS record.
public struct ClientHelloSummary: Sendable, Equatable {
    public var cipherSuites: [UInt16]
    /// nil when the client sent no signature_algorithms extension.
    public var signatureAlgorithms: [UInt16]?
    public var supportedVersions: [UInt16]

    /// ECDHE_ECDSA with AES-GCM or ChaCha20-Poly1305 (RFC 5289, RFC 7905).
    static let ecdsaSuites = Set(TLSPolicy.tls12Suites.filter(\.ecdsa).map(\.code))
    /// ecdsa_secp256r1_sha256 (RFC 8446 4.2.3): what a P-256 certificate signs with.
    static let ecdsaP256SHA256: UInt16 = 0x0403

    /// Whether an ECDSA P-256 certificate can serve this client.
    public var acceptsECDSA: Bool {
        let ecdsaSignatures = signatureAlgorithms.map { $0.contains(Self.ecdsaP256SHA256) }
        if supportedVersions.contains(0x0304) && ecdsaSignatures == true { return true }
        // TLS 1.2: an ECDSA suite, and ECDSA signatures unless the client left the list out (RFC 5246 7.4.1.4.1).
        return cipherSuites.contains(where: Self.ecdsaSuites.contains) && ecdsaSignatures != false
    }

    public enum Reading: Sendable, Equatable {
        case needMore
        case hello(ClientHelloSummary)
        /// Not a ClientHello we can read: the TLS handler will answer it.
        case unreadable
    }

    /// The largest first record read before deciding (RFC 8446 5.1: 2^14 plus the header).
    public static let maxRecord = 16_384 + 5

    public static func read(_ bytes: some Collection<UInt8>) -> Reading {
        let b = Array(bytes.prefix(maxRecord))
        guard b.count >= 5 else { return .needMore }
        // RFC 8446 5.1: a handshake record (22).
        guard b[0] == 22 else { return .unreadable }
        let length = Int(b[3]) << 8 | Int(b[4])
        guard length <= 16_384 else { return .unreadable }
        guard b.count >= 5 + length else { return .needMore }
        var r = ByteReader(b[5..<(5 + length)])
        // RFC 8446 4: msg_type client_hello (1), 24-bit length.
        guard r.u8() == 1, let helloLength = r.u24(), helloLength <= length - 4, r.u16() != nil, r.skip(32),
              let sessionID = r.u8(), r.skip(Int(sessionID)),
              let suitesLength = r.u16(), suitesLength % 2 == 0, let suites = r.u16s(Int(suitesLength) / 2),
              let compression = r.u8(), r.skip(Int(compression))
        else { return .unreadable }
        var hello = ClientHelloSummary(cipherSuites: suites, signatureAlgorithms: nil, supportedVersions: [])
        guard let extensionsLength = r.u16() else { return .hello(hello) }
        var ext = ByteReader(r.take(Int(extensionsLength)) ?? [])
        while let type = ext.u16(), let len = ext.u16(), let data = ext.take(Int(len)) {
            var d = ByteReader(data)
            switch type {
            case 13:  // signature_algorithms
                if let n = d.u16(), n % 2 == 0 { hello.signatureAlgorithms = d.u16s(Int(n) / 2) }
            case 43:  // supported_versions
                if let n = d.u8(), n % 2 == 0 { hello.supportedVersions = d.u16s(Int(n) / 2) ?? [] }
            default:
                break
            }
        }
        return .hello(hello)
    }
}

/// Big-endian reads over a byte array; every read checks its bounds.
struct ByteReader {
    private let bytes: [UInt8]
    private var i = 0

    init(_ bytes: some Collection<UInt8>) { self.bytes = Array(bytes) }

    mutating func u8() -> UInt8? {
        guard i < bytes.count else { return nil }
        defer { i += 1 }
        return bytes[i]
    }

    mutating func u16() -> UInt16? {
        guard i + 2 <= bytes.count else { return nil }
        defer { i += 2 }
        return UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])
    }

    mutating func u24() -> Int? {
        guard i + 3 <= bytes.count else { return nil }
        defer { i += 3 }
        return Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
    }

    mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, i + n <= bytes.count else { return false }
        i += n
        return true
    }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, i + n <= bytes.count else { return nil }
        defer { i += n }
        return Array(bytes[i..<(i + n)])
    }

    mutating func u16s(_ n: Int) -> [UInt16]? {
        var out: [UInt16] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            guard let v = u16() else { return nil }
            out.append(v)
        }
        return out
    }
}

/// Holds the first bytes of a TLS connection until its ClientHello is read, then
/// puts the TLS handler for the right certificate in its place and hands them on.
final class TLSCertificateSelector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let tls: ServerTLS
    private var buffered: ByteBuffer?

    init(tls: ServerTLS) {
        self.tls = tls
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil { buffered = incoming } else { buffered?.writeBuffer(&incoming) }
        guard let bytes = buffered else { return }
        let choice: NIOSSLContext
        switch ClientHelloSummary.read(bytes.readableBytesView) {
        case .needMore:
            // A record cannot be longer than this; past it, the TLS handler will refuse it.
            guard bytes.readableBytes >= ClientHelloSummary.maxRecord else { return }
            choice = tls.primary
        case .unreadable:
            choice = tls.primary
        case .hello(let hello):
            choice = tls.context(for: hello)
        }
        buffered = nil
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: choice), position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
