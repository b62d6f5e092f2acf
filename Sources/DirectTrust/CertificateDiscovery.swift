import CryptographicMessageSyntax
import DirectCore
import Foundation
import SwiftASN1
import X509

/// What discovery needs from DNS (a resolver adapter implements it).
public protocol DiscoveryDNS: Sendable {
    /// CERT records at `name` as (certificate type, data); empty when the name has none.
    func certRecords(_ name: String) async throws -> [(type: UInt16, data: [UInt8])]
    /// SRV records at `name`; empty when there are none.
    func srvRecords(_ name: String) async throws -> [DiscoverySRV]
    /// The IP addresses of a host (A, then AAAA).
    func addresses(_ host: String) async throws -> [String]
}

public struct DiscoverySRV: Sendable, Hashable {
    public var priority: UInt16
    public var weight: UInt16
    public var port: UInt16
    public var target: String

    public init(priority: UInt16, weight: UInt16, port: UInt16, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

/// What discovery needs from an LDAP server (the LDAP client implements it).
public protocol DiscoveryLDAP: Sendable {
    /// Binds anonymously to host:port, reads the root DSE's namingContexts and
    /// searches each for `(mail=value)`, returning the certificate attribute
    /// values found. Throws when the server cannot be reached or answers with
    /// an error (then the next server is tried).
    func certificates(host: String, port: Int, mail: String) async throws -> [LDAPCertificateValue]
}

public struct LDAPCertificateValue: Sendable {
    /// The entry's DN.
    public var dn: String
    /// `userCertificate;binary`, `userCertificate` or `userSMIMECertificate`.
    public var attribute: String
    public var value: [UInt8]

    public init(dn: String, attribute: String, value: [UInt8]) {
        self.dn = dn
        self.attribute = attribute
        self.value = value
    }
}

/// Where a candidate came from.
public enum DiscoverySource: Sendable, Hashable {
    case dnsCERT
    case ldap(server: String)

    public var name: String {
        switch self {
        case .dnsCERT: return "dns-cert"
        case .ldap: return "ldap"
        }
    }
}

/// One certificate found, and what the Direct trust policy said of it.
public struct DiscoveryCandidate: Sendable {
    public let source: DiscoverySource
    /// The DNS name, or `ldap://host:port/dn (attribute)`.
    public let location: String
    public let certificate: Certificate
    public let verdict: TrustVerdict
}

public struct DiscoveryResult: Sendable {
    public let address: DirectAddress
    public let candidates: [DiscoveryCandidate]
    /// The valid certificates of the step that decided (DCDT: do not fall through when none is valid).
    public let chosen: [Certificate]
    /// The step that decided, if any returned certificates.
    public let decidedBy: String?
    /// Lookups that failed (a dead LDAP server, a timeout), in order.
    public let errors: [String]
}

/// Direct certificate discovery (Direct AS 1.2 5.3, RFC 4398; the ONC DCDT cases): DNS CERT
/// address-bound, DNS CERT domain-bound, LDAP address-bound, LDAP
/// domain-bound. The first step that returns any certificate decides: its
/// valid certificates are chosen, and when none is valid, later steps are not
/// tried (DCDT D5, D7).
public struct CertificateDiscovery: Sendable {
    public let dns: any DiscoveryDNS
    public let ldap: (any DiscoveryLDAP)?
    public let trust: DirectTrust
    public let fetcher: (any HTTPFetching)?
    /// The local domain whose outgoing anchors apply.
    public let localDomain: String
    /// Certificates parsed once by their DER bytes: the same recipient's
    /// certificate comes back from DNS for every message sent to it.
    public let certificateCache: CertificateCache?

    public static let maxCandidatesPerStep = 32
    public static let maxLDAPServers = 8

    public init(dns: any DiscoveryDNS, ldap: (any DiscoveryLDAP)?, trust: DirectTrust, fetcher: (any HTTPFetching)?,
                localDomain: String = TrustAnchors.everyDomain, certificateCache: CertificateCache? = nil) {
        self.dns = dns
        self.ldap = ldap
        self.trust = trust
        self.fetcher = fetcher
        self.localDomain = localDomain
        self.certificateCache = certificateCache
    }

    public func discover(_ address: DirectAddress, at time: Date = Date()) async -> DiscoveryResult {
        var candidates: [DiscoveryCandidate] = []
        var errors: [String] = []

        func decide(_ step: String, _ found: [DiscoveryCandidate]) -> DiscoveryResult? {
            guard !found.isEmpty else { return nil }
            candidates += found
            let chosen = found.filter { $0.verdict.isTrusted }.map(\.certificate)
            return DiscoveryResult(address: address, candidates: candidates, chosen: chosen, decidedBy: step, errors: errors)
        }

        // 1, 2: DNS CERT at local-part.domain, then at the domain (RFC 4398 3.3; the local part is one label).
        let addressName = Self.escapedLabel(address.localPart) + "." + address.domain
        for (step, name) in [("dns address-bound", addressName), ("dns domain-bound", address.domain)] {
            do {
                let records = try await dns.certRecords(name)
                let found = await evaluate(await certificates(fromCERT: records, at: name, errors: &errors), source: .dnsCERT,
                                           address: address, at: time)
                if let result = decide(step, found) { return result }
            } catch {
                errors.append("DNS CERT \(name): \(error)")
            }
        }

        // 3, 4: LDAP through SRV _ldap._tcp.domain; the first server that answers is used for both searches.
        guard let ldap else { return DiscoveryResult(address: address, candidates: candidates, chosen: [], decidedBy: nil, errors: errors) }
        let srvName = "_ldap._tcp." + address.domain
        var servers: [DiscoverySRV] = []
        do {
            servers = try await dns.srvRecords(srvName)
        } catch {
            errors.append("DNS SRV \(srvName): \(error)")
        }
        for server in Self.order(servers).prefix(Self.maxLDAPServers) {
            let label = "\(server.target):\(server.port)"
            let hosts: [String]
            do {
                hosts = try await dns.addresses(server.target)
                guard !hosts.isEmpty else {
                    errors.append("LDAP \(label): the host has no address")
                    continue
                }
            } catch {
                errors.append("LDAP \(label): looking up its address: \(error)")
                continue
            }
            var answered = false
            for host in hosts {
                do {
                    let byAddress = try await ldap.certificates(host: host, port: Int(server.port), mail: address.description)
                    answered = true
                    let found = await evaluate(
                        certificates(fromLDAP: byAddress, server: label, errors: &errors), source: .ldap(server: label), address: address, at: time)
                    if let result = decide("ldap address-bound", found) { return result }
                    let byDomain = try await ldap.certificates(host: host, port: Int(server.port), mail: address.domain)
                    let domainFound = await evaluate(
                        certificates(fromLDAP: byDomain, server: label, errors: &errors), source: .ldap(server: label), address: address, at: time)
                    if let result = decide("ldap domain-bound", domainFound) { return result }
                    break
                } catch {
                    errors.append("LDAP \(label) (\(host)): \(error)")
                    if answered { break }
                }
            }
            // Never merge answers from several servers: the first that answered decides, even with nothing.
            if answered { break }
        }
        return DiscoveryResult(address: address, candidates: candidates, chosen: [], decidedBy: nil, errors: errors)
    }

    /// RFC 2782: lowest priority first; among equal priorities, higher weight first
    /// (deterministic, as DCDT D16 expects), then by name for a stable order.
    public static func order(_ servers: [DiscoverySRV]) -> [DiscoverySRV] {
        servers.filter { $0.target != "." && !$0.target.isEmpty }.sorted {
            ($0.priority, UInt16.max - $0.weight, $0.target) < ($1.priority, UInt16.max - $1.weight, $1.target)
        }
    }

    /// A local part as one DNS label in presentation form (dots and backslashes escaped).
    static func escapedLabel(_ local: String) -> String {
        local.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ".", with: "\\.")
    }

    typealias Found = (certificate: Certificate, location: String)

    func parse(_ der: [UInt8]) throws -> Certificate {
        try certificateCache?.certificate(der) ?? Certificate(derEncoded: der)
    }

    /// CERT data: PKIX (a DER certificate), IPKIX (a URL to one), and the Java RI's 253 (read as either).
    func certificates(fromCERT records: [(type: UInt16, data: [UInt8])], at name: String, errors: inout [String]) async -> [Found] {
        var out: [Found] = []
        for (type, data) in records.prefix(Self.maxCandidatesPerStep) {
            switch type {
            case 1, 253:
                if let cert = try? parse(data) {
                    out.append((cert, "\(name) CERT \(type == 1 ? "PKIX" : "253")"))
                    continue
                }
                if type == 253, let url = String(bytes: data, encoding: .utf8), url.hasPrefix("http") {
                    if let cert = await fetch(url, errors: &errors) { out.append((cert, "\(name) CERT 253 \(url)")) }
                    continue
                }
                errors.append("DNS CERT \(name): a type \(type) record does not hold a certificate")
            case 4:
                // RFC 4398 2.1 IPKIX: the URL of a certificate.
                guard let url = String(bytes: data, encoding: .utf8) else {
                    errors.append("DNS CERT \(name): an IPKIX record whose URL is not text")
                    continue
                }
                if let cert = await fetch(url, errors: &errors) { out.append((cert, "\(name) CERT IPKIX \(url)")) }
            default:
                errors.append("DNS CERT \(name): certificate type \(type) is not read")
            }
        }
        return out
    }

    func fetch(_ url: String, errors: inout [String]) async -> Certificate? {
        guard let fetcher else {
            errors.append("\(url): fetching is off")
            return nil
        }
        do {
            let bytes = try await fetcher.get(url, maxBytes: trust.policy.maxCertificateFetchBytes, timeout: trust.policy.fetchTimeout)
            if let cert = try? parse(bytes) { return cert }
            if let text = String(bytes: bytes, encoding: .utf8), let cert = try? Certificate(pemEncoded: text) { return cert }
            errors.append("\(url): not a certificate")
        } catch {
            errors.append("\(url): \(error)")
        }
        return nil
    }

    /// LDAP values: a DER certificate, or for userSMIMECertificate a PKCS#7 certs-only bundle.
    func certificates(fromLDAP values: [LDAPCertificateValue], server: String, errors: inout [String]) -> [Found] {
        var out: [Found] = []
        for v in values.prefix(Self.maxCandidatesPerStep) {
            let location = "ldap://\(server)/\(v.dn) (\(v.attribute))"
            if let cert = try? parse(v.value) {
                out.append((cert, location))
            } else if let certs = try? CertificateBundle.read(v.value), !certs.isEmpty {
                out += certs.map { ($0, location) }
            } else {
                errors.append("\(location): not a certificate")
            }
        }
        return out
    }

    func evaluate(_ found: [Found], source: DiscoverySource, address: DirectAddress, at time: Date) async -> [DiscoveryCandidate] {
        var out: [DiscoveryCandidate] = []
        for f in found {
            // Encrypting to the recipient: bound to its address or domain, key usage for encryption, outgoing anchors.
            let verdict = await trust.evaluate(TrustRequest(
                certificate: f.certificate, binding: .address(address), purpose: .encryption, direction: .outgoing,
                localDomain: localDomain, time: time))
            out.append(DiscoveryCandidate(source: source, location: f.location, certificate: f.certificate, verdict: verdict))
        }
        return out
    }
}
