import DirectCore
import Foundation

/// A recipient's place in the outbound queue.
public enum QueueState: String, Sendable, CaseIterable {
    /// Submitted; discovery, signing and encryption not yet done.
    case pending
    /// Ready to send (waiting for its next attempt).
    case queued
    /// Accepted by the recipient's HISP; waiting for the processed MDN.
    case sent
    /// The processed MDN came (final, unless dispatched was asked for).
    case processed
    /// The dispatched MDN came (final).
    case dispatched
    /// A notification we sent was accepted (notifications are not tracked).
    case delivered
    /// Refused or given up; the sender got a failure notice (final).
    case failed
    /// No notification within the timeout; the sender got a failure DSN (final).
    case timedout
    /// The recipient's side deleted it (RFC 8098 "deleted"; final).
    case deleted
    /// The recipient's side will not say what became of it (RFC 3798 "denied"; final).
    case denied

    public var isFinal: Bool { [.processed, .dispatched, .delivered, .failed, .timedout, .deleted, .denied].contains(self) }
}

public enum OutboundKind: String, Sendable {
    /// A message a user sent; tracked until its MDNs arrive.
    case message
    /// An MDN we send; delivered once, never tracked or answered.
    case notification
}

/// A message for a local mailbox (a DSN or a passed-on MDN), stored with the change that caused it.
public struct LocalDelivery: Sendable {
    public var mailbox: DirectAddress
    public var bytes: [UInt8]
    public var metadata: MessageMetadata

    public init(mailbox: DirectAddress, bytes: [UInt8], metadata: MessageMetadata) {
        self.mailbox = mailbox
        self.bytes = bytes
        self.metadata = metadata
    }
}

/// A message to send, for `enqueue`.
public struct OutboundDraft: Sendable {
    public var kind: OutboundKind
    public var sender: String
    public var recipients: [String]
    public var message: [UInt8]
    public var messageID: String
    public var wantsDispatched: Bool
    /// The message already signed and encrypted for every recipient: it is
    /// queued ready to send, and its plain form is not kept.
    public var prepared: PreparedWire?

    public init(kind: OutboundKind, sender: String, recipients: [String], message: [UInt8], messageID: String, wantsDispatched: Bool = false) {
        self.kind = kind
        self.sender = sender
        self.recipients = recipients
        self.message = message
        self.messageID = messageID
        self.wantsDispatched = wantsDispatched
    }
}

/// The signed and encrypted form of a draft, and what discovery found for each recipient.
public struct PreparedWire: Sendable {
    public var wire: [UInt8]
    public var discovered: [String]

    public init(wire: [UInt8], discovered: [String]) {
        self.wire = wire
        self.discovered = discovered
    }
}

/// A submitted message waiting to be signed and encrypted.
public struct PendingSubmission: Sendable {
    public let id: String
    public let kind: OutboundKind
    public let sender: String
    public let messageID: String
    public let message: [UInt8]
    public let wantsDispatched: Bool
    public let recipients: [(queueID: String, address: String)]
}

/// One row of the queue, opened.
public struct QueueEntry: Sendable {
    public let id: String
    public let outboundID: String
    public let kind: OutboundKind
    public let state: QueueState
    public let domain: String
    public let recipient: String
    public let sender: String
    public let messageID: String
    public let wantsDispatched: Bool
    public let attempts: Int
    public let nextAttempt: Date
    public let deadline: Date?
    public let lastError: String?
    public let created: Date
    public let updated: Date
}

/// A queue row due for delivery, as far as it can be told without opening it.
public struct DueDelivery: Sendable {
    public let id: String
    public let outboundID: String
    public let kind: OutboundKind
    public let domain: String
    public let created: Date
    /// The recipient's blind index: equal for the same address.
    public let recipientIndex: [UInt8]

    public init(id: String, outboundID: String, kind: OutboundKind, domain: String, created: Date, recipientIndex: [UInt8]) {
        self.id = id
        self.outboundID = outboundID
        self.kind = kind
        self.domain = domain
        self.created = created
        self.recipientIndex = recipientIndex
    }
}

/// Who holds queue rows for sending, and until when (`claimDue`).
public struct QueueLease: Sendable, Equatable {
    /// The node's name: unique among the nodes that share a store.
    public var holder: String
    public var until: Date

    public init(holder: String, until: Date) {
        self.holder = holder
        self.until = until
    }
}

/// The result of one delivery attempt for one recipient.
public enum DeliveryResult: Sendable, Equatable {
    /// Accepted by the next hop; wait for notifications until `deadline` (nil: nothing to wait for).
    case sent(deadline: Date?)
    case retry(at: Date, Refusal)
    case failed(Refusal)
}

