import Crypto
import CryptoExtras
import CertificateAuthority
import Delivery
import DirectCore
import DirectTrust
import Foundation
import HISPTesting
import Logging
import SQLiteStore
import SecurityAgent
import Storage
import Synchronization
import X509
@testable import HISPCommands
@testable import MailService

/// One HISP's mail core in process, over a real store with real keys (RSA-2048,
/// issued by the domain's own CA), without sockets: discovery reads the
/// store's certificates, trust is the domain's CA, and a transport that only
/// records what would leave (nothing should, for our own domains).
struct MailFixture {
    let dir: URL
    let store: HISPStore
    let mail: MailService
    let transport: RecordingTransport

    static func scratchDirectory() throws -> URL { try TestStores.scratchDirectory("hisp-mail") }

    static func store(in dir: URL) async throws -> HISPStore { try await TestStores.store(in: dir) }

    /// `domain` hosted with a mailbox for each of `users` (each password is the local part and " password").
    static func make(domain: String = "a.example", users: [String] = ["alice", "bob"], configuration: MailServiceConfiguration = MailServiceConfiguration(),
                     clock: any DirectCore.Clock = SystemClock(), remote: [DirectAddress] = [], transientFailures: Int = 0)
        async throws -> MailFixture
    {
        let dir = try scratchDirectory()
        let store = try await store(in: dir)
        let (ca, _, _) = try await Provisioning.addDomain(domain, published: DomainDNS(host: "hisp.\(domain)"), ca: nil, in: store)
        for u in users {
            _ = try await Provisioning.addAddress(DirectAddress("\(u)@\(domain)")!, passwordHash: try PasswordHash.make(u + " password"), in: store)
        }
        var anchors = TrustAnchors([TrustAnchor(certificate: ca.certificate, source: "test CA")])
        // Partners elsewhere: a CA of their own (an anchor here) and a certificate for each address.
        var partners: [String: Certificate] = [:]
        if !remote.isEmpty {
            let key = Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
            let now = Date()
            let partnerCA = try Issuer(certificate: try CertificateAuthority.createCA(
                subject: try DistinguishedName { CommonName("partner CA") }, key: key, notBefore: now - 300, notAfter: now + 86_400), key: key)
            anchors.add(TrustAnchor(certificate: partnerCA.certificate, source: "partner CA"), domain: TrustAnchors.everyDomain)
            for a in remote {
                let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
                partners[a.description] = try CertificateAuthority.issue(
                    binding: .address(a), publicKey: Certificate.PublicKey(rsa.publicKey), usage: .both, notBefore: now - 300,
                    notAfter: now + 86_400, issuer: partnerCA)
            }
        }
        let transport = RecordingTransport(transientFailures: transientFailures)
        let queue = DirectGateway(
            configuration: GatewayConfiguration(hostname: "hisp.\(domain)", retrySchedule: [.seconds(60)], pollInterval: .milliseconds(100),
                                                clock: clock),
            store: store, agent: SecurityAgent(keys: store), certificates: StoreCertificates(store: store, anchors: anchors, partners: partners),
            incomingTrust: FixedTrust(trust: DirectTrust(anchors: anchors)), transport: transport, logger: Logger(label: "test"))
        return MailFixture(dir: dir, store: store, mail: MailService(configuration: configuration, queue: queue), transport: transport)
    }

    /// Waits until `condition` holds (checked every 20 ms), failing after `seconds`.
    /// Waits for `condition` (a bound on waiting, not a timing: with the whole suite running on two cores a step can take long).
    func until(_ what: String, seconds: Double = 90, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try await !condition() {
            guard Date() < deadline else { throw FixtureTimeout(what: what) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func close() async {
        try? await store.close()
        try? FileManager.default.removeItem(at: dir)
    }
}

struct FixtureTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Discovery from the store: a hosted address's own certificate, judged by the test anchors.
struct StoreCertificates: RecipientCertificates {
    let store: HISPStore
    let anchors: TrustAnchors
    var partners: [String: Certificate] = [:]

    func certificates(for address: DirectAddress, localDomain: String) async -> (chosen: [Certificate], reason: String) {
        if let partner = partners[address.description] { return ([partner], "the partner's certificate") }
        guard let record = try? await store.address(address), let cert = try? Certificate(derEncoded: record.certificate) else {
            return ([], "no certificate for \(address) in this test")
        }
        return ([cert], "the store's certificate for \(address)")
    }
}

struct FixedTrust: IncomingTrust {
    let trust: DirectTrust
    func trust(localDomain: String) async -> DirectTrust { trust }
}

/// Records what the queue hands to SMTP, and accepts it (after the first `transientFailures` attempts, refused for now).
final class RecordingTransport: OutboundTransport {
    private let state: Mutex<(domains: [String], failures: Int)>
    var sentTo: [String] { state.withLock { $0.domains } }

    init(transientFailures: Int = 0) { state = Mutex(([], transientFailures)) }

    func send(domain: String, messages: [OutboundMessage]) async -> [[String: RecipientOutcome]] {
        let fail = state.withLock { s -> Bool in
            s.domains.append(domain)
            guard s.failures > 0 else { return false }
            s.failures -= 1
            return true
        }
        let outcome: RecipientOutcome = fail ? .transient(Refusal(.delivery, code: 451, enhanced: "4.3.2", "try later")) : .accepted
        return messages.map { Dictionary(uniqueKeysWithValues: $0.recipients.map { ($0, outcome) }) }
    }
}
