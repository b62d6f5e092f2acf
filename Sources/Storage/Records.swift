import DirectCore
import Foundation

/// Which messages an anchor or bundle is trusted for (Direct: anchors are per
/// local domain and per direction).
public enum AnchorDirection: String, Sendable, CaseIterable {
    case incoming, outgoing, both
}

/// A local (hosted) Direct domain. Its CA and domain-bound certificates are
/// public and kept in clear; their private keys are sealed.
public struct DomainRecord: Sendable {
    public let id: String
    public let name: String
    public let created: Date
    /// DER of the CA that issues this domain's certificates.
    public let caCertificate: [UInt8]
    /// DER of the domain-bound certificate (subjectAltName dNSName).
    public let certificate: [UInt8]
    /// How the domain is published in DNS.
    public let dns: DomainDNS
}

/// What the certificate DNS server publishes for a domain besides certificates:
/// the host that serves it (NS and MX target) and that host's addresses (glue).
public struct DomainDNS: Sendable, Equatable {
    public var host: String
    public var ipv4: String?
    public var ipv6: String?

    public init(host: String, ipv4: String? = nil, ipv6: String? = nil) {
        self.host = host
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}

/// A Direct address (mailbox) with its address-bound certificate.
public struct AddressRecord: Sendable {
    public let id: String
    public let address: DirectAddress
    public let domainID: String
    public let created: Date
    /// DER of the address-bound certificate.
    public let certificate: [UInt8]
    public let hasPassword: Bool
}

/// A trust anchor (a CA certificate) for a local domain, or for every domain ("*").
public struct AnchorRecord: Sendable {
    public let id: String
    public let domain: String
    public let direction: AnchorDirection
    /// Lowercase hex SHA-256 of the DER.
    public let fingerprint: String
    public let subject: String
    public let certificate: [UInt8]
    public let created: Date
}

/// A trust bundle subscription.
public struct BundleRecord: Sendable {
    public let id: String
    public let domain: String
    public let direction: AnchorDirection
    public let source: String
    public let refreshSeconds: Int
    /// PEM of the anchors a signed bundle's signer must chain to (nil: the bundle is unsigned).
    public let signersPEM: String?
    public let created: Date
}

/// Header facts about a message, kept sealed beside it.
public struct MessageMetadata: Sendable, Equatable {
    public var sender: String
    public var recipients: [String]
    public var subject: String
    public var messageID: String

    public init(sender: String, recipients: [String], subject: String, messageID: String) {
        self.sender = sender
        self.recipients = recipients
        self.subject = subject
        self.messageID = messageID
    }
}

/// A message in a mailbox, without its body.
public struct MessageSummary: Sendable {
    public let id: String
    public let mailbox: DirectAddress
    /// The folder's name (`INBOX`, `Sent`, a user folder).
    public let folder: String
    /// Its UID in the folder (RFC 9051 2.3.1.1).
    public let uid: UInt32
    public let flags: MessageFlags
    public let keywords: [String]
    /// RFC 7162: the sequence of its last change.
    public let modSeq: UInt64
    /// When it was stored (the IMAP internal date).
    public let received: Date
    public let size: Int
    public let metadata: MessageMetadata
}

/// Times in the store: RFC 3339 UTC with milliseconds (`2026-11-23T08:41:48.658Z`),
/// which sort as text.
enum Timestamp {
    static func text(_ date: Date) -> String { UTCTime.rfc3339(date, milliseconds: true) }

    /// Reads what `text` writes (the fraction optional); anything else is the epoch.
    static func date(_ text: String) -> Date { UTCTime.parseRFC3339(text) ?? Date(timeIntervalSince1970: 0) }
}
