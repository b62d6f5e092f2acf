import Crypto
import DirectCore
import Foundation
import SQLiteStore
import Testing
@testable import Storage

/// A store written by an older hisp opens with this one and loses nothing.
@Suite struct SchemaMigrationTests {
    let dir: URL
    let key = MasterKeyMaterial.keyFile(SymmetricKey(size: .bits256), origin: "test key")

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    var path: String { dir.appendingPathComponent("hisp.sqlite").path }

    func columns(_ table: String, _ database: any StoreDatabase) async throws -> [String] {
        try await database.transaction(write: false) { tx in
            try await tx.query("SELECT name FROM pragma_table_info(?)", .text(table)).map { try $0.text("name") }
        }
    }

    /// The queue as versions 1 to 5 made it (no leases).
    static let version5Queue = [
        "ALTER TABLE queue DROP COLUMN lease_holder",
        "ALTER TABLE queue DROP COLUMN lease_until",
    ]

    /// The messages table as versions 1 to 4 made it (a flat list with free-text folder and state), from today's rows.
    static let version4Messages = version5Queue + [
        """
        CREATE TABLE messages_v4 (id TEXT PRIMARY KEY, mailbox_id TEXT NOT NULL REFERENCES addresses(id), folder TEXT NOT NULL,
            state TEXT NOT NULL, received TEXT NOT NULL, size INTEGER NOT NULL, kek_id INTEGER NOT NULL, dek BLOB NOT NULL,
            message_id_index BLOB, sender_index BLOB, sender_enc BLOB NOT NULL, recipients_enc BLOB NOT NULL, subject_enc BLOB NOT NULL,
            message_id_enc BLOB NOT NULL, body_enc BLOB NOT NULL)
        """,
        """
        INSERT INTO messages_v4 SELECT id, mailbox_id, 'inbox', 'new', received, size, kek_id, dek, message_id_index, sender_index,
            sender_enc, recipients_enc, subject_enc, message_id_enc, body_enc FROM messages
        """,
        "DROP TABLE messages",
        "DROP TABLE expunged",
        "DROP TABLE folders",
        "ALTER TABLE messages_v4 RENAME TO messages",
        "CREATE INDEX messages_mailbox ON messages (mailbox_id, received)",
        "CREATE INDEX messages_message_id ON messages (message_id_index)",
        "DELETE FROM meta WHERE name = 'uidvalidity_last'",
    ]

