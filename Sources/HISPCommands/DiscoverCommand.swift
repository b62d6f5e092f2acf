import ArgumentParser
import Crypto
import DNSCore
import DNSResolver
import DirectCore
import DirectTrust
import Foundation
import HTTPFetch
import LDAPClient
import SwiftASN1
import X509

struct DiscoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discover",
        abstract: "Find a Direct address's certificates (DNS CERT, then LDAP) and say which can be used and why.",
        discussion: """
            Search order: DNS address-bound, DNS domain-bound, LDAP address-bound, LDAP domain-bound (LDAP servers \
            from SRV _ldap._tcp). The first step that returns any certificate decides. Every candidate goes through \
            the Direct trust policy for encrypting to the address. Exit 0 when a certificate was chosen, 1 when none, \
            2 for usage errors. Needs no data directory.
            """)

    @Argument(help: "The Direct address to discover.") var address: String
    @Option(help: "DNS server for every lookup (HOST:PORT; default: /etc/resolv.conf).") var dnsServer: [String] = []
    @Option(help: "Trust anchor (PEM or DER file; repeatable).") var anchor: [String] = []
    @Option(help: "Trust bundle file or URL (repeatable).") var bundle: [String] = []
    @Option(help: "Evaluate at this time (ISO 8601) instead of now.") var at: String?
    @Option(help: "Seconds to wait for each DNS or LDAP server.") var timeout: Int = 3
    @Flag(help: "Print one JSON document instead of text.") var json = false
    @Option(help: "Write the chosen certificates (PEM, end-entity only) here.") var out: String?

    func validate() throws {
        guard (1...60).contains(timeout) else { throw ValidationError("--timeout must be 1 to 60") }
    }

    func run() async throws {
        guard let target = DirectAddress(address) else { throw CLIFailure.usage("\(address) is not a Direct address (local@domain)") }
        var servers: [DNSServerAddress] = []
        for s in dnsServer {
            guard let server = DNSServerAddress(s) else { throw CLIFailure.usage("--dns-server \(s) is not IP:PORT") }
            servers.append(server)
        }
        if servers.isEmpty {
            let conf = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
            servers = ResolverConfiguration.nameservers(resolvConf: conf)
            guard !servers.isEmpty else { throw CLIFailure.usage("no nameserver in /etc/resolv.conf; give --dns-server") }
        }
        let time = try at.map { try CommandIO.parseDate($0) } ?? Date()
        let seconds = timeout
        let result = try await AsyncHTTPFetcher.withFetcher { fetcher in
            var anchors: [TrustAnchor] = []
            for path in anchor {
                anchors += try CommandIO.x509Certificates(path).map { TrustAnchor(certificate: $0, source: path) }
            }
            for location in bundle {
                anchors += try await CommandIO.bundle(TrustBundleSource(location: location), at: time, fetcher: fetcher).anchors
            }
            guard !anchors.isEmpty else { throw CLIFailure.usage("give at least one --anchor or --bundle to judge the certificates by") }
            let resolver = DNSResolver(configuration: ResolverConfiguration(servers: servers, timeout: .seconds(seconds)))
            let discovery = CertificateDiscovery(
                dns: ResolverDiscoveryDNS(resolver: resolver), ldap: LDAPDiscoveryClient(timeout: .seconds(seconds)),
                trust: DirectTrust(anchors: TrustAnchors(anchors), fetcher: fetcher), fetcher: fetcher)
            return await discovery.discover(target, at: time)
        }
        let report = DiscoveryReport(result)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
        } else {
            say(report.text(dns: servers.map(\.description).joined(separator: ", "), decidedBy: result.decidedBy))
        }
        guard !result.chosen.isEmpty else { throw CLIFailure(message: "no usable certificate for \(target)", exitCode: 1) }
        if let out {
            let pem = try result.chosen.map { StoredPKI.pem(try StoredPKI.der($0)) }.joined()
            try CommandIO.writeOutput(Array(pem.utf8), to: out)
            if !json { say("wrote \(result.chosen.count) certificate(s) to \(out)") }
        }
    }
}

/// What `hisp discover` prints, as text or JSON.
struct DiscoveryReport: Encodable {
    struct Candidate: Encodable {
        let source: String
        let server: String?
        let location: String
        let subject: String
        let san: [String]
        let serial: String
        let sha256: String
        let notAfter: String
        let verdict: String
        let reason: String?

        // `server` and `reason` are always present (null when they do not apply), so scripts can rely on them.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(source, forKey: .source)
            try c.encode(server, forKey: .server)
            try c.encode(location, forKey: .location)
            try c.encode(subject, forKey: .subject)
            try c.encode(san, forKey: .san)
            try c.encode(serial, forKey: .serial)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(notAfter, forKey: .notAfter)
            try c.encode(verdict, forKey: .verdict)
            try c.encode(reason, forKey: .reason)
        }

        enum CodingKeys: String, CodingKey { case source, server, location, subject, san, serial, sha256, notAfter, verdict, reason }
    }

    let address: String
    let candidates: [Candidate]
    let chosen: [String]
    let errors: [String]

    init(_ r: DiscoveryResult) {
        address = r.address.description
        candidates = r.candidates.map { c in
            let der = (try? StoredPKI.der(c.certificate)) ?? []
            let sans = ((try? c.certificate.extensions.subjectAlternativeNames).map(Array.init) ?? []).compactMap { n -> String? in
                if case .rfc822Name(let e) = n { return "email:\(e)" }
                if case .dnsName(let d) = n { return "DNS:\(d)" }
                return nil
            }
            var server: String?
            if case .ldap(let s) = c.source { server = s }
            return Candidate(
                source: c.source.name, server: server, location: c.location, subject: "\(c.certificate.subject)", san: sans,
                serial: CommandIO.serialText(c.certificate.serialNumber), sha256: StoredPKI.fingerprint(der),
                notAfter: CommandIO.day(c.certificate.notValidAfter), verdict: c.verdict.isTrusted ? "trusted" : "not trusted",
                reason: c.verdict.isTrusted ? nil : c.verdict.reason)
        }
        chosen = r.chosen.map { StoredPKI.fingerprint((try? StoredPKI.der($0)) ?? []) }
        errors = r.errors
    }

    func text(dns: String, decidedBy: String?) -> String {
        var lines = ["discovering certificates for \(address) (DNS \(dns))"]
        for (i, c) in candidates.enumerated() {
            lines.append("candidate \(i + 1): \(c.source) \(c.location)")
            lines.append("  subject \(c.subject), SAN \(c.san.joined(separator: " ")), serial \(c.serial), valid to \(c.notAfter)")
            lines.append("  sha256 \(c.sha256)")
            lines.append("  verdict: \(c.verdict)\(c.reason.map { ": \($0)" } ?? "")")
        }
        if candidates.isEmpty { lines.append("no certificate found in DNS or LDAP") }
        for e in errors { lines.append("lookup failed: \(e)") }
        if chosen.isEmpty {
            lines.append(decidedBy.map { "chosen: none; \($0) returned certificates and none is valid, so later steps are not tried" }
                         ?? "chosen: none")
        } else {
            lines.append("chosen (\(decidedBy ?? "")): " + chosen.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
