import Crypto
import DirectCore
import DirectTrust
import Foundation
import HISPTesting
import SQLiteStore
import SecurityAgent
import Storage
import Synchronization
import Testing
import X509
@testable import Delivery
import MailService

/// A transport whose first `held` sends wait until `open()`: connections that stay busy.
final class HeldTransport: OutboundTransport {
    private struct State {
        var held: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
        var sent: [String] = []
    }
    private let state: Mutex<State>

    init(held: Int) { state = Mutex(State(held: held)) }

    func send(domain: String, messages: [OutboundMessage]) async -> [[String: RecipientOutcome]] {
        let hold = state.withLock { s -> Bool in
            guard s.held > 0 else { return false }
            s.held -= 1
            return true
        }
        if hold {
            await withCheckedContinuation { c in state.withLock { $0.waiting.append(c) } }
        }
        state.withLock { $0.sent += messages.map { String(decoding: $0.message, as: UTF8.self) } }
        return messages.map { Dictionary(uniqueKeysWithValues: $0.recipients.map { ($0, RecipientOutcome.accepted) }) }
    }

    var busy: Int { state.withLock { $0.waiting.count } }
    var sent: [String] { state.withLock { $0.sent } }
    func open() { for c in state.withLock({ s -> [CheckedContinuation<Void, Never>] in defer { s.waiting = [] }; return s.waiting }) { c.resume() } }
}

struct NoCertificates: RecipientCertificates {
    func certificates(for address: DirectAddress, localDomain: String) async -> (chosen: [Certificate], reason: String) { ([], "none in this test") }
}

/// A partner whose DNS does not answer yet: every lookup waits until `answer()`,
/// then finds no certificate.
final class UnansweredCertificates: RecipientCertificates {
    private struct State {
        var answered = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var lookups = 0
    }
    private let state = Mutex(State())

    func certificates(for address: DirectAddress, localDomain: String) async -> (chosen: [Certificate], reason: String) {
        await withCheckedContinuation { c in
            let now = state.withLock { s -> Bool in
                s.lookups += 1
                if !s.answered { s.waiting.append(c) }
                return s.answered
            }
            if now { c.resume() }
        }
        return ([], "no CERT record for \(address)")
    }

    var lookups: Int { state.withLock { $0.lookups } }
    func answer() {
        for c in state.withLock({ s -> [CheckedContinuation<Void, Never>] in s.answered = true; defer { s.waiting = [] }; return s.waiting }) { c.resume() }
    }
}

struct NoTrust: IncomingTrust {
    func trust(localDomain: String) async -> DirectTrust { DirectTrust(anchors: TrustAnchors([])) }
}

/// The delivery loop in-process, over a real store and a transport that holds
/// its connections open.
@Suite struct GatewayDeliveryTests {
    static func scratchDirectory() throws -> URL { try TestStores.scratchDirectory("hisp-gateway") }

    static func store(in dir: URL) async throws -> HISPStore { try await TestStores.store(in: dir) }

    /// A submission to a partner whose DNS does not answer is acknowledged once it
    /// is durable, without waiting out the lookups; the queue finishes discovery and
    /// reports the failure to the sender.
    @Test(.timeLimit(.minutes(2))) func aSubmissionIsNotHeldBySlowDiscovery() async throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await Self.store(in: dir)
        _ = try await store.addDomain("a.example", caCertificate: [1], caPrivateKey: [2], certificate: [3], privateKey: [4],
                                      dns: DomainDNS(host: "hisp.a.example", ipv4: "192.0.2.1"))
        let alice = try #require(DirectAddress("alice@a.example"))
        _ = try await store.addAddress(alice, certificate: [5], privateKey: [6], passwordHash: nil)
        let partner = UnansweredCertificates()
        let gateway = DirectGateway(
            configuration: GatewayConfiguration(hostname: "hisp.a.example", pollInterval: .seconds(3600),
                                                sessionDiscoveryLimit: .milliseconds(50)),
            store: store, agent: SecurityAgent(keys: store), certificates: partner, incomingTrust: NoTrust(),
            transport: HeldTransport(held: 0), logger: .init(label: "test"))
        let running = Task { await gateway.run() }
        defer { running.cancel() }

        let message = Array("From: alice@a.example\r\nTo: bob@b.example\r\nSubject: referral\r\nMessage-ID: <r1@a.example>\r\n\r\nbody\r\n".utf8)
        let mail = MailService(queue: gateway)
        let submitted = Task {
            await mail.submit(Submission(user: alice, envelopeFrom: "alice@a.example", recipients: ["bob@b.example"], message: message, via: "test"))
        }
        // Answered while the partner's DNS has still not answered: durable, not yet discovered.
        guard let reply = await value(within: .seconds(30), of: { await submitted.value }) else {
            partner.answer()
            Issue.record("the submission was not answered while discovery was waiting")
            return
        }
        guard case .queued = reply else {
            Issue.record("not queued: \(reply)")
            return
        }
        #expect(partner.lookups >= 1)
        #expect(try await store.queueEntries().map(\.state) == [.pending])

        partner.answer()
        let deadline = ContinuousClock.now + .seconds(60)
        while try await store.queueEntries().map(\.state) != [.failed] {
            guard ContinuousClock.now < deadline else { throw StoreError.invalid("timed out waiting for the failure") }
            try await Task.sleep(for: .milliseconds(10))
        }
        let entry = try #require(try await store.queueEntries().first)
        #expect(entry.lastError?.contains("no trusted certificate for bob@b.example: no CERT record for bob@b.example") == true, "\(entry)")
        // The failure notice reached the sender's mailbox.
        let inbox = try await store.messages(mailbox: alice, folder: "INBOX", uids: [1...UInt32.max])
        #expect(inbox.count == 1, "\(inbox)")
    }

    /// A message queued ready to send while every connection to its domain is
    /// busy is not lost or left for the poll: it leaves as soon as one frees up.
    @Test(.timeLimit(.minutes(2))) func aMessageQueuedWhileConnectionsAreBusyLeavesWhenOneFrees() async throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await Self.store(in: dir)
        let transport = HeldTransport(held: 1)
        // One connection per domain, and a poll that never comes during the test.
        let gateway = DirectGateway(
            configuration: GatewayConfiguration(hostname: "hisp.a.example", pollInterval: .seconds(3600), connectionsPerDomain: 1),
            store: store, agent: SecurityAgent(keys: store), certificates: NoCertificates(), incomingTrust: NoTrust(),
            transport: transport, logger: .init(label: "test"))
        let running = Task { await gateway.run() }
        defer { running.cancel() }

        func queue(_ n: Int) async throws {
            var draft = OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                      message: Array("Subject: \(n)\r\n\r\nbody\r\n".utf8), messageID: "<\(n)@a.example>")
            draft.prepared = PreparedWire(wire: Array("wire \(n)".utf8), discovered: ["bob@b.example: test"])
            _ = try await store.enqueue(draft)
            gateway.queued(draft)
        }
        func until(_ what: String, _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while try await !condition() {
                guard ContinuousClock.now < deadline else { throw StoreError.invalid("timed out waiting for \(what)") }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        try await queue(1)
        try await until("the first connection") { transport.busy == 1 }
        // The only connection to b.example is busy: the second message waits in the queue.
        try await queue(2)
        try await Task.sleep(for: .milliseconds(200))
        #expect(transport.sent.isEmpty)
        transport.open()
        try await until("both messages") { transport.sent.count == 2 }
        #expect(transport.sent == ["wire 1", "wire 2"])
        try await until("both outcomes recorded") {
            try await store.queueEntries().allSatisfy { $0.state == .sent }
        }
    }
}
