import Crypto
import DirectCore
import Foundation
import SQLiteStore
import Testing
@testable import Storage

/// The store's crypto and state machines in-process, over a real SQLite file.
@Suite struct StoreTests {
    let dir: URL
    let keyA = MasterKeyMaterial.keyFile(SymmetricKey(size: .bits256), origin: "key A")
    let keyB = MasterKeyMaterial.keyFile(SymmetricKey(size: .bits256), origin: "key B")
    let alice = DirectAddress("alice@direct.example.org")!

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    var path: String { dir.appendingPathComponent("hisp.sqlite").path }

    func open(_ material: MasterKeyMaterial) async throws -> HISPStore {
        let database = try await SQLiteDatabase.open(path: path, create: false)
        do {
            return try await HISPStore.open(database: database, material: material, actor: "test")
        } catch {
            try await database.close()
            throw error
        }
    }

    /// A store under key A with one domain, one mailbox and `messages` messages.
    func populated(messages: Int) async throws -> (HISPStore, [String: [UInt8]]) {
        let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: path, create: true), material: keyA, actor: "test")
        _ = try await store.addDomain("direct.example.org", caCertificate: [1], caPrivateKey: [2], certificate: [3], privateKey: [4],
                                  dns: DomainDNS(host: "hisp.direct.example.org", ipv4: "192.0.2.1"))
        _ = try await store.addAddress(alice, certificate: [5], privateKey: [6, 7], passwordHash: nil)
        var bodies: [String: [UInt8]] = [:]
        for n in 0..<messages {
            let body = Array("Subject: \(n)\r\n\r\nbody \(n)\r\n".utf8)
            let meta = MessageMetadata(sender: "bob@x.example", recipients: [alice.description], subject: "\(n)", messageID: "<\(n)@x>")
            bodies[try await store.addMessage(mailbox: alice, bytes: body, metadata: meta)] = body
        }
        return (store, bodies)
    }

    func expectReadable(_ store: HISPStore, _ bodies: [String: [UInt8]]) async throws {
        for (id, body) in bodies { #expect(try await store.message(id).1 == body) }
        #expect(try await store.credential(for: .address(alice)).privateKeyPKCS8 == [6, 7])
        #expect(try await store.verifyAudit().failure == nil)
    }

    @Test func anInterruptedRotationLeavesTheOldKeyWorkingAndResumes() async throws {
        let (store, bodies) = try await populated(messages: 7)
        await #expect(throws: RotationInterrupted.self) {
            _ = try await store.rotate(to: keyB, batchSize: 2, interruptAfterBatches: 2)
        }
        try await store.close()
        // Mid-rotation some rows are under the new KEK, some under the old: the old key reads all of them.
        let old = try await open(keyA)
        try await expectReadable(old, bodies)
        // The new key is refused until the rotation is finished, with the way out named.
        await #expect { try await open(keyB) } throws: { error in
            (error as? StoreError).map { "\($0)".contains("rotation to this key is unfinished") } ?? false
        }
        // A write during the rotation is wrapped under the new KEK, so finishing loses nothing.
        let late = try await old.addMessage(mailbox: alice, bytes: Array("late".utf8),
                                            metadata: MessageMetadata(sender: "", recipients: [], subject: "", messageID: ""))
        let report = try await old.rotate(to: keyB, batchSize: 2)
        #expect(report.resumed)
        try await old.close()
        await #expect { try await open(keyA) } throws: { error in
            (error as? StoreError).map { if case .wrongKey = $0 { true } else { false } } ?? false
        }
        let new = try await open(keyB)
        var all = bodies
        all[late] = Array("late".utf8)
        try await expectReadable(new, all)
        try await new.close()
    }

    @Test func resumingWithADifferentNewKeyIsRefused() async throws {
        let (store, _) = try await populated(messages: 5)
        await #expect(throws: RotationInterrupted.self) { _ = try await store.rotate(to: keyB, batchSize: 1, interruptAfterBatches: 1) }
        let keyC = MasterKeyMaterial.keyFile(SymmetricKey(size: .bits256), origin: "key C")
        await #expect { _ = try await store.rotate(to: keyC) } throws: { error in
            "\(error)".contains("started to a different new key")
        }
        try await store.close()
    }

    func backup(_ plaintext: [UInt8], chunkSize: Int = 4096) throws -> (prefix: [UInt8], chunks: [[UInt8]]) {
        guard case .keyFile(let master, _) = keyA else { throw StoreError.invalid("key") }
        var writer = try BackupWriter(masterKey: master, kind: "key-file", kdf: nil, plaintextBytes: Int64(plaintext.count), chunkSize: chunkSize)
        var chunks: [[UInt8]] = []
        var offset = 0
        while offset < plaintext.count {
            let end = min(offset + chunkSize, plaintext.count)
            chunks.append(try writer.seal(plaintext[offset..<end], final: end == plaintext.count))
            offset = end
        }
        return (writer.prefix, chunks)
    }

    func restore(_ bytes: [UInt8], material: MasterKeyMaterial? = nil) throws -> [UInt8] {
        var reader = BackupReader(material: material ?? keyA)
        var out: [UInt8] = []
        // Fed in odd pieces, as a file is read.
        var i = 0
        while i < bytes.count {
            let end = min(i + 1000, bytes.count)
            for chunk in try reader.feed(bytes[i..<end]) { out += chunk }
            i = end
        }
        try reader.finish()
        return out
    }

    @Test func backupChunksRoundTripAndEveryAlterationIsFound() async throws {
        let plain = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let (prefix, chunks) = try backup(plain)
        #expect(chunks.count == 3)
        #expect(try restore(prefix + chunks.joined()) == plain)
        // Reordered chunks.
        #expect(throws: StoreError.self) { try restore(prefix + chunks[1] + chunks[0] + chunks[2]) }
        // The final chunk dropped: the rest authenticates, but the end is missing.
        #expect { try restore(prefix + chunks[0] + chunks[1]) } throws: { "\($0)".contains("truncated") }
        // A non-final chunk presented as the last one is not accepted as final.
        #expect { try restore(prefix + chunks[0]) } throws: { "\($0)".contains("truncated") }
        // An altered header (its creation time) breaks every chunk's binding to it.
        var header = prefix
        let created = Array("\"created\":\"20".utf8)
        let at = (0..<(header.count - created.count)).first { Array(header[$0..<($0 + created.count)]) == created }!
        header[at + created.count] = UInt8(ascii: "3")
        #expect { try restore(header + chunks.joined()) } throws: { "\($0)".contains("integrity check failed: backup chunk 0") }
        // Another key.
        #expect { try restore(prefix + chunks.joined(), material: keyB) } throws: { "\($0)" == "wrong key: key B does not open this backup" }
    }

    @Test func passwordHashesVerifyOnlyTheirPassword() async throws {
        let stored = try PasswordHash.make("correct horse battery")
        #expect(stored.hasPrefix("scrypt$15$8$1$"))
        #expect(PasswordHash.verify("correct horse battery", against: stored))
        #expect(!PasswordHash.verify("correct horse batterz", against: stored))
        #expect(throws: StoreError.self) { try PasswordHash.make("short") }
    }

    @Test func theMXRecipientCheckTellsAHostedMailboxFromAMissingOneAndAForeignDomain() async throws {
        let (store, _) = try await populated(messages: 0)
        #expect(try await store.lookupMailbox(alice) == .exists)
        #expect(try await store.lookupMailbox(DirectAddress("ALICE@direct.example.org")!) == .exists)
        #expect(try await store.lookupMailbox(DirectAddress("bob@direct.example.org")!) == .noMailbox)
        #expect(try await store.lookupMailbox(DirectAddress("alice@elsewhere.example")!) == .notHosted)
        try await store.close()
    }

    /// Message paths look a mailbox up without opening its certificate, but
    /// still check the sealed address against the index that found the row.
    @Test func aMailboxRowMovedUnderAnotherAddressIsRefusedWhenStoringOrListingItsMessages() async throws {
        let (store, _) = try await populated(messages: 1)
        let bob = DirectAddress("bob@direct.example.org")!
        _ = try await store.addAddress(bob, certificate: [8], privateKey: [9], passwordHash: nil)
        let meta = MessageMetadata(sender: "carol@x.example", recipients: [bob.description], subject: "s", messageID: "<m@x>")
        _ = try await store.addMessage(mailbox: bob, bytes: Array("Subject: s\r\n\r\nb\r\n".utf8), metadata: meta)
        // Swap the two rows' address indexes (through a placeholder: the index is unique).
        let a = store.blindIndex("address", alice.description), b = store.blindIndex("address", bob.description)
        try await store.database.transaction(write: true) { tx in
            try await tx.execute("UPDATE addresses SET address_index = ? WHERE address_index = ?", .blob([0]), .blob(a))
            try await tx.execute("UPDATE addresses SET address_index = ? WHERE address_index = ?", .blob(a), .blob(b))
            try await tx.execute("UPDATE addresses SET address_index = ? WHERE address_index = ?", .blob(b), .blob([0]))
        }
        for mailbox in [alice, bob] {
            await #expect { _ = try await store.addMessage(mailbox: mailbox, bytes: [0x41], metadata: meta) } throws: {
                "\($0)".contains("the sealed address does not match its index")
            }
            await #expect { _ = try await store.messages(mailbox: mailbox) } throws: {
                "\($0)".contains("the sealed address does not match its index")
            }
        }
        try await store.close()
    }

    @Test func blindIndexesFindAddressesCaseInsensitivelyWithoutHoldingThem() async throws {
        let (store, _) = try await populated(messages: 1)
        let found = try await store.address(DirectAddress("ALICE@Direct.Example.org")!)
        #expect(found.address.description == "alice@direct.example.org")
        await #expect(throws: StoreError.self) { try await store.address(DirectAddress("bob@direct.example.org")!) }
        try await store.close()
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(file.range(of: Data("alice".utf8)) == nil)
    }

    /// Stores written by earlier versions are searched by these values: the
    /// index is HMAC-SHA-256 over purpose, a zero byte and the lowercased
    /// value (known answers from Python's hmac module), the same for every
    /// call on one key.
    @Test func blindIndexesKeepTheirFormat() {
        let index = BlindIndex(key: SymmetricKey(data: (0..<32).map { UInt8($0) }))
        let hex = { (b: [UInt8]) in b.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(index("message-id", "<Ref-1@Direct.Example.ORG>")) == "6b77453d22a6631d1979eab3bffcc33a3eccd4c6de667426b881779d88d42fe8")
        #expect(hex(index("address", "alice@direct.example.org")) == "c76b4d9d1e61ac9d4e4278064b9efcbac8b513053647d30ff11cf63110690f51")
        #expect(index("message-id", "<ref-1@direct.example.org>") == index("message-id", "<Ref-1@Direct.Example.ORG>"))
    }
}

