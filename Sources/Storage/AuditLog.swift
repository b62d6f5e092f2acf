import Crypto
import Foundation
import Synchronization

/// One audit event: who did what to which object, and how it ended. Objects
/// are named by row id or domain, never by address or content (no PHI).
public struct AuditEvent: Sendable, Equatable {
    public var actor: String
    public var action: String
    public var object: String
    public var outcome: String
    public var detail: String

    public init(actor: String, action: String, object: String, outcome: String, detail: String = "") {
        self.actor = actor
        self.action = action
        self.object = object
        self.outcome = outcome
        self.detail = detail
    }
}

public struct StoredAuditEvent: Sendable {
    public let seq: Int64
    public let at: String
    public let event: AuditEvent
}

/// What `hisp audit verify` found.
public struct AuditReport: Sendable {
    public let events: Int
    /// The first break in the chain, or nil when the chain is whole.
    public let failure: String?
}

/// The tamper-evident audit trail: each event carries
/// MAC_i = HMAC-SHA-256(audit key, MAC_{i-1} || seq || fields), and the store
/// keeps an authenticated head (last seq and MAC). Without the audit key
/// (sealed under the master key) nobody can edit, remove, insert or reorder an
/// event, or cut the tail, without `verify` finding it.
enum AuditLog {
    static let genesis = [UInt8](repeating: 0, count: 32)
    static let maxFieldBytes = 1024

    static func mac(key: SymmetricKey, previous: [UInt8], seq: Int64, at: String, event: AuditEvent) -> [UInt8] {
        var h = HMAC<SHA256>(key: key)
        h.update(data: previous)
        h.update(data: withUnsafeBytes(of: seq.bigEndian, Array.init))
        for field in [at, event.actor, event.action, event.object, event.outcome, event.detail] {
            let bytes = Array(field.utf8)
            h.update(data: withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init))
            h.update(data: bytes)
        }
        return Array(h.finalize())
    }

    static func headMAC(key: SymmetricKey, seq: Int64, mac: [UInt8]) -> String {
        var h = HMAC<SHA256>(key: key)
        h.update(data: Array("audit-head".utf8))
        h.update(data: withUnsafeBytes(of: seq.bigEndian, Array.init))
        h.update(data: mac)
        return "\(seq):" + Data(h.finalize()).base64EncodedString()
    }

    static func append(_ event: AuditEvent, at date: Date, key: SymmetricKey, in tx: any StoreTransaction) async throws {
        var event = event
        // Explicit limits: an event is a line, not a document.
        event.detail = String(event.detail.utf8.prefix(maxFieldBytes)) ?? ""
        event.object = String(event.object.utf8.prefix(maxFieldBytes)) ?? ""
        let last: TransactionScratch.AuditLink
        if let known = tx.scratch.auditLast {
            last = known
        } else {
            let rows = try await tx.query("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")
            last = TransactionScratch.AuditLink(seq: try rows.first?.integer("seq") ?? 0, mac: try rows.first?.blob("mac") ?? genesis)
        }
        let seq = last.seq + 1
        let at = Timestamp.text(date)
        let mac = mac(key: key, previous: last.mac, seq: seq, at: at, event: event)
        try await tx.execute(
            "INSERT INTO audit (seq, at, actor, action, object, outcome, detail, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            .integer(seq), .text(at), .text(event.actor), .text(event.action), .text(event.object), .text(event.outcome),
            .text(event.detail), .blob(mac))
        // The head (the last event, authenticated) is written once, when the transaction ends.
        tx.scratch.auditLast = TransactionScratch.AuditLink(seq: seq, mac: mac)
        tx.scratch.auditHeadToWrite = headMAC(key: key, seq: seq, mac: mac)
    }

    static func verify(key: SymmetricKey, in tx: any StoreTransaction) async throws -> AuditReport {
        var previous = genesis
        var expected: Int64 = 1
        var count = 0
        // Read in pages so a long trail does not have to fit in memory at once.
        var after: Int64 = 0
        while true {
            let rows = try await tx.query(
                "SELECT seq, at, actor, action, object, outcome, detail, mac FROM audit WHERE seq > ? ORDER BY seq LIMIT 1000",
                .integer(after))
            if rows.isEmpty { break }
            for row in rows {
                let seq = try row.integer("seq")
                guard seq == expected else {
                    return AuditReport(events: count, failure: "event \(expected) is missing (next is \(seq))")
                }
                let event = AuditEvent(
                    actor: try row.text("actor"), action: try row.text("action"), object: try row.text("object"),
                    outcome: try row.text("outcome"), detail: try row.text("detail"))
                let at = try row.text("at")
                let mac = mac(key: key, previous: previous, seq: seq, at: at, event: event)
                guard mac == (try row.blob("mac")) else {
                    return AuditReport(events: count, failure: "event \(seq) (\(event.action) at \(at)) was altered, or an event before it was")
                }
                previous = mac
                expected += 1
                count += 1
                after = seq
            }
        }
        let head = try await tx.query("SELECT value FROM meta WHERE name = 'audit_head'")
        guard let recorded = head.first?.optionalText("value") else {
            return AuditReport(events: count, failure: "the audit head is missing")
        }
        guard recorded == headMAC(key: key, seq: expected - 1, mac: previous) else {
            let recordedSeq = recorded.split(separator: ":").first.map(String.init) ?? "?"
            return AuditReport(events: count, failure: "the trail ends at event \(expected - 1) but its head records event \(recordedSeq): events were removed from the end")
        }
        return AuditReport(events: count, failure: nil)
    }
}

