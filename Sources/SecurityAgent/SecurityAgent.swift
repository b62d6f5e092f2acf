import CryptographicMessageSyntax
import DirectCore
import DirectTrust
import InternetMessage
import SMIME
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A security or trust failure of a message, naming the check that failed.
public struct AgentError: DirectError, Equatable {
    public let check: MailCheck
    public let detail: String
    public let kind: FailureKind

    public init(_ check: MailCheck, _ detail: String, kind: FailureKind = .security) {
        self.check = check
        self.detail = detail
        self.kind = kind
    }

    public var description: String { "\(check.rawValue) failed: \(detail)" }
    public var peerSafeText: String { description }
    /// The refusal a peer or user is told of.
    public var refusal: Refusal { .security(check, detail) }
}

/// The Direct security and trust agent (Direct Applicability Statement 1.2):
/// outgoing, wrap + sign with the sender's key + encrypt to each trusted
/// recipient certificate; incoming, decrypt with a local key + verify over
/// the exact bytes + check the signer's trust for the local domain and its
/// binding to the sender. No sockets, no database: keys and trust come in.
public struct SecurityAgent: Sendable {
    public let keys: any KeyStore
    public let smime: SMIME
    public var digest: DigestAlgorithm
    public var cipher: ContentEncryption
    public var keyTransport: KeyTransport
    /// Who performs private-key operations (docs/keys.md).
    public let provider: any KeyProvider
    /// Parsed keys, kept briefly: reading, unsealing and parsing an RSA key
    /// (with its Montgomery set-up) costs more than the signature it makes.
    let identities: IdentityCache

    public init(keys: any KeyStore, provider: any KeyProvider = BuiltinKeyProvider(), smime: SMIME = SMIME(), digest: DigestAlgorithm = .sha256,
                cipher: ContentEncryption = .aes256CBC, keyTransport: KeyTransport = .rsaOAEPSHA256,
                keyCacheSeconds: Double = 60) {
        self.keys = keys
        self.provider = provider
        self.identities = IdentityCache(seconds: keyCacheSeconds)
        self.smime = smime
        self.digest = digest
        self.cipher = cipher
        self.keyTransport = keyTransport
    }

    /// The key that signs for `address`: its own, else its domain's (Direct AS 1.2 4.0).
    func signingIdentity(_ address: DirectAddress) async throws -> SMIMEIdentity {
        var failures: [String] = []
        for owner in [KeyOwner.address(address), .domain(address.domain)] {
            do {
                return try await identity(owner)
            } catch {
                failures.append("\(owner): \(error)")
            }
        }
        throw AgentError(.noKey, "no signing key for \(address) (\(failures.joined(separator: "; ")))")
    }

    /// The key and certificate of `owner`, from the cache or the key store.
    func identity(_ owner: KeyOwner) async throws -> SMIMEIdentity {
        if let cached = identities.get(owner) { return cached }
        let c = try await keys.credential(for: owner)
        let identity = try SMIMEIdentity(certificate: try CertificateSummary(der: c.certificate), key: try provider.handle(pkcs8: c.privateKeyPKCS8))
        identities.put(owner, identity)
        return identity
    }

    // MARK: outgoing

    /// Wraps and signs `message` as `sender`, then encrypts it to every certificate in `recipients`.
    public func processOutgoing(_ message: [UInt8], sender: DirectAddress, recipients: [Certificate], at time: Date = Date()) async throws -> [UInt8] {
        guard !recipients.isEmpty else { throw AgentError(.trust, "no trusted recipient certificate") }
        let identity = try await signingIdentity(sender)
        // Direct AS 1.2 5.3 / RFC 5751 3.1: the whole message is wrapped, then signed, then encrypted.
        let summaries = try recipients.map { try smime.certificateCache.summary(try Self.der($0)) }
        return try smime.signAndEncrypt(message, identity: identity, to: summaries, digest: digest, cipher: cipher,
                                        keyTransport: keyTransport, wrap: true, signingTime: time)
    }

