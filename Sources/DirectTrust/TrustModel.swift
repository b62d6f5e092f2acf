import CryptographicMessageSyntax
import DirectCore
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which way a message travels relative to the local domain. Anchors are
/// configured per direction (Direct Applicability Statement 1.2, trust anchors): an incoming-only anchor must
/// not let us send.
public enum TrustDirection: String, Sendable, CaseIterable, Hashable {
    case incoming, outgoing
}

/// What the certificate is about to be used for (RFC 5280 4.2.1.3).
public enum TrustPurpose: String, Sendable, CaseIterable, Hashable {
    /// Verifying a signature: digitalSignature.
    case signing = "sign"
    /// Encrypting to it: keyEncipherment.
    case encryption = "encrypt"
}

public struct TrustAnchor: Sendable, Hashable {
    public let certificate: Certificate
    public let directions: Set<TrustDirection>
    /// Where it came from (a file, a bundle URL), for verdicts and audits.
    public let source: String

    public init(certificate: Certificate, directions: Set<TrustDirection> = Set(TrustDirection.allCases), source: String) {
        self.certificate = certificate
        self.directions = directions
        self.source = source
    }
}

/// Trust anchors per local domain. The domain `*` holds anchors that apply
/// to every local domain (what `hisp trust check --anchor` configures).
public struct TrustAnchors: Sendable, Equatable {
    public static let everyDomain = "*"
    public private(set) var byDomain: [String: [TrustAnchor]] = [:]

    public init() {}

    public init(_ anchors: [TrustAnchor], domain: String = TrustAnchors.everyDomain) {
        for a in anchors { add(a, domain: domain) }
    }

    public mutating func add(_ anchor: TrustAnchor, domain: String) {
        byDomain[domain.lowercased(), default: []].append(anchor)
    }

    /// The anchors that apply to `localDomain` in `direction`.
    public func anchors(localDomain: String, direction: TrustDirection) -> [TrustAnchor] {
        all(localDomain: localDomain).filter { $0.directions.contains(direction) }
    }

    public func all(localDomain: String) -> [TrustAnchor] {
        let own = byDomain[localDomain.lowercased()] ?? []
        return localDomain == Self.everyDomain ? own : own + (byDomain[Self.everyDomain] ?? [])
    }
}

/// What to do when a certificate names a CRL that cannot be fetched.
public enum RevocationUnreachable: String, Sendable, CaseIterable {
    /// Refuse the certificate (the default: Direct trust fails closed).
    case fail
    /// Accept it, saying so in the verdict.
    case accept
}

/// The knobs of the Direct trust policy.
public struct TrustPolicy: Sendable {
    public var algorithms: AlgorithmPolicy
    /// RFC 5280 6.1 / Direct AS 1.2: leaf + intermediates + anchor.
    public var maxChainLength: Int
    /// When not empty, the leaf must assert at least one of these policy OIDs
    /// (e.g. DirectTrust's 1.3.6.1.4.1.41179.*).
    public var requiredPolicies: [ASN1ObjectIdentifier]
    public var revocationUnreachable: RevocationUnreachable
    public var fetchTimeout: Duration
    /// Limits on what is fetched: an issuer certificate (or PKCS#7 of them), a CRL.
    public var maxCertificateFetchBytes: Int
    public var maxCRLFetchBytes: Int

    public init(
        algorithms: AlgorithmPolicy = .direct, maxChainLength: Int = 5, requiredPolicies: [ASN1ObjectIdentifier] = [],
        revocationUnreachable: RevocationUnreachable = .fail, fetchTimeout: Duration = .seconds(10),
        maxCertificateFetchBytes: Int = 1 << 20, maxCRLFetchBytes: Int = CertificateList.maxBytes
    ) {
        self.algorithms = algorithms
        self.maxChainLength = maxChainLength
        self.requiredPolicies = requiredPolicies
        self.revocationUnreachable = revocationUnreachable
        self.fetchTimeout = fetchTimeout
        self.maxCertificateFetchBytes = maxCertificateFetchBytes
        self.maxCRLFetchBytes = maxCRLFetchBytes
    }

    public static let direct = TrustPolicy()
}

/// One question: may `certificate` be used for `binding`, for `purpose`, by
/// `localDomain` in `direction`, at `time`?
public struct TrustRequest: Sendable {
    public var certificate: Certificate
    public var intermediates: [Certificate]
    /// The address or domain the certificate must be bound to (nil: not checked).
    public var binding: CertificateBinding?
    public var purpose: TrustPurpose
    public var direction: TrustDirection
    public var localDomain: String
    public var time: Date

    public init(
        certificate: Certificate, intermediates: [Certificate] = [], binding: CertificateBinding?, purpose: TrustPurpose,
        direction: TrustDirection, localDomain: String = TrustAnchors.everyDomain, time: Date = Date()
    ) {
        self.certificate = certificate
        self.intermediates = intermediates
        self.binding = binding
        self.purpose = purpose
        self.direction = direction
        self.localDomain = localDomain
        self.time = time
    }
}

/// One check of a verdict.
public struct TrustCheck: Sendable, Hashable {
    public enum Status: String, Sendable { case passed, failed, warning, skipped }
    public let name: String
    public let status: Status
    public let detail: String
    /// The chain certificate the check was about, when it is not the one evaluated.
    public let chainCertificate: Certificate?

    public init(_ name: String, _ status: Status, _ detail: String, chainCertificate: Certificate? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.chainCertificate = chainCertificate
    }

    func about(_ cert: Certificate) -> TrustCheck { TrustCheck(name, status, detail, chainCertificate: cert) }
}

/// The answer, with every check and, when refused, the first failure naming
/// the certificate (subject, serial, SAN) and the check.
public struct TrustVerdict: Sendable {
    public let certificate: Certificate
    public let checks: [TrustCheck]
    /// Leaf first, anchor last, when trusted.
    public let chain: [Certificate]

    public var isTrusted: Bool { !checks.contains { $0.status == .failed } && !chain.isEmpty }

    /// "<check> failed for <certificate>: <detail>", or nil when trusted.
    public var reason: String? {
        if let f = checks.first(where: { $0.status == .failed }) {
            if let other = f.chainCertificate {
                return "\(f.name) failed for chain certificate \(CertificateNaming.describe(other)) (above \(certificate.subject)): \(f.detail)"
            }
            return "\(f.name) failed for \(CertificateNaming.describe(certificate)): \(f.detail)"
        }
        return isTrusted ? nil : "no chain to a trust anchor for \(CertificateNaming.describe(certificate))"
    }
}

enum CertificateNaming {
    /// "subject CN=..., serial 0a:1b..., SAN email:a@b" (what operators need in a refusal).
    static func describe(_ cert: Certificate) -> String {
        var s = "subject \(cert.subject), serial \(serial(cert.serialNumber))"
        if let sans = try? cert.extensions.subjectAlternativeNames {
            let names = sans.compactMap { name -> String? in
                switch name {
                case .rfc822Name(let n): return "email:\(n)"
                case .dnsName(let n): return "DNS:\(n)"
                case .uniformResourceIdentifier(let n): return "URI:\(n)"
                default: return nil
                }
            }
            if !names.isEmpty { s += ", SAN \(names.joined(separator: " "))" }
        }
        return s
    }

    static func serial(_ serial: Certificate.SerialNumber) -> String {
        serial.bytes.map { String(format2: $0) }.joined(separator: ":")
    }
}

extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