    @Test func version4MailboxesGetFoldersAndUIDsInTheOrderReceivedAndStayReadable() async throws {
        let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: path, create: true), material: key, actor: "test")
        _ = try await store.addDomain("a.example", caCertificate: [1], caPrivateKey: [2], certificate: [3], privateKey: [4],
                                      dns: DomainDNS(host: "hisp.a.example"))
        let alice = DirectAddress("alice@a.example")!, bob = DirectAddress("bob@a.example")!
        for a in [alice, bob] { _ = try await store.addAddress(a, certificate: [5], privateKey: [6], passwordHash: nil) }
        var bodies: [String: [UInt8]] = [:]
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        // Stored out of order: UIDs follow the time received, not the order written.
        for (n, offset) in [3, 1, 2].enumerated() {
            let body = Array("Subject: \(n)\r\n\r\nbody \(n)\r\n".utf8)
            let id = try await store.addMessage(mailbox: alice, bytes: body, metadata: MessageMetadata(sender: "x@b.example", recipients: [], subject: "\(offset)", messageID: "<\(n)@b>"),
                                                received: start.addingTimeInterval(Double(offset)))
            bodies[id] = body
        }
        try await store.close()
        let database = try await SQLiteDatabase.open(path: path, create: false)
        try await database.transaction(write: true) { tx in
            for statement in Self.version4Messages + ["UPDATE meta SET value = '4' WHERE name = 'schema'"] { try await tx.execute(statement, []) }
        }
        try await database.close()

        let migrated = try await HISPStore.open(database: try await SQLiteDatabase.open(path: path, create: false), material: key, actor: "test")
        let folders = try await migrated.folders(mailbox: alice)
        #expect(folders.map(\.name) == ["INBOX", "Sent", "Drafts", "Trash", "Archive"])
        #expect(folders.map(\.messages) == [3, 0, 0, 0, 0])
        #expect(folders.first?.uidNext == 4)
        #expect(folders.first?.unseen == 3)
        #expect(try await migrated.folders(mailbox: bob).map(\.messages) == [0, 0, 0, 0, 0])
        let inbox = try await migrated.messages(mailbox: alice, folder: "INBOX", uids: [1...UInt32.max])
        #expect(inbox.map(\.uid) == [1, 2, 3])
        #expect(inbox.map(\.metadata.subject) == ["1", "2", "3"])
        for (id, body) in bodies { #expect(try await migrated.message(id).1 == body) }
        #expect(try await migrated.verifyCiphertexts() > 0)
        // New mail continues the UIDs; a restart keeps them.
        _ = try await migrated.addMessage(mailbox: alice, bytes: Array("Subject: new\r\n\r\nx\r\n".utf8),
                                          metadata: MessageMetadata(sender: "x@b.example", recipients: [], subject: "new", messageID: "<new@b>"))
        try await migrated.close()
        let reopened = try await HISPStore.open(database: try await SQLiteDatabase.open(path: path, create: false), material: key, actor: "test")
        let after = try await reopened.messages(mailbox: alice, folder: "inbox", uids: [1...UInt32.max])
        #expect(after.map(\.uid) == [1, 2, 3, 4])
        #expect(try await reopened.folderStatus(mailbox: alice, folder: "INBOX").uidValidity == folders.first?.uidValidity)
        #expect(try await reopened.verifyAudit().failure == nil)
        try await reopened.close()
    }

    @Test func version5QueueRowsGetFreeLeasesAndAreSentAfterTheUpgrade() async throws {
        let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: path, create: true), material: key, actor: "test")
        var draft = OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                  message: Array("Subject: old\r\n\r\nbody\r\n".utf8), messageID: "<old@a.example>")
        draft.prepared = PreparedWire(wire: Array("wire".utf8), discovered: [])
        let oid = try await store.enqueue(draft)
        try await store.close()
        let database = try await SQLiteDatabase.open(path: path, create: false)
        try await database.transaction(write: true) { tx in
            for statement in Self.version5Queue + ["UPDATE meta SET value = '5' WHERE name = 'schema'"] { try await tx.execute(statement, []) }
        }
        #expect(try await !columns("queue", database).contains("lease_holder"))
        try await database.close()

        let migratedDatabase = try await SQLiteDatabase.open(path: path, create: false)
        let migrated = try await HISPStore.open(database: migratedDatabase, material: key, actor: "test")
        #expect(try await columns("queue", migratedDatabase).suffix(2) == ["lease_holder", "lease_until"])
        let claimed = try await migrated.claimDue(now: Date(), limit: 10, lease: QueueLease(holder: "n", until: Date().addingTimeInterval(60))) { due in
            (due.map(\.id), ())
        }.claimed
        #expect(claimed.map(\.outboundID) == [oid])
        #expect(try await migrated.wires([oid])[oid].flatMap { try? $0.get() } == Array("wire".utf8))
        try await migrated.close()
    }

    @Test func version2OutboundMessagesMoveOutOfTheOutboundRowAndStayReadable() async throws {
        let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: path, create: true), material: key, actor: "test")
        let waiting = Array("Subject: waiting\r\n\r\nnot yet signed\r\n".utf8)
        let ready = Array("Subject: ready\r\n\r\nsigned\r\n".utf8)
        let wire = Array("Content-Type: application/pkcs7-mime\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n".utf8)
        let waitingID = try await store.enqueue(OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                                              message: waiting, messageID: "<waiting@a.example>"))
        let readyID = try await store.enqueue(OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                                            message: ready, messageID: "<ready@a.example>"))
        try await store.prepared(readyID, messageID: "<ready@a.example>", wire: wire, refused: [], dsn: nil)
        try await store.close()

        // The same file as version 2 wrote it: both parts in the outbound row.
        let database = try await SQLiteDatabase.open(path: path, create: false)
        try await database.transaction(write: true) { tx in
            for statement in [
                "ALTER TABLE outbound ADD COLUMN body_enc BLOB",
                "ALTER TABLE outbound ADD COLUMN wire_enc BLOB",
                "UPDATE outbound SET body_enc = (SELECT data FROM outbound_blobs WHERE outbound_id = outbound.id AND part = 'body_enc')",
                "UPDATE outbound SET wire_enc = (SELECT data FROM outbound_blobs WHERE outbound_id = outbound.id AND part = 'wire_enc')",
                "DROP TABLE outbound_blobs",
            ] + Self.version4Messages + ["UPDATE meta SET value = '2' WHERE name = 'schema'"] { try await tx.execute(statement, []) }
        }
        #expect(try await columns("outbound", database).contains("body_enc"))
        try await database.close()

        let migrated = try await HISPStore.open(database: try await SQLiteDatabase.open(path: path, create: false), material: key, actor: "test")
        #expect(try await !columns("outbound", migrated.database).contains("body_enc"))
        #expect(try await !columns("outbound", migrated.database).contains("wire_enc"))
        let pending = try await migrated.pendingSubmissions()
        #expect(pending.map(\.id) == [waitingID])
        #expect(pending.first?.message == waiting)
        let wires = try await migrated.wires([readyID])
        #expect(try wires[readyID]?.get() == wire)
        try await migrated.close()
    }

    @Test func version3TraceRowsKeepTheirOrderAndKeysWithoutTheIdIndex() async throws {
        let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: path, create: true), material: key, actor: "test")
        let messageID = "<traced@a.example>"
        _ = try await store.enqueue(OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                                  message: Array("Subject: t\r\n\r\nx\r\n".utf8), messageID: messageID))
        for step in ["discovery", "security", "delivery", "notification"] {
            try await store.addTrace(messageID, step: step, outcome: "ok", detail: "\(step) detail")
        }
        let before = try await store.trace(messageID: messageID).events
        #expect(before.count == 5)
        try await store.close()

        // The trace table as version 3 made it: a unique index on its ids.
        let database = try await SQLiteDatabase.open(path: path, create: false)
        try await database.transaction(write: true) { tx in
            for statement in [
                """
                CREATE TABLE trace_v3 (id TEXT PRIMARY KEY, message_id_index BLOB NOT NULL, at TEXT NOT NULL, step TEXT NOT NULL,
                    outcome TEXT NOT NULL, kek_id INTEGER NOT NULL, dek BLOB NOT NULL, detail_enc BLOB NOT NULL)
                """,
                "INSERT INTO trace_v3 (rowid, id, message_id_index, at, step, outcome, kek_id, dek, detail_enc) SELECT rowid, * FROM trace",
                "DROP TABLE trace",
                "ALTER TABLE trace_v3 RENAME TO trace",
                "CREATE INDEX trace_message ON trace (message_id_index, at)",
            ] + Self.version4Messages + ["UPDATE meta SET value = '3' WHERE name = 'schema'"] { try await tx.execute(statement, []) }
        }
        try await database.close()

        let migrated = try await HISPStore.open(database: try await SQLiteDatabase.open(path: path, create: false), material: key, actor: "test")
        let indexes = try await migrated.database.transaction(write: false) { tx in
            try await tx.query("SELECT name FROM pragma_index_list('trace')").map { try $0.text("name") }
        }
        #expect(indexes == ["trace_message"])
        let after = try await migrated.trace(messageID: messageID).events
        #expect(after.map(\.step) == before.map(\.step))
        #expect(after.map(\.detail) == before.map(\.detail))
        // Key rotation finds trace rows without an index on their ids, and they still open afterwards.
        let newKey = MasterKeyMaterial.keyFile(SymmetricKey(size: .bits256), origin: "new test key")
        _ = try await migrated.rotate(to: newKey, batchSize: 2)
        try await migrated.addTrace(messageID, step: "late", outcome: "ok", detail: "after rotation")
        #expect(try await migrated.trace(messageID: messageID).events.map(\.step) == before.map(\.step) + ["late"])
        try await migrated.close()
        let reopened = try await HISPStore.open(database: try await SQLiteDatabase.open(path: path, create: false), material: newKey, actor: "test")
        #expect(try await reopened.trace(messageID: messageID).events.map(\.detail) == before.map(\.detail) + ["after rotation"])
        try await reopened.close()
    }
}