extension HISPStore {
    /// Checks the whole audit chain.
    public func verifyAudit() async throws -> AuditReport {
        let key = auditKey
        return try await database.transaction(write: false) { tx in try await AuditLog.verify(key: key, in: tx) }
    }

    /// The most recent events, newest last.
    public func auditEvents(limit: Int) async throws -> [StoredAuditEvent] {
        try await database.transaction(write: false) { tx in
            let rows = try await tx.query(
                "SELECT seq, at, actor, action, object, outcome, detail FROM audit ORDER BY seq DESC LIMIT ?", .integer(Int64(limit)))
            return try rows.reversed().map { row in
                StoredAuditEvent(
                    seq: try row.integer("seq"), at: try row.text("at"),
                    event: AuditEvent(actor: try row.text("actor"), action: try row.text("action"), object: try row.text("object"),
                                      outcome: try row.text("outcome"), detail: try row.text("detail")))
            }
        }
    }
}

/// Read events (`message.read`), written in one transaction at most a
/// second after the first of them, instead of one synchronous write per read.
/// A crash loses the events of the last second at most (docs/storage.md);
/// `HISPStore.close` writes what is waiting.
final class ReadAudit: Sendable {
    /// At most this many events wait; more are written at once.
    static let maxWaiting = 1000
    /// How long the first waiting event waits for company (tests set it long, to decide the flush themselves).
    private let delayValue = Mutex<Duration>(.seconds(1))
    var delay: Duration {
        get { delayValue.withLock { $0 } }
        set { delayValue.withLock { $0 = newValue } }
    }
    private let database: any StoreDatabase
    private let key: SymmetricKey
    private let state = Mutex<(events: [(AuditEvent, Date)], timer: Task<Void, Never>?)>(([], nil))
    /// One writer at a time, so events keep their order in the chain.
    private let writing = AsyncGate()

    init(database: any StoreDatabase, key: SymmetricKey) {
        self.database = database
        self.key = key
    }

    func record(_ event: AuditEvent, at date: Date) {
        let (start, full) = state.withLock { s -> (Bool, Bool) in
            s.events.append((event, date))
            return (s.timer == nil, s.events.count >= Self.maxWaiting)
        }
        if full {
            Task { await self.flush() }
        } else if start {
            let timer = Task {
                try? await Task.sleep(for: self.delay)
                await self.flush()
            }
            state.withLock { s in
                if s.timer == nil && !s.events.isEmpty { s.timer = timer } else { timer.cancel() }
            }
        }
    }

    /// Writes every waiting event in one transaction. A failed write puts them back for the next one.
    func flush() async {
        await writing.acquire()
        let events = state.withLock { s -> [(AuditEvent, Date)] in
            let e = s.events
            s.events = []
            s.timer = nil
            return e
        }
        if !events.isEmpty {
            let key = self.key
            do {
                try await database.transaction(write: true) { tx in
                    for (event, date) in events { try await AuditLog.append(event, at: date, key: key, in: tx) }
                }
            } catch {
                state.withLock { $0.events.insert(contentsOf: events, at: 0) }
            }
        }
        await writing.release()
    }
}

/// One holder at a time, in arrival order (also the SQLite connections' gate).
public actor AsyncGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    public func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}