/// The queue's record of one message when its recipient's HISP answers
/// before the connection that carried it has recorded its outcomes.
@Suite struct QueueRaceTests {
    /// A new store in a directory of its own, which the caller removes.
    static func freshStore() async throws -> (store: HISPStore, database: SQLiteDatabase, dir: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-queue-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let database = try await SQLiteDatabase.open(path: dir.appendingPathComponent("hisp.sqlite").path, create: true)
        let store = try await HISPStore.create(database: database, material: .keyFile(SymmetricKey(size: .bits256), origin: "test key"), actor: "test")
        return (store, database, dir)
    }

    @Test func aDeliveryRecordedAfterItsMDNStaysInTheTraceAndLeavesTheStateFinal() async throws {
        let (store, _, dir) = try await Self.freshStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = "<race@a.example>"
        let oid = try await store.enqueue(OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                                        message: Array("Subject: race\r\n\r\nbody\r\n".utf8), messageID: id))
        try await store.prepared(oid, messageID: id, wire: Array("wire".utf8), refused: [], dsn: nil)
        let entry = try #require(try await store.queueEntries().first { $0.outboundID == oid })
        #expect(entry.state == .queued)

        // The processed MDN is applied while the delivery is not yet recorded ...
        let match = try await store.applyNotification(originalMessageID: id, recipient: "bob@b.example", label: "processed", passOn: nil) { state, _ in
            #expect(state == .queued)
            return .advance(to: .processed, keepDeadline: false)
        }
        #expect(match == .accepted(sender: "alice@a.example", previous: .queued, now: .processed))
        // ... and then the connection records its outcome.
        try await store.recordDeliveries([(entry, .sent(deadline: Date().addingTimeInterval(3600)), nil)])

