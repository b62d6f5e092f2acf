import Crypto
import DirectCore
import Foundation
import SQLiteStore
import Testing
@testable import Storage

/// Mailboxes with folders, UIDs, flags and modification sequences (RFC 9051, RFC 7162), over a real SQLite file.
@Suite struct MailboxTests {
    let dir: URL
    let key = MasterKeyMaterial.keyFile(SymmetricKey(size: .bits256), origin: "test key")
    let alice = DirectAddress("alice@direct.example.org")!
    let bob = DirectAddress("bob@direct.example.org")!

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-mailbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    var path: String { dir.appendingPathComponent("hisp.sqlite").path }

    func newStore() async throws -> (HISPStore, SQLiteDatabase) {
        let database = try await SQLiteDatabase.open(path: path, create: true)
        let store = try await HISPStore.create(database: database, material: key, actor: "test")
        _ = try await store.addDomain("direct.example.org", caCertificate: [1], caPrivateKey: [2], certificate: [3], privateKey: [4],
                                      dns: DomainDNS(host: "hisp.direct.example.org"))
        for a in [alice, bob] { _ = try await store.addAddress(a, certificate: [5], privateKey: [6], passwordHash: nil) }
        return (store, database)
    }

    func reopen() async throws -> (HISPStore, SQLiteDatabase) {
        let database = try await SQLiteDatabase.open(path: path, create: false)
        return (try await HISPStore.open(database: database, material: key, actor: "test"), database)
    }

    @discardableResult
    func add(_ store: HISPStore, _ n: Int, to mailbox: DirectAddress? = nil, folder: String = "INBOX") async throws -> String {
        try await store.addMessage(
            mailbox: mailbox ?? alice, bytes: Array("Subject: m\(n)\r\n\r\nbody \(n)\r\n".utf8),
            metadata: MessageMetadata(sender: "carol@x.example", recipients: [alice.description], subject: "m\(n)", messageID: "<\(n)@x>"),
            folder: folder)
    }

    @Test func uidsAscendAreNeverReusedAndSurviveARestart() async throws {
        let (store, _) = try await newStore()
        for n in 1...5 { try await add(store, n) }
        _ = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [4...5], .add, flags: .deleted)
        #expect(try await store.expunge(mailbox: alice, folder: "INBOX") == [4, 5])
        try await add(store, 6)
        let listed = try await store.messages(mailbox: alice, folder: "INBOX", uids: [1...UInt32.max])
        // RFC 9051 2.3.1.1: the new message gets 6, not the expunged 4.
        #expect(listed.map(\.uid) == [1, 2, 3, 6])
        let before = try await store.folderStatus(mailbox: alice, folder: "INBOX")
        #expect(before.uidNext == 7)
        // Another mailbox's UIDs are its own.
        try await add(store, 7, to: bob)
        #expect(try await store.messages(mailbox: bob, folder: "INBOX", uids: [1...10]).map(\.uid) == [1])
        try await store.close()

