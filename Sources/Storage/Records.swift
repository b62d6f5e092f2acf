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
    public let folder: String
    public let state: String
    public let received: Date
    public let size: Int
    public let metadata: MessageMetadata
}

/// Times in the store: RFC 3339 UTC with milliseconds (`2026-11-23T08:41:48.658Z`),
/// which sort as text. Written and read by hand: a formatter per call cost a
/// fifth of the gateway's CPU.
enum Timestamp {
    static func text(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = time_t(t.rounded(.down))
        var millis = Int(((t - Double(seconds)) * 1000).rounded())
        if millis >= 1000 { seconds += 1; millis -= 1000 }
        var tm = tm()
        gmtime_r(&seconds, &tm)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    /// Reads what `text` writes (the fraction optional); anything else is the epoch.
    static func date(_ text: String) -> Date {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for c in b[from..<(from + count)] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                n = n * 10 + Int(c - 0x30)
            }
            return n
        }
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b.last == 0x5A,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return Date(timeIntervalSince1970: 0) }
        var fraction = 0.0
        if b.count > 20 {
            guard b[19] == 0x2E, b.count - 21 <= 9, let f = number(20, b.count - 21) else { return Date(timeIntervalSince1970: 0) }
            fraction = Double(f) / pow(10, Double(b.count - 21))
        }
        var tm = tm()
        tm.tm_year = Int32(year - 1900)
        tm.tm_mon = Int32(month - 1)
        tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(hour)
        tm.tm_min = Int32(minute)
        tm.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: Double(timegm(&tm)) + fraction)
    }
}
