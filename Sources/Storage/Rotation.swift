import Crypto
import Foundation


/// What a rotation did.
public struct RotationReport: Sendable {
    public let newKEK: Int64
    public let rewrapped: Int
    public let resumed: Bool
}

extension HISPStore {
    /// Replaces the master key with `newMaterial`: a new key-encryption key
    /// wrapped under the new master key, every row's data key (and the index
    /// and audit keys) re-wrapped under it in small transactions while the
    /// store stays in use, then the old KEK deleted, so the old master key no
    /// longer opens anything. Sealed columns are not re-encrypted.
    ///
    /// Interrupted, it is resumed by running it again with the same two keys;
    /// until then the old key still opens the store.
    ///
    /// `interruptAfterBatches` stops it part way, as a crash would (for tests of resumption).
    public func rotate(to newMaterial: MasterKeyMaterial, batchSize: Int = 200, interruptAfterBatches: Int? = nil,
                       progress: @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> RotationReport {
        let currentMaster = keys.masterKey
        let (newID, newKEK, resumed) = try await database.transaction(write: true) { tx -> (Int64, SymmetricKey, Bool) in
            let next = try await tx.query("SELECT kind, kdf FROM master WHERE slot = 'next'")
            let nextKEK = try await tx.query("SELECT id, wrapped FROM keks WHERE state = 'next'")
            if let n = next.first, let k = nextKEK.first {
                // Resume: the new material must be the one the rotation started with.
                let id = try k.integer("id")
                guard try n.text("kind") == newMaterial.kind.rawValue,
                      let kek = try? Envelope.unwrap(
                        try k.blob("wrapped"),
                        under: try newMaterial.masterKey(try n.optionalText("kdf").map(KDFParameters.decode)),
                        context: KeyCache.kekContext(id), what: "next KEK")
                else {
                    throw StoreError.wrongKey("an unfinished rotation was started to a different new key; give that one to finish it")
                }
                return (id, kek, true)
            }
            let params = newMaterial.newParameters()
            let newMaster = try newMaterial.masterKey(params)
            let kek = SymmetricKey(size: .bits256)
            let maxRows = try await tx.query("SELECT MAX(id) AS m FROM keks")
            let id = (try maxRows.first?.integer("m") ?? 0) + 1
            try await tx.execute(
                "INSERT INTO keks (id, state, wrapped, wrapped_current, created) VALUES (?, 'next', ?, ?, ?)",
                .integer(id), .blob(try Envelope.wrap(kek, under: newMaster, context: KeyCache.kekContext(id))),
                .blob(try Envelope.wrap(kek, under: currentMaster, context: KeyCache.kekCurrentContext(id))),
                .text(Timestamp.text(Date())))
            // New rows go under the new KEK from here on.
            tx.scratch.writingKEK = nil
            try await tx.execute(
                "INSERT INTO master (slot, kind, kdf) VALUES ('next', ?, ?)",
                .text(newMaterial.kind.rawValue), params.map { .text($0.encoded()) } ?? .null)
            try await self.audit("key.rotate", "store", outcome: "started", detail: "new KEK \(id), \(newMaterial.kind.rawValue)", in: tx)
            return (id, kek, false)
        }

        let total = try await database.transaction(write: false) { tx in
            var n = 0
            for table in Schema.keyedTables {
                let r = try await tx.query("SELECT COUNT(*) AS n FROM \(table) WHERE kek_id <> ?", .integer(newID))
                n += Int(try r.first?.integer("n") ?? 0)
            }
            return n
        }
        var done = 0
        var batches = 0
        progress(0, total)
        // System keys first (one small transaction), then each table in batches.
        try await database.transaction(write: true) { tx in
            try await tx.execute(
                "UPDATE system_keys SET kek_id = ?, wrapped = ? WHERE purpose = 'index'",
                .integer(newID), .blob(try Envelope.wrap(self.index.key, under: newKEK, context: KeyCache.systemKeyContext("index", kek: newID))))
            try await tx.execute(
                "UPDATE system_keys SET kek_id = ?, wrapped = ? WHERE purpose = 'audit'",
                .integer(newID), .blob(try Envelope.wrap(self.auditKey, under: newKEK, context: KeyCache.systemKeyContext("audit", kek: newID))))
        }
        while true {
            var changed = 0
            for table in Schema.keyedTables {
                while true {
                    let n = try await database.transaction(write: true) { tx in
                        // By rowid: not every keyed table has an index on its ids (trace has none).
                        let rows = try await tx.query(
                            "SELECT rowid AS rid, id, kek_id, dek FROM \(table) WHERE kek_id <> ? LIMIT ?",
                            .integer(newID), .integer(Int64(batchSize)))
                        for row in rows {
                            let id = try row.text("id")
                            let old = try await self.rowKey(table: table, id: id, row: row, in: tx)
                            let wrapped = try Envelope.wrap(old.key, under: newKEK, context: KeyCache.dekContext(table: table, id: id, kek: newID))
                            try await tx.execute("UPDATE \(table) SET kek_id = ?, dek = ? WHERE rowid = ?",
                                                 .integer(newID), .blob(wrapped), .integer(try row.integer("rid")))
                        }
                        return rows.count
                    }
                    if n == 0 { break }
                    batches += 1
                    if let limit = interruptAfterBatches, batches >= limit { throw RotationInterrupted() }
                    changed += n
                    done += n
                    progress(min(done, max(total, done)), max(total, done))
                }
            }
            let rewrapped = done
            // Finish only when no row is left under an old KEK, checked in the transaction that deletes them.
            let finished = try await database.transaction(write: true) { tx -> Bool in
                for table in Schema.keyedTables {
                    let r = try await tx.query("SELECT COUNT(*) AS n FROM \(table) WHERE kek_id <> ?", .integer(newID))
                    if (try r.first?.integer("n") ?? 0) > 0 { return false }
                }
                try await tx.execute("DELETE FROM keks WHERE id <> ?", .integer(newID))
                tx.scratch.writingKEK = nil
                try await tx.execute("UPDATE keks SET state = 'active', wrapped_current = NULL WHERE id = ?", .integer(newID))
                try await tx.execute("DELETE FROM master WHERE slot = 'current'")
                try await tx.execute("UPDATE master SET slot = 'current' WHERE slot = 'next'")
                try await self.audit("key.rotate", "store", outcome: "ok", detail: "KEK \(newID) active, \(rewrapped) data keys re-wrapped", in: tx)
                return true
            }
            if finished { break }
            _ = changed
        }
        keys.insert(newID, newKEK)
        return RotationReport(newKEK: newID, rewrapped: done, resumed: resumed)
    }
}

extension KeyCache {
    func insert(_ id: Int64, _ key: SymmetricKey) {
        lock.lock(); defer { lock.unlock() }
        keks[id] = key
    }
}

/// Thrown when a rotation is stopped part way on purpose (tests).
public struct RotationInterrupted: Error {}
