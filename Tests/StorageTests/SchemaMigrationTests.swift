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
                "UPDATE meta SET value = '2' WHERE name = 'schema'",
            ] { try await tx.execute(statement, []) }
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
                "UPDATE meta SET value = '3' WHERE name = 'schema'",
            ] { try await tx.execute(statement, []) }
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