    static func der(_ c: Certificate) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(c)
        return s.serializedBytes
    }

    // MARK: incoming

    public struct Incoming: Sendable {
        /// The original message (unwrapped when it was wrapped), as the sender signed it.
        public let message: [UInt8]
        public let entity: MIMEEntity
        /// The From address the signer is bound to.
        public let sender: DirectAddress
        public let signer: Certificate
        /// An MDN or DSN answering an earlier message.
        public let notification: Notification?
        /// The sender asked for dispatched/failed MDNs (timely and reliable).
        public let wantsFinalDeliveryNotice: Bool
        /// The key that decrypted it.
        public let decryptedBy: KeyOwner
        /// What the signature's checks found, for an Authentication-Results header (RFC 7281).
        public let evidence: SignatureEvidence
    }

    /// The facts behind a verified signature, as text: the signer certificate's
    /// issuer and serial, the anchor its chain ended at, and the local domain
    /// whose anchors were used.
    public struct SignatureEvidence: Sendable, Equatable {
        public let issuer: String
        /// Hexadecimal.
        public let serial: String
        public let anchor: String
        public let localDomain: String

        public init(issuer: String, serial: String, anchor: String, localDomain: String) {
            self.issuer = issuer
            self.serial = serial
            self.anchor = anchor
            self.localDomain = localDomain
        }
    }

    /// Decrypts with a key of one of `recipients` (their own, else their
    /// domain's), verifies the signature, checks trust for the recipient's
    /// domain (`trust` gives the anchors of a local domain) and that the signer
    /// is bound to the From address.
    public func processIncoming(
        _ bytes: [UInt8], recipients: [DirectAddress], trust: @Sendable (String) async -> DirectTrust, at time: Date = Date()
    ) async throws -> Incoming {
        let outer: MIMEEntity
        do {
            outer = try MIMEEntity(parsing: LineEndings.canonicalize(bytes), limits: smime.limits)
        } catch {
            throw AgentError(.format, "not a MIME message: \(error)", kind: .malformedInput)
        }
        try Self.requireSingleOccurrenceFields(outer.headers, of: "the message")
        let ct = outer.contentType
        let isEncrypted = ct.mimeType == "application/pkcs7-mime" || ct.mimeType == "application/x-pkcs7-mime"
            || (ct.mimeType == "application/octet-stream" && (ct[parameter: "name"]?.lowercased().hasSuffix(".p7m") ?? false))
        // Direct AS 1.2 5.1: every message is encrypted; a plain or signed-only one is refused.
        guard isEncrypted, ct[parameter: "smime-type"]?.lowercased() != "signed-data" else {
            throw AgentError(.notEncrypted, "the message is \(ct.mimeType), not S/MIME enveloped-data")
        }

        var owners: [KeyOwner] = []
        for r in recipients {
            for o in [KeyOwner.address(r), .domain(r.domain)] where !owners.contains(o) { owners.append(o) }
        }
        var decrypted: [UInt8]? = nil
        var decryptedBy: KeyOwner? = nil
        var localDomain = recipients.first?.domain ?? ""
        var failures: [String] = []
        for owner in owners {
            let identity: SMIMEIdentity
            do {
                identity = try await self.identity(owner)
            } catch {
                continue
            }
            do {
                decrypted = try smime.decrypt(outer.source, identity: identity).entity
                decryptedBy = owner
                if case .address(let a) = owner { localDomain = a.domain } else if case .domain(let d) = owner { localDomain = d }
                break
            } catch let e as DirectError where e.kind == .security || e.kind == .malformedInput || e.kind == .unsupported {
                failures.append("\(owner): \(e)")
            } catch {
                failures.append("\(owner): \(error)")
            }
        }
        guard let decrypted, let decryptedBy else {
            throw AgentError(.decryption, failures.first.map { "no local key opens it (\($0))" } ?? "no local key for \(recipients.map(\.description).joined(separator: ", "))")
        }

        let domainTrust = await trust(localDomain)
        let verified: SMIME.Verified
        do {
            verified = try await smime.verify(decrypted, trust: SignerTrust(trust: domainTrust, localDomain: localDomain, time: time))
        } catch let e as SMIMEError {
            if case .untrustedSigner(let reason) = e { throw AgentError(.trust, reason) }
            throw AgentError(.signature, "\(e)")
        } catch {
            throw AgentError(.signature, "\(error)")
        }
        guard let signer = verified.chain.first else { throw AgentError(.trust, "no trusted signer") }

        let inner: MIMEEntity
        do {
            inner = try MIMEEntity(parsing: verified.content, limits: smime.limits)
        } catch {
            throw AgentError(.format, "the signed content is not a message: \(error)", kind: .malformedInput)
        }
        try Self.requireSingleOccurrenceFields(inner.headers, of: "the signed message")
        // Direct AS 1.2 4.0 / RFC 8551 3.1: the signer must be bound to the sender (From).
        guard let fromText = inner.headers["From"].flatMap({ AddressList.single($0) }), let from = DirectAddress(fromText) else {
            throw AgentError(.senderBinding, "the message has no single From address")
        }
        let binding = DirectTrust.bindingCheck(signer, .address(from))
        guard binding.status == .passed else { throw AgentError(.senderBinding, "From \(from): \(binding.detail)") }
        if verified.wasWrapped, let outerFrom = outer.headers["From"].flatMap({ AddressList.single($0) }),
           outerFrom.lowercased() != fromText.lowercased() {
            throw AgentError(.senderBinding, "the outer From \(outerFrom) differs from the signed From \(fromText)")
        }
        let evidence = SignatureEvidence(
            issuer: signer.issuer.description, serial: signer.serialNumber.bytes.map { String(format: "%02x", $0) }.joined(),
            anchor: verified.chain.last?.subject.description ?? "", localDomain: localDomain)
        return Incoming(
            message: verified.content, entity: inner, sender: from, signer: signer, notification: Notifications.parse(inner),
            wantsFinalDeliveryNotice: Notifications.requestsFinalDestinationDelivery(inner.headers), decryptedBy: decryptedBy,
            evidence: evidence)
    }
}

extension SecurityAgent {
    /// RFC 5322 3.6: a second From, To, Subject, ... is refused before any check reads the first.
    public static func requireSingleOccurrenceFields(_ headers: HeaderFields, of what: String) throws {
        if let name = headers.repeatedSingleOccurrenceField {
            throw AgentError(.format, "\(what) has more than one \(name) header field (RFC 5322 3.6)", kind: .malformedInput)
        }
    }
}

/// Parsed identities by owner for a short time (a removed or replaced key is
/// dropped within `seconds`); bounded so a flood of owners cannot grow it.
final class IdentityCache: Sendable {
    private let entries: BoundedCache<KeyOwner, (identity: SMIMEIdentity, until: ContinuousClock.Instant)>
    private let seconds: Double
    static let maxEntries = 1024

    init(seconds: Double) {
        self.seconds = seconds
        entries = BoundedCache(capacity: seconds > 0 ? Self.maxEntries : 0)
    }

    func get(_ owner: KeyOwner) -> SMIMEIdentity? {
        guard let e = entries.value(owner) else { return nil }
        guard e.until > .now else {
            entries.set(owner, nil)
            return nil
        }
        return e.identity
    }

    func put(_ owner: KeyOwner, _ identity: SMIMEIdentity) {
        entries.set(owner, (identity, ContinuousClock.now + .milliseconds(Int64(seconds * 1000))))
    }
}
