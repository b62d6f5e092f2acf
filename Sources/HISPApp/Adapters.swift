import CryptographicMessageSyntax
import DNSCore
import DNSResolver
import Delivery
import DirectCore
import DirectTrust
import Foundation
import LDAPClient
import Logging
import NIOSSL
import SMTPClient
import SMTPCore
import Storage
import SwiftASN1
import Synchronization
import X509

/// The trust anchors in the store and those of its trust bundle subscriptions,
/// as DirectTrust wants them. `run` rereads them every few seconds, so `hisp
/// anchor add` and `hisp bundle add` take effect without a restart; bundles are
/// fetched again on their own interval, keeping the last good set when a fetch
/// fails (Direct AS 1.2, trust anchors).
final class StoreAnchors: IncomingTrust, Sendable {
    let store: HISPStore
    let fetcher: (any HTTPFetching)?
    let logger: Logger
    private let cached = Mutex<DirectTrust?>(nil)
    private let bundles = Mutex<[String: (record: BundleRecord, subscription: TrustBundleSubscriptions)]>([:])
    /// CRLs and AIA issuers fetched, kept across rereads of the anchors.
    private let fetchCache = TrustFetchCache()
    static let refresh: Duration = .seconds(5)
    static let maxBundleBytes = 16 << 20

    init(store: HISPStore, fetcher: (any HTTPFetching)?, logger: Logger) {
        self.store = store
        self.fetcher = fetcher
        self.logger = logger
    }

    func current() async -> DirectTrust {
        if let trust = cached.withLock({ $0 }) { return trust }
        return await reload()
    }

    func trust(localDomain: String) async -> DirectTrust { await current() }

    /// Rereads until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.refresh)
            if Task.isCancelled { break }
            _ = await reload()
        }
    }

    @discardableResult
    func reload(now: Date = Date()) async -> DirectTrust {
        var anchors = TrustAnchors()
        do {
            for record in try await store.anchors() {
                guard let certificate = try? Certificate(derEncoded: record.certificate) else {
                    logger.warning("unreadable anchor", metadata: ["anchor": .string(record.id)])
                    continue
                }
                anchors.add(TrustAnchor(certificate: certificate, directions: record.direction.trustDirections,
                                        source: "anchor \(record.fingerprint.prefix(16))"), domain: record.domain)
            }
            for (record, anchorsOfBundle) in await bundleAnchors(try await store.bundles(), now: now) {
                for anchor in anchorsOfBundle { anchors.add(anchor, domain: record.domain) }
            }
        } catch {
            logger.error("reading anchors failed", metadata: ["error": .string("\(error)")])
            if let trust = cached.withLock({ $0 }) { return trust }
        }
        // Unchanged anchors keep the same DirectTrust and its kept verdicts.
        if let trust = cached.withLock({ $0 }), trust.anchors == anchors { return trust }
        let trust = DirectTrust(anchors: anchors, fetcher: fetcher, cache: fetchCache,
                                verdictLifetime: TrustVerdictCache.serverLifetime)
        cached.withLock { $0 = trust }
        return trust
    }

    /// The anchors each subscribed bundle contributes now (fetched when due).
    func bundleAnchors(_ records: [BundleRecord], now: Date) async -> [(BundleRecord, [TrustAnchor])] {
        let known = bundles.withLock { $0 }
        var current: [String: (record: BundleRecord, subscription: TrustBundleSubscriptions)] = [:]
        for record in records {
            if let existing = known[record.id] {
                current[record.id] = existing
                continue
            }
            var signers: [Certificate] = []
            if let pem = record.signersPEM {
                do {
                    signers = try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(derEncoded: $0.derBytes) }
                } catch {
                    logger.error("bundle signers unreadable", metadata: ["bundle": .string(record.source), "error": .string("\(error)")])
                    continue
                }
            }
            let source = TrustBundleSource(location: record.source, signingAnchors: signers, directions: record.direction.trustDirections,
                                           refreshInterval: .seconds(max(60, record.refreshSeconds)))
            let fetcher = self.fetcher
            current[record.id] = (record, TrustBundleSubscriptions([source], fetcher: fetcher) { location in
                try await Self.load(location, fetcher: fetcher)
            })
        }
        bundles.withLock { $0 = current }
        var out: [(BundleRecord, [TrustAnchor])] = []
        for (_, entry) in current.sorted(by: { $0.key < $1.key }) {
            for report in await entry.subscription.refreshDue(at: now) {
                if let error = report.error {
                    logger.warning("trust bundle refresh failed", metadata: ["bundle": .string(report.location), "error": .string(error)])
                } else {
                    logger.info("trust bundle loaded", metadata: ["bundle": .string(report.location), "anchors": .stringConvertible(report.anchorCount)])
                }
            }
            out.append((entry.record, await entry.subscription.anchors()))
        }
        return out
    }

    /// A bundle's bytes: https:// (or http:// for a signed bundle, checked by the reader) through the fetcher, else a file.
    static func load(_ location: String, fetcher: (any HTTPFetching)?) async throws -> [UInt8] {
        if location.hasPrefix("https://") || location.hasPrefix("http://") {
            guard let fetcher else { throw ConfigurationError("no HTTP client for \(location)") }
            return try await fetcher.get(location, maxBytes: maxBundleBytes, timeout: .seconds(30))
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: location),
              let size = attributes[.size] as? Int, size <= maxBundleBytes,
              let data = FileManager.default.contents(atPath: location)
        else { throw ConfigurationError("cannot read \(location) (missing, unreadable or over \(maxBundleBytes) bytes)") }
        return Array(data)
    }
}