/// What a received notification does to its queue row, as the queue's policy
/// decides it (Delivery); the store applies it in one transaction.
public enum NotificationEffect: Sendable, Equatable {
    /// The row moves to `state`; with `keepDeadline`, a later notification is still awaited.
    case advance(to: QueueState, keepDeadline: Bool)
    /// The state stays; the notification still reaches the sender.
    case passOn
    /// After the timeout's failure DSN: swallowed.
    case late
    /// The same notification again: swallowed.
    case duplicate
}

/// What a received MDN or DSN did to the queue.
public enum NotificationMatch: Sendable, Equatable {
    /// It moved the recipient on; pass it to the sender.
    case accepted(sender: String, previous: QueueState, now: QueueState)
    /// The same notice again.
    case duplicate
    /// After the timeout's failure DSN: swallowed (Implementation Guide for Delivery Notification in Direct 1.0).
    case late
    /// No message of ours has this Message-ID for this recipient.
    case unknown
}

public struct TraceEvent: Sendable {
    public let at: Date
    public let step: String
    public let outcome: String
    public let detail: String
}

extension HISPStore {
    // MARK: enqueue

    /// Makes a message durable in the outbound queue, one row per recipient;
    /// with `sentCopy`, also files the message as written in the sender's
    /// Sent folder (read), in the same transaction.
    public func enqueue(_ draft: OutboundDraft, trace: String = "accepted for sending", sentCopy: LocalDelivery? = nil,
                        now: Date = Date()) async throws -> String {
        if let sentCopy { try Self.checkMessage(bytes: sentCopy.bytes, metadata: sentCopy.metadata) }
        return try await write { tx, touches in
            let id = try await self.enqueue(draft, trace: trace, in: tx, now: now)
            if let copy = sentCopy {
                let box = try await self.mailboxID(copy.mailbox, in: tx)
                let sent = try await self.folder(mailboxID: box, named: SpecialFolder.sent.name, in: tx)
                _ = try await self.insertMessage(mailboxID: box, folderID: sent.id, bytes: copy.bytes, metadata: copy.metadata, flags: .seen,
                                                 keywords: [], received: now, in: tx)
                touches.touch(box)
            }
            return id
        }
    }