        let (entries, events) = try await store.trace(messageID: id)
        #expect(entries.map(\.state) == [.processed], "the notification's state stays")
        #expect(entries.first?.attempts == 1)
        let delivery = events.filter { $0.step == "delivery" }
        #expect(delivery.count == 1)
        #expect(delivery.first?.outcome == "ok")
        #expect(delivery.first?.detail.contains("attempt 1: accepted for bob@b.example") == true, "\(delivery)")
        try await store.close()
    }

    /// A draft signed and encrypted before it was queued is stored ready to
    /// send, with the trace its preparation would have written, and without
    /// its plain form; the preparer never sees it.
    @Test func aPreparedDraftIsQueuedReadyToSend() async throws {
        let (store, database, dir) = try await Self.freshStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let id = "<ready@a.example>"
        var draft = OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example", "carol@b.example"],
                                  message: Array("Subject: ready\r\n\r\nbody\r\n".utf8), messageID: id)
        draft.prepared = PreparedWire(wire: Array("signed and encrypted".utf8), discovered: ["bob@b.example: DNS CERT", "carol@b.example: DNS CERT"])
        let oid = try await store.enqueue(draft)
        let plain = try await store.enqueue(OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["dave@b.example"],
                                                          message: Array("Subject: plain\r\n\r\nbody\r\n".utf8), messageID: "<plain@a.example>"))

        #expect(try await store.pendingSubmissions().map(\.id) == [plain], "only the unprepared draft waits for the preparer")
        let lease = QueueLease(holder: "node-a", until: Date().addingTimeInterval(300))
        let due = try await store.claimDue(now: Date(), limit: 100, lease: lease) { due in (due.map(\.id), due) }.plan
        #expect(Set(due.filter { $0.outboundID == oid }.map(\.domain)) == ["b.example"])
        #expect(due.filter { $0.outboundID == oid }.count == 2)
        #expect(try await store.wires([oid])[oid].flatMap { try? $0.get() } == Array("signed and encrypted".utf8))
        let (entries, events) = try await store.trace(messageID: id)
        #expect(entries.map(\.state) == [.queued, .queued])
        #expect(events.map(\.step) == ["queue", "discovery", "discovery", "security"])
        #expect(events.last?.detail == "signed and encrypted (20 bytes)")
        let parts = try await database.transaction(write: false) { tx in
            try await tx.query("SELECT part FROM outbound_blobs WHERE outbound_id = ?", .text(oid)).map { try $0.text("part") }
        }
        #expect(parts == ["wire_enc"], "the plain form of a prepared message is not kept")
        try await store.close()
    }

    /// Transactions written together share the audit chain's last event and
    /// write its head once; one rolled back after appending an event leaves
    /// no trace of it, and the chain still verifies and goes on.
    @Test func auditEventsOfGroupCommittedTransactionsChainAndARolledBackOneLeavesNoGap() async throws {
        struct Refused: Error {}
        let (store, database, dir) = try await Self.freshStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = try await store.auditEvents(limit: 1000).count
        let commitsBefore = database.commitCounts.commits
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<40 {
                group.addTask {
                    _ = try? await database.transaction(write: true) { tx in
                        try await store.audit("test.event", "item \(n)", in: tx)
                        try await store.audit("test.event", "item \(n) again", in: tx)
                        if n % 3 == 0 { throw Refused() }
                    }
                }
            }
        }
        let counts = database.commitCounts
        #expect(counts.commits - commitsBefore < 40, "the transactions were written together (\(counts))")
        let events = try await store.auditEvents(limit: 1000).dropFirst(before)
        let kept = Set((0..<40).filter { $0 % 3 != 0 })
        #expect(events.count == 2 * kept.count)
        #expect(Set(events.map { Int($0.event.object.split(separator: " ")[1])! }) == kept)
        #expect(events.map(\.seq) == Array(events.first!.seq...(events.first!.seq + Int64(events.count) - 1)), "no gap where the rolled-back events were")
        #expect(try await store.verifyAudit().failure == nil)
        try await store.recordEvent("test.event", object: "after", outcome: "ok")
        #expect(try await store.verifyAudit().failure == nil)
        try await store.close()
    }

    /// A row leased to one node is not handed to another until the lease is
    /// released, runs out, or its outcome is recorded; a node starting again
    /// frees what its previous run held.
    @Test func aLeasedRowGoesToOneNodeUntilItsLeaseEnds() async throws {
        let (store, _, dir) = try await Self.freshStore()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t0 = Date()
        var ids: [String] = []
        for n in 0..<3 {
            let id = "<lease-\(n)@a.example>"
            var draft = OutboundDraft(kind: .message, sender: "alice@a.example", recipients: ["bob@b.example"],
                                      message: Array("Subject: \(n)\r\n\r\nbody\r\n".utf8), messageID: id)
            draft.prepared = PreparedWire(wire: Array("wire \(n)".utf8), discovered: [])
            _ = try await store.enqueue(draft, now: t0)
        }
        func claim(_ node: String, at: Date, taking n: Int = .max) async throws -> [String] {
            try await store.claimDue(now: at, limit: 100, lease: QueueLease(holder: node, until: at.addingTimeInterval(300))) { due in
                (Array(due.prefix(n).map(\.id)), ())
            }.claimed.map(\.id)
        }
        let a = try await claim("node-a", at: t0, taking: 2)
        #expect(a.count == 2)
        let b = try await claim("node-b", at: t0.addingTimeInterval(1))
        #expect(b.count == 1 && !a.contains(b[0]), "node B gets only the row A did not take")
        #expect(try await claim("node-b", at: t0.addingTimeInterval(2)).isEmpty, "every row is leased")

        // A gives one back: B may take it.
        try await store.releaseLeases([a[0]], holder: "node-b")
        #expect(try await claim("node-b", at: t0.addingTimeInterval(3)).isEmpty, "only the holder releases its lease")
        try await store.releaseLeases([a[0]], holder: "node-a")
        #expect(try await claim("node-b", at: t0.addingTimeInterval(4)) == [a[0]])

        // A's other row: recorded as sent, it is no longer due for anyone, whatever its lease.
        let entry = try #require(try await store.entries(ids: [a[1]]).first)
        try await store.recordDeliveries([(entry, .sent(deadline: t0.addingTimeInterval(3600)), nil)], now: t0.addingTimeInterval(5))
        #expect(try await store.queueEntries().first { $0.id == a[1] }?.state == .sent)

        // B dies holding two rows: nobody takes them until the lease runs out ...
        #expect(try await claim("node-a", at: t0.addingTimeInterval(299)).isEmpty)
        let afterExpiry = try await claim("node-a", at: t0.addingTimeInterval(305))
        #expect(Set(afterExpiry) == Set([b[0], a[0]]), "the rows of a node that died go to another once its lease ends")
        // ... or until B starts again and frees what it held.
        try await store.releaseLeases(afterExpiry, holder: "node-a")
        #expect(try await claim("node-b", at: t0.addingTimeInterval(310)).count == 2)
        #expect(try await store.releaseLeases(heldBy: "node-b") == 2)
        #expect(try await claim("node-a", at: t0.addingTimeInterval(311)).count == 2)
        try await store.close()
    }
}