extension AnchorDirection {
    /// The directions DirectTrust knows for a stored anchor or bundle.
    public var trustDirections: Set<TrustDirection> {
        switch self {
        case .incoming: [.incoming]
        case .outgoing: [.outgoing]
        case .both: [.incoming, .outgoing]
        }
    }
}

/// Certificate discovery (DNS CERT, then LDAP) judged by the store's outgoing anchors.
struct DiscoveredCertificates: RecipientCertificates {
    let resolver: DNSResolver
    let anchors: StoreAnchors
    let fetcher: (any HTTPFetching)?
    let ldapTimeout: Duration
    /// Shared with the security agent, which encrypts to the certificates found.
    let certificateCache: CertificateCache

    func certificates(for address: DirectAddress, localDomain: String) async -> (chosen: [Certificate], reason: String) {
        let discovery = CertificateDiscovery(
            dns: ResolverDiscoveryDNS(resolver: resolver), ldap: LDAPDiscoveryClient(timeout: ldapTimeout),
            trust: await anchors.current(), fetcher: fetcher, localDomain: localDomain, certificateCache: certificateCache)
        let result = await discovery.discover(address)
        guard result.chosen.isEmpty else {
            let trusted = result.candidates.filter { c in result.chosen.contains(c.certificate) }
            let anchors = Set(trusted.compactMap { $0.verdict.chain.last.map { "\($0.subject)" } }).sorted()
            let locations = Set(trusted.map(\.location)).sorted()
            return (result.chosen, "\(result.decidedBy ?? "discovery"): \(result.chosen.count) trusted certificate(s) at \(locations.joined(separator: ", "))"
                + (anchors.isEmpty ? "" : " under \(anchors.joined(separator: ", "))"))
        }
        if result.candidates.isEmpty {
            let errors = result.errors.isEmpty ? "" : " (\(result.errors.prefix(3).joined(separator: "; ")))"
            return ([], "no certificate published in DNS CERT or LDAP\(errors)")
        }
        let reasons = result.candidates.prefix(4).map { c in
            "\(c.source.name) \(c.location): \(c.verdict.reason ?? "not trusted")"
        }
        return ([], (result.decidedBy.map { "\($0): " } ?? "") + reasons.joined(separator: "; "))
    }
}

/// The router's DNS: MX and address records through the resolver.
struct ResolverMailExchangers: MailExchangerLookup {
    let resolver: DNSResolver

    func mailExchangers(of domain: String) async throws -> [(preference: UInt16, exchange: String)] {
        try await resolver.resolve(try DNSName(domain), .mx).records.compactMap { r in
            if case .mx(let preference, let exchange) = r.data { return (preference, exchange.description) }
            return nil
        }
    }

    func addresses(of host: String) async throws -> [String] {
        try await ResolverDiscoveryDNS(resolver: resolver).addresses(host)
    }
}

