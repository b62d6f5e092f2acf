import Crypto
import DirectCore
import DirectTrust
import Foundation
import SQLiteStore
import SecurityAgent
import Storage
import Synchronization
import Testing
import X509
@testable import Delivery

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

struct NoTrust: IncomingTrust {
    func trust(localDomain: String) async -> DirectTrust { DirectTrust(anchors: TrustAnchors([])) }
}

/// The delivery loop in-process, over a real store and a transport that holds
/// its connections open.
@Suite struct GatewayDeliveryTests {
    /// A message queued ready to send while every connection to its domain is
    /// busy is not lost or left for the poll: it leaves as soon as one frees up.
    @Test(.timeLimit(.minutes(2))) func aMessageQueuedWhileConnectionsAreBusyLeavesWhenOneFrees() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-gateway-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await HISPStore.create(
            database: try await SQLiteDatabase.open(path: dir.appendingPathComponent("hisp.sqlite").path, create: true),
            material: .keyFile(SymmetricKey(size: .bits256), origin: "test key"), actor: "test")
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