    func enqueue(_ draft: OutboundDraft, trace: String, in tx: any StoreTransaction, now: Date = Date()) async throws -> String {
        guard draft.message.count <= StoreLimits.maxMessageBytes else {
            throw StoreError.invalid("the message has \(draft.message.count) bytes; the limit is \(StoreLimits.maxMessageBytes)")
        }
        guard !draft.recipients.isEmpty, draft.recipients.count <= StoreLimits.maxRecipients else {
            throw StoreError.invalid("a message needs 1 to \(StoreLimits.maxRecipients) recipients")
        }
        let id = Envelope.newID()
        let rk = try await newRowKey(table: "outbound", id: id, in: tx)
        // Prepared: ready to send, as `prepared` would leave it; the preparer never reads it.
        let (state, queueState) = draft.prepared == nil ? ("new", "pending") : ("ready", "queued")
        try await tx.execute(
            """
            INSERT INTO outbound (id, kind, state, created, wants_dispatched, kek_id, dek, message_id_index, sender_enc, message_id_enc)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            .text(id), .text(draft.kind.rawValue), .text(state), .text(Timestamp.text(now)), .integer(draft.wantsDispatched ? 1 : 0),
            .integer(rk.kekID), .blob(rk.wrapped), .blob(blindIndex("message-id", draft.messageID)),
            try rk.seal("sender_enc", text: draft.sender), try rk.seal("message_id_enc", text: draft.messageID))
        if let prepared = draft.prepared {
            try await tx.execute("INSERT INTO outbound_blobs (outbound_id, part, data) VALUES (?, 'wire_enc', ?)", .text(id), try rk.seal("wire_enc", prepared.wire))
        } else {
            try await tx.execute("INSERT INTO outbound_blobs (outbound_id, part, data) VALUES (?, 'body_enc', ?)", .text(id), try rk.seal("body_enc", draft.message))
        }
        for recipient in draft.recipients {
            let qid = Envelope.newID()
            let qk = try await newRowKey(table: "queue", id: qid, in: tx)
            let domain = DirectAddress(recipient)?.domain ?? ""
            try await tx.execute(
                """
                INSERT INTO queue (id, outbound_id, domain, state, attempts, next_attempt, created, updated, kek_id, dek, recipient_index, recipient_enc)
                VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)
                """,
                .text(qid), .text(id), .text(domain), .text(queueState), .text(Timestamp.text(now)), .text(Timestamp.text(now)), .text(Timestamp.text(now)),
                .integer(qk.kekID), .blob(qk.wrapped), .blob(blindIndex("address", recipient.lowercased())),
                try qk.seal("recipient_enc", text: recipient))
        }
        try await addTrace(draft.messageID, step: "queue", outcome: "ok",
                           detail: "\(trace): \(draft.kind.rawValue) from \(draft.sender) to \(draft.recipients.joined(separator: ", "))", in: tx)
        if let prepared = draft.prepared {
            for detail in prepared.discovered {
                try await addTrace(draft.messageID, step: "discovery", outcome: "ok", detail: detail, in: tx)
            }
            try await traceSigned(draft.messageID, bytes: prepared.wire.count, in: tx)
        }
        try await audit("queue.add", "outbound \(id)", detail: "\(draft.kind.rawValue), \(draft.recipients.count) recipient(s), \(draft.message.count) bytes", in: tx)
        return id
    }

    /// Submitted messages not yet signed and encrypted, oldest first.
    public func pendingSubmissions(limit: Int = 20) async throws -> [PendingSubmission] {
        try await database.transaction(write: false) { tx in
            var out: [PendingSubmission] = []
            // The limit is written into the statement: a LIMIT bound as a parameter makes
            // SQLite plan the statement afresh for every new value.
            for row in try await tx.query("SELECT * FROM outbound WHERE state = 'new' ORDER BY created, rowid LIMIT \(max(1, limit))") {
                let id = try row.text("id")
                let rk = try await self.rowKey(table: "outbound", id: id, row: row, in: tx)
                var recipients: [(String, String)] = []
                for q in try await tx.query("SELECT * FROM queue WHERE outbound_id = ? AND state = 'pending' ORDER BY rowid", .text(id)) {
                    let qid = try q.text("id")
                    let qk = try await self.rowKey(table: "queue", id: qid, row: q, in: tx)
                    recipients.append((qid, try qk.openText("recipient_enc", q)))
                }
                out.append(PendingSubmission(
                    id: id, kind: OutboundKind(rawValue: try row.text("kind")) ?? .message, sender: try rk.openText("sender_enc", row),
                    messageID: try rk.openText("message_id_enc", row), message: try await self.outboundBlob("body_enc", of: id, key: rk, in: tx),
                    wantsDispatched: try row.integer("wants_dispatched") != 0, recipients: recipients))
            }
            return out
        }
    }

    /// Records the outcome of preparing a submission: the signed and encrypted
    /// form for the recipients that can get it, failures for the rest, and the
    /// sender's DSN in the same transaction.
    public func prepared(
        _ outboundID: String, messageID: String, wire: [UInt8]?, refused: [(queueID: String, reason: String)], dsn: LocalDelivery?,
        discovered: [String] = [], now: Date = Date()
    ) async throws {
        try await write { tx, touches in
            // The row key only: the body and the wire form are large and not needed here.
            let rows = try await tx.query("SELECT kek_id, dek FROM outbound WHERE id = ?", .text(outboundID))
            guard let row = rows.first else { throw StoreError.notFound("outbound \(outboundID)") }
            let rk = try await self.rowKey(table: "outbound", id: outboundID, row: row, in: tx)
            for detail in discovered {
                try await self.addTrace(messageID, step: "discovery", outcome: "ok", detail: detail, in: tx)
            }
            for (qid, reason) in refused {
                try await self.setQueueState(qid, .failed, error: reason, now: now, in: tx)
                try await self.addTrace(messageID, step: "trust", outcome: "failed", detail: reason, in: tx)
            }
            if let wire {
                try await tx.execute("INSERT INTO outbound_blobs (outbound_id, part, data) VALUES (?, 'wire_enc', ?)", .text(outboundID), try rk.seal("wire_enc", wire))
                try await tx.execute("UPDATE outbound SET state = 'ready' WHERE id = ?", .text(outboundID))
                try await tx.execute("UPDATE queue SET state = 'queued', next_attempt = ?, updated = ? WHERE outbound_id = ? AND state = 'pending'",
                                     .text(Timestamp.text(now)), .text(Timestamp.text(now)), .text(outboundID))
                try await self.traceSigned(messageID, bytes: wire.count, in: tx)
            } else {
                try await tx.execute("UPDATE queue SET state = 'failed', updated = ? WHERE outbound_id = ? AND state = 'pending'",
                                     .text(Timestamp.text(now)), .text(outboundID))
                try await tx.execute("UPDATE outbound SET state = 'done' WHERE id = ?", .text(outboundID))
            }
            if let dsn { try await self.deliverLocally(dsn, messageID: messageID, why: "failure notice", in: tx, touches: touches) }
        }
    }

    // MARK: delivery

    /// Claims queue rows for sending, in one write transaction: reads up to
    /// `limit` rows due at `now` whose lease is free (never taken, released, or
    /// expired), oldest first, lets `choose` pick among them (it sees clear
    /// columns only) and leases the picked rows to `lease`. What `choose`
    /// returns besides the ids comes back with the claimed rows.
    ///
    /// The lease, not the caller's memory, is what keeps two senders (two
    /// tasks, or two nodes on one database) from taking one row: a row stays
    /// leased until its outcome is recorded (`recordDeliveries` clears it),
    /// it is released (`releaseLeases`), or its time runs out (its holder died).
    public func claimDue<Plan: Sendable>(
        now: Date, limit: Int, lease: QueueLease,
        choose: @escaping @Sendable ([DueDelivery]) -> (ids: [String], plan: Plan)
    ) async throws -> (claimed: [DueDelivery], plan: Plan) {
        try await database.transaction(write: true) { tx in
            let at = Timestamp.text(now)
            // Insertion order breaks ties, so a processed MDN leaves before the dispatched one
            // queued with it (rowid: SQLite; a PostgreSQL port needs a sequence column). The
            // limit is written into the statement: a LIMIT bound as a parameter makes SQLite
            // plan the statement afresh for every new value.
            let rows = try await tx.query(
                """
                SELECT q.id, q.outbound_id, q.domain, q.created, q.recipient_index, o.kind FROM queue q JOIN outbound o ON o.id = q.outbound_id
                WHERE q.state = 'queued' AND q.next_attempt <= ? AND (q.lease_until IS NULL OR q.lease_until <= ?)
                ORDER BY q.next_attempt, q.rowid LIMIT \(max(1, limit))
                """,
                .text(at), .text(at))
            var due: [DueDelivery] = []
            for row in rows {
                due.append(DueDelivery(
                    id: try row.text("id"), outboundID: try row.text("outbound_id"), kind: OutboundKind(rawValue: try row.text("kind")) ?? .message,
                    domain: try row.text("domain"), created: Timestamp.date(try row.text("created")), recipientIndex: try row.blob("recipient_index")))
            }
            let (ids, plan) = choose(due)
            let picked = Set(ids)
            for id in ids {
                try await tx.execute("UPDATE queue SET lease_holder = ?, lease_until = ? WHERE id = ?",
                                     .text(lease.holder), .text(Timestamp.text(lease.until)), .text(id))
            }
            return (due.filter { picked.contains($0.id) }, plan)
        }
    }

    /// Gives up leases `holder` took on `ids` (rows it will not send now).
    public func releaseLeases(_ ids: [String], holder: String) async throws {
        guard !ids.isEmpty else { return }
        try await database.transaction(write: true) { tx in
            for id in ids {
                try await tx.execute("UPDATE queue SET lease_holder = NULL, lease_until = NULL WHERE id = ? AND lease_holder = ?",
                                     .text(id), .text(holder))
            }
        }
    }

    /// Extends the leases `holder` holds on `ids` (a delivery still under way).
    public func renewLeases(_ ids: [String], holder: String, until: Date) async throws {
        guard !ids.isEmpty else { return }
        try await database.transaction(write: true) { tx in
            for id in ids {
                try await tx.execute("UPDATE queue SET lease_until = ? WHERE id = ? AND lease_holder = ?",
                                     .text(Timestamp.text(until)), .text(id), .text(holder))
            }
        }
    }

    /// Gives up every lease `holder` holds: a node starting again releases what
    /// its previous run held when it stopped (or died), instead of waiting for
    /// those leases to run out. Returns how many there were.
    @discardableResult
    public func releaseLeases(heldBy holder: String) async throws -> Int {
        try await database.transaction(write: true) { tx in
            let rows = try await tx.query(
                "UPDATE queue SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ? RETURNING id", .text(holder))
            return rows.count
        }
    }

    /// The queue rows `ids`, opened, in that order; those gone are left out.
    public func entries(ids: [String]) async throws -> [QueueEntry] {
        try await database.transaction(write: false) { tx in
            var opened = EntryOpener()
            var out: [QueueEntry] = []
            for id in ids { out += try await self.entries("WHERE q.id = ?", [.text(id)], opener: &opened, in: tx) }
            return out
        }
    }

    /// The signed and encrypted messages of several outbound rows, read in one transaction;
    /// an unreadable one is an error in its place.
    public func wires(_ outboundIDs: [String]) async throws -> [String: Result<[UInt8], StoreError>] {
        try await database.transaction(write: false) { tx in
            var out: [String: Result<[UInt8], StoreError>] = [:]
            for id in outboundIDs {
                do {
                    let rows = try await tx.query("SELECT kek_id, dek FROM outbound WHERE id = ?", .text(id))
                    guard let row = rows.first else { throw StoreError.notFound("the prepared message \(id)") }
                    out[id] = .success(try await self.outboundBlob("wire_enc", of: id, key: self.rowKey(table: "outbound", id: id, row: row, in: tx), in: tx))
                } catch let e as StoreError {
                    out[id] = .failure(e)
                }
            }
            return out
        }
    }

    /// Delivery attempts, each for one recipient with the sender's DSN when it failed,
    /// in one transaction (one connection's outcomes).
    public func recordDeliveries(_ items: [(entry: QueueEntry, result: DeliveryResult, dsn: LocalDelivery?)], now: Date = Date()) async throws {
        guard !items.isEmpty else { return }
        try await write { tx, touches in
            for item in items { try await self.recordDelivery(item.entry, item.result, dsn: item.dsn, now: now, in: tx, touches: touches) }
        }
    }

    func recordDelivery(_ entry: QueueEntry, _ result: DeliveryResult, dsn: LocalDelivery?, now: Date, in tx: any StoreTransaction,
                        touches: MailboxTouches) async throws {
        // Counted from what is stored, not from the caller's copy: one statement while the row
        // waits for this attempt, as it does unless its notification won the race.
        let counted = try await tx.query(
            "UPDATE queue SET attempts = attempts + 1, lease_holder = NULL, lease_until = NULL WHERE id = ? AND state = 'queued' RETURNING attempts",
            .text(entry.id))
        guard let attempts = try counted.first?.integer("attempts") else {
            let rows = try await tx.query(
                "UPDATE queue SET lease_holder = NULL, lease_until = NULL WHERE id = ? RETURNING state, attempts", .text(entry.id))
            guard let row = rows.first else { throw StoreError.notFound("queue \(entry.id)") }
            let attempts = try row.integer("attempts") + 1
            let state = try row.text("state")
            // A connection records its outcomes when it is done, so the recipient's HISP may
            // have answered a message it carried already (an MDN moved the row on). The state
            // stays; the attempt still belongs in the trace.
            if case .sent = result, [QueueState.processed, .dispatched, .failed].map(\.rawValue).contains(state) {
                try await tx.execute("UPDATE queue SET attempts = ? WHERE id = ?", .integer(attempts), .text(entry.id))
                try await self.addTrace(entry.messageID, step: "delivery", outcome: "ok",
                                        detail: "attempt \(attempts): accepted for \(entry.recipient) (its notification came first)", in: tx)
            }
            return
        }
        switch result {
        case .sent(let deadline):
            let state: QueueState = entry.kind == .notification || deadline == nil ? .delivered : .sent
            try await self.setQueueState(entry.id, state, deadline: deadline, now: now, in: tx)
            try await self.addTrace(entry.messageID, step: "delivery", outcome: "ok",
                                    detail: "attempt \(attempts): accepted for \(entry.recipient)" + (deadline.map { "; waiting for MDN until \(Timestamp.text($0))" } ?? ""), in: tx)
        case .retry(let at, let refusal):
            let error = refusal.description
            try await tx.execute("UPDATE queue SET next_attempt = ?, updated = ? WHERE id = ?", .text(Timestamp.text(at)), .text(Timestamp.text(now)), .text(entry.id))
            try await self.setError(entry.id, error, in: tx)
            try await self.addTrace(entry.messageID, step: "delivery", outcome: "deferred",
                                    detail: "attempt \(attempts) for \(entry.recipient): \(error); next at \(Timestamp.text(at))", in: tx)
        case .failed(let refusal):
            let error = refusal.description
            try await self.setQueueState(entry.id, .failed, error: error, now: now, in: tx)
            try await self.addTrace(entry.messageID, step: "delivery", outcome: "failed", detail: "attempt \(attempts) for \(entry.recipient): \(error)", in: tx)
        }
        if let dsn { try await self.deliverLocally(dsn, messageID: entry.messageID, why: "failure notice", in: tx, touches: touches) }
        try await self.finishOutbound(entry.outboundID, in: tx)
    }

    // MARK: notifications

    /// Applies a received MDN or DSN for (`originalMessageID`, `recipient`):
    /// `decide` (the queue's policy) says what it does to the row's state, and
    /// `label` names it in the trace. Unless it is swallowed, the notification
    /// itself is stored for the sender in the same transaction.
    public func applyNotification(
        originalMessageID: String, recipient: String, label: String, passOn: LocalDelivery?, now: Date = Date(),
        decide: @escaping @Sendable (_ state: QueueState, _ wantsDispatched: Bool) -> NotificationEffect
    ) async throws -> NotificationMatch {
        try await write { tx, touches in
            let rows = try await tx.query(
                """
                SELECT q.id, q.state, o.wants_dispatched, o.id AS oid FROM queue q JOIN outbound o ON o.id = q.outbound_id
                WHERE o.message_id_index = ? AND q.recipient_index = ? AND o.kind = 'message'
                """, .blob(self.blindIndex("message-id", originalMessageID)), .blob(self.blindIndex("address", recipient.lowercased())))
            guard let row = rows.first else { return .unknown }
            let qid = try row.text("id")
            guard let state = QueueState(rawValue: try row.text("state")) else { throw StoreError.integrity("queue \(qid): unknown state") }
            let effect = decide(state, try row.integer("wants_dispatched") != 0)
            let next: QueueState
            switch effect {
            case .late, .duplicate:
                try await self.addTrace(originalMessageID, step: "notification", outcome: "swallowed",
                                        detail: "\(label) from \(recipient) \(effect == .late ? "after the timeout" : "again")", in: tx)
                return effect == .late ? .late : .duplicate
            case .passOn:
                next = state
                try await self.addTrace(originalMessageID, step: "notification", outcome: "ok",
                                        detail: "\(label) from \(recipient) (state stays \(state.rawValue))", in: tx)
            case .advance(let to, let keepDeadline):
                next = to
                if keepDeadline {
                    try await tx.execute("UPDATE queue SET state = ?, updated = ? WHERE id = ?", .text(to.rawValue), .text(Timestamp.text(now)), .text(qid))
                } else {
                    try await tx.execute("UPDATE queue SET state = ?, updated = ?, deadline = NULL WHERE id = ?",
                                         .text(to.rawValue), .text(Timestamp.text(now)), .text(qid))
                }
                try await self.addTrace(originalMessageID, step: "notification", outcome: "ok", detail: "\(label) from \(recipient)", in: tx)
                try await self.finishOutbound(try row.text("oid"), in: tx)
            }
            if let passOn { try await self.deliverLocally(passOn, messageID: originalMessageID, why: "\(label) notification", in: tx, touches: touches) }
            let sender = try await self.outboundSender(try row.text("oid"), in: tx)
            return .accepted(sender: sender, previous: state, now: next)
        }
    }

    /// Recipients that waited past their deadline: marked timed out, each with the sender's DSN, in one transaction.
    public func expireNotifications(now: Date = Date(), dsn: @escaping @Sendable (QueueEntry) -> LocalDelivery?) async throws -> [QueueEntry] {
        let due = try await entries(
            "WHERE q.state IN ('sent', 'processed') AND q.deadline IS NOT NULL AND q.deadline <= ? ORDER BY q.deadline LIMIT 100",
            [.text(Timestamp.text(now))])
        guard !due.isEmpty else { return [] }
        return try await write { tx, touches in
            var expired: [QueueEntry] = []
            for e in due {
                let rows = try await tx.query("SELECT state FROM queue WHERE id = ?", .text(e.id))
                guard let s = rows.first.flatMap({ try? $0.text("state") }), s == e.state.rawValue else { continue }
                let missing = e.state == .sent ? "processed" : "dispatched"
                try await self.setQueueState(e.id, .timedout, error: "no \(missing) MDN by \(e.deadline.map(Timestamp.text) ?? "the deadline")", now: now, in: tx)
                try await self.addTrace(e.messageID, step: "notification", outcome: "timeout", detail: "no \(missing) MDN from \(e.recipient)", in: tx)
                if let d = dsn(e) { try await self.deliverLocally(d, messageID: e.messageID, why: "timeout notice", in: tx, touches: touches) }
                try await self.finishOutbound(e.outboundID, in: tx)
                expired.append(e)
            }
            return expired
        }
    }

    // MARK: inbound

    /// Stores a received message in a mailbox and queues the notifications it
    /// calls for, in one transaction. Returns nil (and stores nothing) when the
    /// mailbox already holds this Message-ID: a redelivery.
    public func storeIncoming(_ delivery: LocalDelivery, replies: [OutboundDraft], now: Date = Date()) async throws -> String? {
        try await write { tx, touches in
            if try await self.hasMessage(mailbox: delivery.mailbox, messageID: delivery.metadata.messageID, in: tx) {
                try await self.addTrace(delivery.metadata.messageID, step: "inbound", outcome: "duplicate",
                                        detail: "\(delivery.mailbox) already has it; not stored again", in: tx)
                return nil
            }
            let id = try await self.insertMessage(mailbox: delivery.mailbox, bytes: delivery.bytes, metadata: delivery.metadata, received: now, in: tx, touches: touches)
            try await self.addTrace(delivery.metadata.messageID, step: "inbound", outcome: "ok",
                                    detail: "stored in \(delivery.mailbox) as message \(id)", in: tx)
            for reply in replies { _ = try await self.enqueue(reply, trace: "notification for \(delivery.metadata.messageID)", in: tx, now: now) }
            return id
        }
    }

    // MARK: operator views

    /// The queue, newest first (`hisp queue list`); without `includeFinished`, only what
    /// still waits (a processed entry waits only while it has a deadline for the dispatched MDN).
    public func queueEntries(includeFinished: Bool = true, limit: Int = 1000) async throws -> [QueueEntry] {
        try await entries((includeFinished ? "" : "WHERE (q.state IN ('pending', 'queued', 'sent') OR (q.state = 'processed' AND q.deadline IS NOT NULL)) ") + "ORDER BY q.created DESC, q.id LIMIT ?",
                          [.integer(Int64(limit))])
    }

    /// Everything known about a Message-ID: its queue rows and its trace.
    public func trace(messageID: String) async throws -> (entries: [QueueEntry], events: [TraceEvent]) {
        let entries = try await entries("WHERE o.message_id_index = ? ORDER BY q.created, q.id", [.blob(blindIndex("message-id", messageID))])
        let events = try await database.transaction(write: false) { tx in
            var out: [TraceEvent] = []
            // Events of one transaction share a millisecond: insertion order (rowid) keeps them in
            // the order they happened (a PostgreSQL port needs a sequence column).
            for row in try await tx.query("SELECT * FROM trace WHERE message_id_index = ? ORDER BY at, rowid", .blob(self.blindIndex("message-id", messageID))) {
                let id = try row.text("id")
                let rk = try await self.rowKey(table: "trace", id: id, row: row, in: tx)
                out.append(TraceEvent(at: Timestamp.date(try row.text("at")), step: try row.text("step"), outcome: try row.text("outcome"),
                                      detail: try rk.openText("detail_enc", row)))
            }
            return out
        }
        return (entries, events)
    }

    /// Records a step of a message's story (also for refusals that store nothing else).
    public func addTrace(_ messageID: String, step: String, outcome: String, detail: String) async throws {
        try await database.transaction(write: true) { tx in try await self.addTrace(messageID, step: step, outcome: outcome, detail: detail, in: tx) }
    }

    // MARK: helpers

    func addTrace(_ messageID: String, step: String, outcome: String, detail: String, in tx: any StoreTransaction) async throws {
        guard !messageID.isEmpty else { return }
        let id = Envelope.newID()
        let rk = try await newRowKey(table: "trace", id: id, in: tx)
        try await tx.execute(
            "INSERT INTO trace (id, message_id_index, at, step, outcome, kek_id, dek, detail_enc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            .text(id), .blob(blindIndex("message-id", messageID)), .text(Timestamp.text(Date())), .text(step), .text(outcome),
            .integer(rk.kekID), .blob(rk.wrapped), try rk.seal("detail_enc", text: String(detail.prefix(2000))))
    }

    func traceSigned(_ messageID: String, bytes: Int, in tx: any StoreTransaction) async throws {
        try await addTrace(messageID, step: "security", outcome: "ok", detail: "signed and encrypted (\(bytes) bytes)", in: tx)
    }

    func deliverLocally(_ d: LocalDelivery, messageID: String, why: String, in tx: any StoreTransaction, touches: MailboxTouches) async throws {
        let id = try await insertMessage(mailbox: d.mailbox, bytes: d.bytes, metadata: d.metadata, in: tx, touches: touches)
        try await addTrace(messageID, step: "notice", outcome: "ok", detail: "\(why) stored in \(d.mailbox) as message \(id)", in: tx)
    }

    func setQueueState(_ qid: String, _ state: QueueState, error: String? = nil, deadline: Date? = nil, now: Date, in tx: any StoreTransaction) async throws {
        try await tx.execute("UPDATE queue SET state = ?, updated = ?, deadline = ? WHERE id = ?",
                             .text(state.rawValue), .text(Timestamp.text(now)), deadline.map { .text(Timestamp.text($0)) } ?? .null, .text(qid))
        if let error { try await setError(qid, error, in: tx) }
    }

    func setError(_ qid: String, _ error: String, in tx: any StoreTransaction) async throws {
        let rows = try await tx.query("SELECT * FROM queue WHERE id = ?", .text(qid))
        guard let row = rows.first else { return }
        let qk = try await rowKey(table: "queue", id: qid, row: row, in: tx)
        try await tx.execute("UPDATE queue SET last_error_enc = ? WHERE id = ?", try qk.seal("last_error_enc", text: String(error.prefix(2000))), .text(qid))
    }

    /// A part of an outbound message (`body_enc` or `wire_enc`), opened with the outbound row's key.
    func outboundBlob(_ part: String, of oid: String, key: RowKey, in tx: any StoreTransaction) async throws -> [UInt8] {
        let rows = try await tx.query("SELECT data FROM outbound_blobs WHERE outbound_id = ? AND part = ?", .text(oid), .text(part))
        guard let row = rows.first else {
            throw StoreError.notFound(part == "wire_enc" ? "the prepared message \(oid)" : "the message of outbound \(oid)")
        }
        return try key.open(sealed: try row.blob("data"), as: part)
    }

    func finishOutbound(_ oid: String, in tx: any StoreTransaction) async throws {
        try await tx.execute(
            """
            UPDATE outbound SET state = 'done' WHERE id = ? AND state NOT IN ('new', 'done')
            AND NOT EXISTS (SELECT 1 FROM queue WHERE outbound_id = ? AND state IN ('pending', 'queued'))
            """, .text(oid), .text(oid))
    }

    func outboundSender(_ oid: String, in tx: any StoreTransaction) async throws -> String {
        let rows = try await tx.query("SELECT kek_id, dek, sender_enc FROM outbound WHERE id = ?", .text(oid))
        guard let row = rows.first else { throw StoreError.notFound("outbound \(oid)") }
        return try await rowKey(table: "outbound", id: oid, row: row, in: tx).openText("sender_enc", row)
    }

    func entries(_ clause: String, _ binds: [StoreValue]) async throws -> [QueueEntry] {
        try await database.transaction(write: false) { tx in
            var opened = EntryOpener()
            return try await self.entries(clause, binds, opener: &opened, in: tx)
        }
    }

    /// The sender and Message-ID of each outbound row, opened once per read.
    struct EntryOpener {
        var senders: [String: (sender: String, messageID: String)] = [:]
    }

    func entries(_ clause: String, _ binds: [StoreValue], opener: inout EntryOpener, in tx: any StoreTransaction) async throws -> [QueueEntry] {
        let rows = try await tx.query(
            """
            SELECT q.*, o.kind AS o_kind, o.wants_dispatched AS o_wants, o.kek_id AS o_kek_id, o.dek AS o_dek,
                o.sender_enc AS o_sender_enc, o.message_id_enc AS o_message_id_enc
            FROM queue q JOIN outbound o ON o.id = q.outbound_id
            """ + " " + clause, binds)
        var out: [QueueEntry] = []
        for row in rows {
            let qid = try row.text("id")
            let oid = try row.text("outbound_id")
            let qk = try await self.rowKey(table: "queue", id: qid, row: row, in: tx)
            if opener.senders[oid] == nil {
                let orow = StoreRow(["kek_id": row["o_kek_id"], "dek": row["o_dek"], "sender_enc": row["o_sender_enc"],
                                     "message_id_enc": row["o_message_id_enc"]])
                let ok = try await self.rowKey(table: "outbound", id: oid, row: orow, in: tx)
                opener.senders[oid] = (try ok.openText("sender_enc", orow), try ok.openText("message_id_enc", orow))
            }
            let (sender, messageID) = opener.senders[oid] ?? ("", "")
            out.append(QueueEntry(
                id: qid, outboundID: oid, kind: OutboundKind(rawValue: try row.text("o_kind")) ?? .message,
                state: QueueState(rawValue: try row.text("state")) ?? .failed, domain: try row.text("domain"),
                recipient: try qk.openText("recipient_enc", row), sender: sender, messageID: messageID,
                wantsDispatched: try row.integer("o_wants") != 0, attempts: Int(try row.integer("attempts")),
                nextAttempt: Timestamp.date(try row.text("next_attempt")), deadline: row.optionalText("deadline").map(Timestamp.date),
                lastError: row.optionalBlob("last_error_enc") == nil ? nil : try qk.openText("last_error_enc", row),
                created: Timestamp.date(try row.text("created")), updated: Timestamp.date(try row.text("updated"))))
        }
        return out
    }
}