/// One host over SMTP: all messages of a share on one connection, kept open for
/// the next share to the same host (`pool`), with the TLS settings of the route or the default.
struct SMTPHostSender: HostSender {
    let defaultTLS: SMTPClientTLS
    let routeTLS: [String: SMTPClientTLS]
    let client: SMTPClientConfiguration
    let pool: SMTPConnectionPool
    let logger: Logger

    /// Some messages had their outcome when the session failed.
    struct SessionFailed: Error {
        let outcomes: [[String: RecipientOutcome]]
        let error: any Error
    }

    func send(_ messages: [OutboundMessage], to host: MailHost, domain: String, routed: Bool) async throws(HostFailure) -> [[String: RecipientOutcome]] {
        logger.info("connecting", metadata: ["domain": .string(domain), "host": .string(host.name), "address": .string("\(host.address):\(host.port)"),
                                             "messages": .stringConvertible(messages.count)])
        var config = client
        config.tls = routed ? routeTLS[domain] ?? defaultTLS : defaultTLS
        do {
            return try await pool.withConnection(address: host.address, port: host.port, serverName: host.name, configuration: config) { c in
                var outcomes: [[String: RecipientOutcome]] = []
                for m in messages {
                    do {
                        let result = try await c.send(from: m.from, to: m.recipients, message: m.message)
                        outcomes.append(Dictionary(m.recipients.map { r in
                            let reply = result.replies[r] ?? SMTPReply(451, "4.0.0", "no reply")
                            let refusal = Refusal.reply(reply, from: host.name)
                            return (r, reply.code < 300 ? .accepted : reply.isPermanent ? .permanent(refusal) : .transient(refusal))
                        }, uniquingKeysWith: { a, _ in a }))
                    } catch let e as SMTPClientError {
                        // A temporary refusal of MAIL concerns this message only.
                        guard case .refused(let reply, _) = e, !reply.isPermanent else { throw SessionFailed(outcomes: outcomes, error: e) }
                        outcomes.append(Dictionary(m.recipients.map { ($0, .transient(Refusal.reply(reply, from: host.name))) }, uniquingKeysWith: { a, _ in a }))
                    } catch {
                        throw SessionFailed(outcomes: outcomes, error: error)
                    }
                }
                return outcomes
            }
        } catch {
            // What was sent keeps its outcome; the connection is not reused.
            let failed = error as? SessionFailed
            let cause = failed?.error ?? error
            logger.notice("delivery attempt failed", metadata: ["domain": .string(domain), "host": .string(host.name), "error": .string("\(cause)")])
            let refusal: Refusal
            if case SMTPClientError.refused(let reply, _) = cause, reply.isPermanent {
                refusal = Refusal(.delivery, code: reply.code, enhanced: reply.enhanced ?? "5.0.0", "\(host.name): \(cause)")
            } else {
                refusal = Refusal(.delivery, code: 421, enhanced: "4.4.1", "\(cause)")
            }
            throw HostFailure(outcomes: failed?.outcomes ?? [], refusal: refusal)
        }
    }
}

extension SMTPClientTLS {
    static func from(verify: String?, trustRoots: String?, required: Bool?) throws -> SMTPClientTLS {
        let v = verify ?? "full"
        guard let verification = SMTPClientTLS.Verification(rawValue: v) else {
            throw ConfigurationError("tls_verify \(v): use full, no-hostname or none")
        }
        var roots: [NIOSSLCertificate]? = nil
        if let trustRoots {
            do { roots = try NIOSSLCertificate.fromPEMFile(trustRoots) } catch { throw ConfigurationError("trust_roots \(trustRoots): \(error)") }
        }
        return SMTPClientTLS(required: required ?? true, verification: verification, trustRoots: roots)
    }
}

extension Refusal {
    /// The next hop's reply to one recipient, with its own codes (RFC 3463; a reply without one gets the class's default).
    static func reply(_ reply: SMTPReply, from host: String) -> Refusal {
        Refusal(.delivery, code: reply.code, enhanced: reply.enhanced ?? (reply.isPermanent ? "5.0.0" : "4.0.0"), "\(host) said: \(reply)")
    }
}