        let (again, _) = try await reopen()
        #expect(try await again.folderStatus(mailbox: alice, folder: "INBOX") == before)
        #expect(try await again.messages(mailbox: alice, folder: "INBOX", uids: [1...UInt32.max]).map(\.uid) == [1, 2, 3, 6])
        try await again.close()
    }

    @Test func flagsChangeWithModificationSequencesAndConditionalStoresFail() async throws {
        let (store, _) = try await newStore()
        for n in 1...3 { try await add(store, n) }
        let start = try await store.folderStatus(mailbox: alice, folder: "INBOX")
        #expect(start.unseen == 3)

        let seen = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [1...2], .add, flags: [.seen, .flagged], keywords: ["$Referral"])
        #expect(seen.updated.map(\.flags) == [[.seen, .flagged], [.seen, .flagged]])
        #expect(seen.updated.allSatisfy { $0.modSeq > start.highestModSeq && $0.keywords == ["$Referral"] })
        let afterSeen = try await store.folderStatus(mailbox: alice, folder: "INBOX")
        #expect(afterSeen.unseen == 1)

        // Nothing to change: the sequence stays.
        let again = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [1...1], .add, flags: .seen)
        #expect(again.updated.first?.modSeq == seen.updated.first?.modSeq)
        #expect(try await store.folderStatus(mailbox: alice, folder: "INBOX").highestModSeq == afterSeen.highestModSeq)

        let removed = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [2...2], .remove, flags: .flagged, keywords: ["$Referral"])
        #expect(removed.updated.first?.flags == .seen && removed.updated.first?.keywords == [])
        let replaced = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [3...3], .replace, flags: .answered)
        #expect(replaced.updated.first?.flags == .answered)

        // RFC 7162 3.1.3: UNCHANGEDSINCE refuses a message changed after it.
        let conditional = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [1...3], .add, flags: .draft,
                                                     unchangedSince: afterSeen.highestModSeq)
        #expect(conditional.failed == [2, 3])
        #expect(conditional.updated.map(\.uid) == [1])

        let changes = try await store.changes(mailbox: alice, folder: "INBOX", since: afterSeen.highestModSeq)
        #expect(changes.changed.map(\.uid) == [1, 2, 3])
        #expect(changes.expunged.isEmpty)
        #expect(changes.status.highestModSeq == changes.changed.map(\.modSeq).max())

        await #expect(throws: StoreError.self) {
            _ = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [1...1], .add, flags: [], keywords: ["bad keyword"])
        }
        try await store.close()
    }

    @Test func moveCopyAndExpungeKeepBodiesAndReportChanges() async throws {
        let (store, _) = try await newStore()
        var ids: [String] = []
        for n in 1...4 { ids.append(try await add(store, n)) }
        let (body2, body3) = (try await store.message(ids[1]).1, try await store.message(ids[2]).1)
        let mark = try await store.folderStatus(mailbox: alice, folder: "INBOX").highestModSeq
        _ = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [2...2], .add, flags: .flagged)

        let moved = try await store.moveMessages(mailbox: alice, from: "INBOX", uids: [2...3], to: "Archive")
        #expect(moved.pairs.map(\.0) == [2, 3] && moved.pairs.map(\.1) == [1, 2])
        #expect(moved.uidValidity == (try await store.folderStatus(mailbox: alice, folder: "Archive")).uidValidity)
        let archived = try await store.messages(mailbox: alice, folder: "Archive", uids: [1...UInt32.max])
        #expect(archived.map(\.flags) == [.flagged, []])
        #expect(try await store.message(mailbox: alice, folder: "Archive", uid: 1).1 == body2)
        #expect(try await store.message(mailbox: alice, folder: "Archive", uid: 2).1 == body3)

        let copied = try await store.copyMessages(mailbox: alice, from: "Archive", uids: [1...1], to: "Trash")
        #expect(copied.pairs.map(\.1) == [1])
        let copy = try await store.messages(mailbox: alice, folder: "Trash", uids: [1...1])
        #expect(copy.first?.flags == .flagged && copy.first?.id != archived.first?.id)
        #expect(try await store.message(mailbox: alice, folder: "Trash", uid: 1).1 == body2)

        // The source reports the moved UIDs as expunged (RFC 6851 3.3) after the mark.
        let inbox = try await store.changes(mailbox: alice, folder: "INBOX", since: mark)
        #expect(inbox.expunged == [2, 3])
        #expect(inbox.status.messages == 2)
        // UID EXPUNGE takes only the named \Deleted messages.
        _ = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [1...1, 4...4], .add, flags: .deleted)
        #expect(try await store.expunge(mailbox: alice, folder: "INBOX", uids: [4...4]) == [4])
        #expect(try await store.messages(mailbox: alice, folder: "INBOX", uids: [1...UInt32.max]).map(\.uid) == [1])
        try await store.close()
    }

    @Test func userFoldersAreSealedAndTheirNamesChecked() async throws {
        let (store, _) = try await newStore()
        let created = try await store.createFolder(mailbox: alice, name: "Patients/Jane Doe")
        #expect(created.name == "Patients/Jane Doe")
        #expect(try await store.folders(mailbox: alice).map(\.name) == ["INBOX", "Sent", "Drafts", "Trash", "Archive", "Patients", "Patients/Jane Doe"])
        try await add(store, 1, folder: "Patients/Jane Doe")
        await #expect(throws: StoreError.exists("folder Patients/Jane Doe")) { _ = try await store.createFolder(mailbox: alice, name: "Patients/Jane Doe") }
        await #expect(throws: StoreError.self) { _ = try await store.createFolder(mailbox: alice, name: "a//b") }
        await #expect(throws: StoreError.self) { _ = try await store.createFolder(mailbox: alice, name: "bad\u{7}name") }
        await #expect(throws: StoreError.self) { try await store.deleteFolder(mailbox: alice, name: "INBOX") }
        await #expect(throws: StoreError.self) { try await store.deleteFolder(mailbox: alice, name: "Patients") }
        // Another mailbox does not see it.
        await #expect(throws: StoreError.notFound("folder Patients/Jane Doe")) {
            _ = try await store.folderStatus(mailbox: self.bob, folder: "Patients/Jane Doe")
        }

        try await store.renameFolder(mailbox: alice, from: "Patients", to: "Clinic")
        #expect(try await store.folders(mailbox: alice).map(\.name).suffix(2) == ["Clinic", "Clinic/Jane Doe"])
        #expect(try await store.messages(mailbox: alice, folder: "Clinic/Jane Doe", uids: [1...1]).count == 1)
        try await store.close()
        // The name is sealed: not in the file.
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        let wal = (try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data()
        #expect(file.range(of: Data("Jane Doe".utf8)) == nil && wal.range(of: Data("Jane Doe".utf8)) == nil)

        let (again, _) = try await reopen()
        try await again.deleteFolder(mailbox: alice, name: "Clinic/Jane Doe")
        try await again.deleteFolder(mailbox: alice, name: "Clinic")
        #expect(try await again.folders(mailbox: alice).count == 5)
        #expect(try await again.verifyAudit().failure == nil)
        try await again.close()
    }

    @Test func aPageOpensOnlyItsRowsNewestFirst() async throws {
        let (store, _) = try await newStore()
        for n in 1...12 { try await add(store, n) }
        let first = try await store.page(mailbox: alice, folder: "INBOX", number: 1, size: 5)
        #expect(first.total == 12)
        #expect(first.messages.map(\.uid) == [12, 11, 10, 9, 8])
        #expect(try await store.page(mailbox: alice, folder: "INBOX", number: 3, size: 5).messages.map(\.uid) == [2, 1])
        #expect(try await store.page(mailbox: alice, folder: "INBOX", number: 4, size: 5).messages.isEmpty)
        await #expect(throws: StoreError.self) { _ = try await store.page(mailbox: alice, folder: "INBOX", number: 0, size: 5) }
        try await store.close()
    }

    @Test func aChangeIsSignalledAfterItIsDurable() async throws {
        let (store, _) = try await newStore()
        let box = try await store.mailboxKey(alice)
        let stream = store.signals.subscribe(box)
        #expect(store.signals.waiting(box) == 1)
        let mark = try await store.folderStatus(mailbox: alice, folder: "INBOX").highestModSeq
        try await add(store, 1)
        var iterator = stream.makeAsyncIterator()
        _ = await iterator.next()
        // What the waiter reads once woken is already there.
        let changes = try await store.changes(mailbox: alice, folder: "INBOX", since: mark)
        #expect(changes.changed.map(\.uid) == [1])
        // Bob's mailbox changing does not wake Alice's waiter: the next wake-up is Alice's flag change.
        try await add(store, 2, to: bob)
        _ = try await store.storeFlags(mailbox: alice, folder: "INBOX", uids: [1...1], .add, flags: .seen)
        _ = await iterator.next()
        #expect(try await store.changes(mailbox: alice, folder: "INBOX", since: changes.status.highestModSeq).changed.map(\.flags) == [.seen])
        try await store.close()
    }

    @Test func readsAreAuditedWithoutAWriteEach() async throws {
        let (store, database) = try await newStore()
        // The test writes the waiting events itself: no timer may do it behind its back.
        store.reads.delay = .seconds(3600)
        var ids: [String] = []
        for n in 1...20 { ids.append(try await add(store, n)) }
        await store.flushReadEvents()
        let before = database.commitCounts
        for id in ids { _ = try await store.message(id, reader: "alice@direct.example.org over test") }
        #expect(database.commitCounts.commits == before.commits)
        await store.flushReadEvents()
        #expect(database.commitCounts.commits == before.commits + 1)
        let events = try await store.auditEvents(limit: 1000).map(\.event).filter { $0.action == "message.read" }
        #expect(events.count == 20)
        #expect(events.allSatisfy { $0.actor == "alice@direct.example.org over test" })
        // Closing writes what is waiting.
        _ = try await store.message(ids[0])
        try await store.close()
        let (again, _) = try await reopen()
        #expect(try await again.auditEvents(limit: 1000).filter { $0.event.action == "message.read" }.count == 21)
        #expect(try await again.verifyAudit().failure == nil)
        try await again.close()
    }
}
