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
}
