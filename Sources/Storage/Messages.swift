import DirectCore
import Foundation

extension HISPStore {
    func blindIndex(_ purpose: String, _ value: String) -> [UInt8] { index(purpose, value) }

    /// Stores a message in a mailbox: the exact bytes and its metadata, each
    /// sealed under the message's own data key. Durable when this returns.
    public func addMessage(
        mailbox: DirectAddress, bytes: [UInt8], metadata: MessageMetadata, folder: String = "inbox", state: String = "new",
        received: Date = Date()
    ) async throws -> String {
        guard bytes.count <= StoreLimits.maxMessageBytes else {
            throw StoreError.invalid("the message has \(bytes.count) bytes; the limit is \(StoreLimits.maxMessageBytes)")
        }
        guard metadata.recipients.count <= StoreLimits.maxRecipients else {
            throw StoreError.invalid("the message has \(metadata.recipients.count) recipients; the limit is \(StoreLimits.maxRecipients)")
        }
        return try await database.transaction(write: true) { tx in
            try await self.insertMessage(mailbox: mailbox, bytes: bytes, metadata: metadata, folder: folder, state: state, received: received, in: tx)
        }
    }

    /// `addMessage` inside a caller's transaction.
    func insertMessage(
        mailbox: DirectAddress, bytes: [UInt8], metadata: MessageMetadata, folder: String = "inbox", state: String = "new",
        received: Date = Date(), in tx: any StoreTransaction
    ) async throws -> String {
        let id = Envelope.newID()
        let recipients = metadata.recipients.joined(separator: "\n")
        let boxID = try await self.mailboxID(mailbox, in: tx)
        let rk = try await self.newRowKey(table: "messages", id: id, in: tx)
        try await tx.execute(
            """
            INSERT INTO messages (id, mailbox_id, folder, state, received, size, kek_id, dek, message_id_index, sender_index,
                sender_enc, recipients_enc, subject_enc, message_id_enc, body_enc)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            .text(id), .text(boxID), .text(folder), .text(state), .text(Timestamp.text(received)), .integer(Int64(bytes.count)),
            .integer(rk.kekID), .blob(rk.wrapped),
            metadata.messageID.isEmpty ? .null : .blob(self.blindIndex("message-id", metadata.messageID)),
            metadata.sender.isEmpty ? .null : .blob(self.blindIndex("address", metadata.sender)),
            try rk.seal("sender_enc", text: metadata.sender), try rk.seal("recipients_enc", text: recipients),
            try rk.seal("subject_enc", text: metadata.subject), try rk.seal("message_id_enc", text: metadata.messageID),
            try rk.seal("body_enc", bytes))
        try await self.audit("message.store", "message \(id)", detail: "mailbox \(boxID), folder \(folder), \(bytes.count) bytes", in: tx)
        return id
    }

    /// Whether `mailbox` already holds a message with this Message-ID (a redelivery).
    func hasMessage(mailbox: DirectAddress, messageID: String, in tx: any StoreTransaction) async throws -> Bool {
        guard !messageID.isEmpty else { return false }
        let boxID = try await mailboxID(mailbox, in: tx)
        let rows = try await tx.query("SELECT id FROM messages WHERE mailbox_id = ? AND message_id_index = ? LIMIT 1",
                                      .text(boxID), .blob(blindIndex("message-id", messageID)))
        return !rows.isEmpty
    }

    /// The mailbox's messages, oldest first, with their metadata opened.
    public func messages(mailbox: DirectAddress) async throws -> [MessageSummary] {
        try await database.transaction(write: false) { tx in
            let (box, _, _) = try await self.addressRow(mailbox, in: tx)
            let rows = try await tx.query(
                """
                SELECT id, folder, state, received, size, kek_id, dek, sender_enc, recipients_enc, subject_enc, message_id_enc
                FROM messages WHERE mailbox_id = ? ORDER BY received, id
                """, .text(box.id))
            var out: [MessageSummary] = []
            for row in rows { out.append(try await self.summary(row, mailbox: mailbox, in: tx)) }
            return out
        }
    }

    func summary(_ row: StoreRow, mailbox: DirectAddress, in tx: any StoreTransaction) async throws -> MessageSummary {
        let id = try row.text("id")
        let rk = try await rowKey(table: "messages", id: id, row: row, in: tx)
        let recipients = try rk.openText("recipients_enc", row)
        return MessageSummary(
            id: id, mailbox: mailbox, folder: try row.text("folder"), state: try row.text("state"),
            received: Timestamp.date(try row.text("received")), size: Int(try row.integer("size")),
            metadata: MessageMetadata(
                sender: try rk.openText("sender_enc", row),
                recipients: recipients.isEmpty ? [] : recipients.split(separator: "\n").map(String.init),
                subject: try rk.openText("subject_enc", row), messageID: try rk.openText("message_id_enc", row)))
    }

    /// A message's exact stored bytes, with its summary. Reading is audited.
    public func message(_ id: String) async throws -> (MessageSummary, [UInt8]) {
        guard id.utf8.count == 32, id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw StoreError.invalid("\(id) is not a message id (32 lowercase hex digits, as `hisp message list` prints)")
        }
        return try await database.transaction(write: true) { tx in
            let rows = try await tx.query("SELECT * FROM messages WHERE id = ?", .text(id))
            guard let row = rows.first else { throw StoreError.notFound("message \(id)") }
            let boxRows = try await tx.query("SELECT * FROM addresses WHERE id = ?", .text(try row.text("mailbox_id")))
            guard let boxRow = boxRows.first else { throw StoreError.integrity("message \(id): its mailbox is missing") }
            let (box, _) = try await self.addressRecord(boxRow, in: tx)
            let summary = try await self.summary(row, mailbox: box.address, in: tx)
            let rk = try await self.rowKey(table: "messages", id: id, row: row, in: tx)
            let body = try rk.open("body_enc", row)
            guard body.count == summary.size else { throw StoreError.integrity("messages \(id): size differs from the stored body") }
            try await self.audit("message.read", "message \(id)", in: tx)
            return (summary, body)
        }
    }
}
