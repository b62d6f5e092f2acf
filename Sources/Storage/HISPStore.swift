import Crypto
import DirectCore
import Foundation

/// The encrypted store over a `StoreDatabase`.
///
/// Key hierarchy (docs/storage.md):
/// master key (key file or scrypt(passphrase), never in the data directory)
///   -> key-encryption key (KEK, table `keks`, AES-256-GCM-wrapped)
///      -> one data key per row (`dek` column) -> the row's sealed columns
///      -> the blind-index key and the audit key (`system_keys`)
/// Rotation replaces the master key and the KEK and re-wraps the data keys;
/// no sealed column is re-encrypted.
public final class HISPStore: Sendable {
    let database: any StoreDatabase
    let keys: KeyCache
    let index: BlindIndex
    let auditKey: SymmetricKey
    /// Who is acting, for audit events (`cli:alice`, `smtp`).
    public let actor: String
    /// Who waits on a mailbox hears of its changes here (one per open store).
    public let signals = MailboxSignals()
    /// Read events waiting for their group commit.
    let reads: ReadAudit

    init(database: any StoreDatabase, keys: KeyCache, index: BlindIndex, auditKey: SymmetricKey, actor: String) {
        self.database = database
        self.keys = keys
        self.index = index
        self.auditKey = auditKey
        self.actor = actor
        self.reads = ReadAudit(database: database, key: auditKey)
    }

    /// Initialises an empty database: schema, master key parameters, the first
    /// KEK, the index and audit keys, and the first audit event.
    public static func create(
        database: any StoreDatabase, material: MasterKeyMaterial, actor: String, now: Date = Date()
    ) async throws -> HISPStore {
        let parameters = material.newParameters()
        let master = try material.masterKey(parameters)
        let kek = SymmetricKey(size: .bits256)
        let indexKey = SymmetricKey(size: .bits256)
        let auditKey = SymmetricKey(size: .bits256)
        try await database.transaction(write: true) { tx in
            guard try await !tx.tableExists("meta") else { throw StoreError.exists("a store in this database") }
            for statement in Schema.statements { try await tx.execute(statement, []) }
            try await tx.execute("INSERT INTO meta (name, value) VALUES ('schema', ?)", .text(String(Schema.version)))
            try await tx.execute("INSERT INTO meta (name, value) VALUES ('created', ?)", .text(Timestamp.text(now)))
            try await tx.execute(
                "INSERT INTO master (slot, kind, kdf) VALUES ('current', ?, ?)",
                .text(material.kind.rawValue), parameters.map { .text($0.encoded()) } ?? .null)
            try await tx.execute(
                "INSERT INTO keks (id, state, wrapped, created) VALUES (1, 'active', ?, ?)",
                .blob(try Envelope.wrap(kek, under: master, context: KeyCache.kekContext(1))), .text(Timestamp.text(now)))
            for (purpose, key) in [("index", indexKey), ("audit", auditKey)] {
                try await tx.execute(
                    "INSERT INTO system_keys (purpose, kek_id, wrapped) VALUES (?, 1, ?)",
                    .text(purpose), .blob(try Envelope.wrap(key, under: kek, context: KeyCache.systemKeyContext(purpose, kek: 1))))
            }
            try await AuditLog.append(
                AuditEvent(actor: actor, action: "store.init", object: "store", outcome: "ok",
                           detail: "master key: \(material.kind.rawValue)"),
                at: now, key: auditKey, in: tx)
        }
        let cache = KeyCache(master: master, keks: [1: kek])
        return HISPStore(database: database, keys: cache, index: BlindIndex(key: indexKey), auditKey: auditKey, actor: actor)
    }

    /// Unlocks an existing store. A wrong key or passphrase is one clear `StoreError.wrongKey`.
    public static func open(database: any StoreDatabase, material: MasterKeyMaterial, actor: String) async throws -> HISPStore {
        try await migrate(database)
        let (cache, indexKey, auditKey) = try await database.transaction(write: false) { tx in
            guard try await tx.tableExists("meta") else { throw StoreError.notFound("a HISP store in this database") }
            let schema = try await tx.query("SELECT value FROM meta WHERE name = 'schema'")
            guard let v = try schema.first?.text("value"), Int(v) == Schema.version else {
                throw StoreError.invalid("the store's schema version is not \(Schema.version)")
            }
            let cache = try await KeyCache.unlock(material: material, in: tx)
            var system: [String: SymmetricKey] = [:]
            for row in try await tx.query("SELECT purpose, kek_id, wrapped FROM system_keys") {
                let purpose = try row.text("purpose")
                let kekID = try row.integer("kek_id")
                guard let kek = cache.kek(kekID) else { throw StoreError.integrity("system key \(purpose): its KEK \(kekID) is missing") }
                system[purpose] = try Envelope.unwrap(
                    try row.blob("wrapped"), under: kek, context: KeyCache.systemKeyContext(purpose, kek: kekID),
                    what: "system key \(purpose)")
            }
            guard let i = system["index"], let a = system["audit"] else { throw StoreError.integrity("the index or audit key is missing") }
            return (cache, i, a)
        }
        return HISPStore(database: database, keys: cache, index: BlindIndex(key: indexKey), auditKey: auditKey, actor: actor)
    }

    /// Writes the read events still waiting, then closes the database.
    public func close() async throws {
        await reads.flush()
        try await database.close()
    }

    /// Writes the read events waiting now (`close` does it too).
    public func flushReadEvents() async { await reads.flush() }

    /// Brings an older store's schema up to date, every version's statements in one transaction.
    static func migrate(_ database: any StoreDatabase) async throws {
        let current = try await database.transaction(write: false) { tx -> Int? in
            guard try await tx.tableExists("meta") else { return nil }
            return try await tx.query("SELECT value FROM meta WHERE name = 'schema'").first.flatMap { Int(try $0.text("value")) }
        }
        guard let current, current < Schema.version else { return }
        try await database.transaction(write: true) { tx in
            guard try await tx.tableExists("meta") else { return }
            let rows = try await tx.query("SELECT value FROM meta WHERE name = 'schema'")
            guard let text = try rows.first?.text("value"), var version = Int(text) else {
                throw StoreError.integrity("the store records no schema version")
            }
            guard version <= Schema.version else {
                throw StoreError.invalid("the store's schema version \(version) is newer than this hisp (\(Schema.version)); upgrade hisp")
            }
            while version < Schema.version {
                version += 1
                for statement in Schema.migrations[version] ?? [] { try await tx.execute(statement, []) }
                try await tx.execute("UPDATE meta SET value = ? WHERE name = 'schema'", .text(String(version)))
            }
        }
    }

    // MARK: sealing rows

    /// A fresh data key for a new row, wrapped under the KEK new rows use.
    func newRowKey(table: String, id: String, in tx: any StoreTransaction) async throws -> RowKey {
        let (kekID, kek) = try await keys.writingKEK(in: tx)
        let dek = Envelope.newKey()
        let wrapped = try Envelope.wrap(dek, under: kek, context: KeyCache.dekContext(table: table, id: id, kek: kekID))
        return RowKey(table: table, id: id, key: dek, kekID: kekID, wrapped: wrapped)
    }

    /// The data key of a stored row (`kek_id`, `dek` columns).
    func rowKey(table: String, id: String, row: StoreRow, in tx: any StoreTransaction) async throws -> RowKey {
        let kekID = try row.integer("kek_id")
        let kek = try await keys.kek(kekID, in: tx)
        let wrapped = try row.blob("dek")
        let dek = try Envelope.unwrap(
            wrapped, under: kek, context: KeyCache.dekContext(table: table, id: id, kek: kekID), what: "\(table) \(id) data key")
        return RowKey(table: table, id: id, key: dek, kekID: kekID, wrapped: wrapped)
    }

    func audit(_ action: String, _ object: String, outcome: String = "ok", detail: String = "", in tx: any StoreTransaction) async throws {
        try await AuditLog.append(
            AuditEvent(actor: actor, action: action, object: object, outcome: outcome, detail: detail),
            at: Date(), key: auditKey, in: tx)
    }

    /// Records an event in its own transaction (e.g. a refused request).
    public func recordEvent(_ action: String, object: String, outcome: String, detail: String = "") async throws {
        let actor = self.actor, key = auditKey
        try await database.transaction(write: true) { tx in
            try await AuditLog.append(
                AuditEvent(actor: actor, action: action, object: object, outcome: outcome, detail: detail),
                at: Date(), key: key, in: tx)
        }
    }

    /// Row counts per table (what an operator sees after a restore).
    public func counts() async throws -> [(table: String, rows: Int)] {
        try await database.transaction(write: false) { tx in
            var out: [(String, Int)] = []
            for table in ["domains", "addresses", "anchors", "bundles", "folders", "messages", "outbound", "queue", "trace", "audit"] {
                let rows = try await tx.query("SELECT COUNT(*) AS n FROM \(table)")
                out.append((table, Int(try rows.first?.integer("n") ?? 0)))
            }
            return out
        }
    }
}

/// A row's data key and how to seal and open its columns.
struct RowKey: Sendable {
    let table: String
    let id: String
    let key: SymmetricKey
    let kekID: Int64
    let wrapped: [UInt8]

    func seal(_ column: String, _ bytes: some DataProtocol) throws -> StoreValue {
        .blob(try Envelope.seal(bytes, key: key, context: Envelope.context("field", table, id, column)))
    }

    func seal(_ column: String, text: String) throws -> StoreValue { try seal(column, Array(text.utf8)) }

    func open(_ column: String, _ row: StoreRow) throws -> [UInt8] {
        try open(sealed: try row.blob(column), as: column)
    }

    /// A value sealed for `column` of this row, wherever it is kept (`outbound_blobs`).
    func open(sealed: [UInt8], as column: String) throws -> [UInt8] {
        try Envelope.open(sealed, key: key, context: Envelope.context("field", table, id, column), what: "\(table) \(id) \(column)")
    }

    func openText(_ column: String, _ row: StoreRow) throws -> String {
        guard let s = String(bytes: try open(column, row), encoding: .utf8) else {
            throw StoreError.integrity("\(table) \(id) \(column): not UTF-8")
        }
        return s
    }
}

/// The unlocked master key and KEKs of one open store. KEKs that appear after
/// opening (another process started a rotation) are loaded when first needed.
final class KeyCache: @unchecked Sendable {
    let lock = NSLock()
    private let master: SymmetricKey
    var masterKey: SymmetricKey { master }
    var keks: [Int64: SymmetricKey]

    init(master: SymmetricKey, keks: [Int64: SymmetricKey]) {
        self.master = master
        self.keks = keks
    }

    static func kekContext(_ id: Int64) -> [UInt8] { Envelope.context("kek", String(id)) }
    static func kekCurrentContext(_ id: Int64) -> [UInt8] { Envelope.context("kek-under-current-master", String(id)) }
    static func systemKeyContext(_ purpose: String, kek: Int64) -> [UInt8] { Envelope.context("system-key", purpose, "kek \(kek)") }
    static func dekContext(table: String, id: String, kek: Int64) -> [UInt8] { Envelope.context("dek", table, id, "kek \(kek)") }

    func kek(_ id: Int64) -> SymmetricKey? {
        lock.lock(); defer { lock.unlock() }
        return keks[id]
    }

    /// The KEK `id`, loading it from the store if this process has not yet seen it.
    func kek(_ id: Int64, in tx: any StoreTransaction) async throws -> SymmetricKey {
        if let k = kek(id) { return k }
        let rows = try await tx.query("SELECT id, wrapped, wrapped_current FROM keks WHERE id = ?", .integer(id))
        guard let row = rows.first else { throw StoreError.integrity("key-encryption key \(id) is missing") }
        guard let key = try? open(row: row, id: id) else { throw StoreError.keyChanged }
        insert(id, key)
        return key
    }

    /// The KEK new rows are wrapped under: the newest one (the next KEK during a rotation).
    func writingKEK(in tx: any StoreTransaction) async throws -> (Int64, SymmetricKey) {
        if let id = tx.scratch.writingKEK { return (id, try await kek(id, in: tx)) }
        let rows = try await tx.query("SELECT id FROM keks ORDER BY id DESC LIMIT 1")
        guard let id = try rows.first?.integer("id") else { throw StoreError.integrity("no key-encryption key") }
        tx.scratch.writingKEK = id
        return (id, try await kek(id, in: tx))
    }

    private func open(row: StoreRow, id: Int64) throws -> SymmetricKey {
        if let k = try? Envelope.unwrap(try row.blob("wrapped"), under: master, context: Self.kekContext(id), what: "KEK \(id)") {
            return k
        }
        guard let alt = row.optionalBlob("wrapped_current") else { throw StoreError.keyChanged }
        return try Envelope.unwrap(alt, under: master, context: Self.kekCurrentContext(id), what: "KEK \(id)")
    }

    /// Derives the master key from `material` and opens every KEK it can.
    static func unlock(material: MasterKeyMaterial, in tx: any StoreTransaction) async throws -> KeyCache {
        let masters = try await tx.query("SELECT slot, kind, kdf FROM master")
        guard let current = masters.first(where: { $0.optionalText("slot") == "current" }) else {
            throw StoreError.integrity("the store records no master key")
        }
        let next = masters.first(where: { $0.optionalText("slot") == "next" })
        let currentKind = try current.text("kind")
        let kekRows = try await tx.query("SELECT id, state, wrapped, wrapped_current FROM keks ORDER BY id")
        // The current master key opens the active KEK (and, mid-rotation, the next one through wrapped_current).
        if currentKind == material.kind.rawValue {
            let params = try current.optionalText("kdf").map(KDFParameters.decode)
            let master = try material.masterKey(params)
            var opened: [Int64: SymmetricKey] = [:]
            for row in kekRows {
                let id = try row.integer("id")
                let cache = KeyCache(master: master, keks: [:])
                if let k = try? cache.open(row: row, id: id) { opened[id] = k }
            }
            if let active = try kekRows.first(where: { $0.optionalText("state") == "active" })?.integer("id"), opened[active] != nil {
                return KeyCache(master: master, keks: opened)
            }
        }
        // The next master key of an unfinished rotation opens only the next KEK.
        if let next, try next.text("kind") == material.kind.rawValue {
            let params = try next.optionalText("kdf").map(KDFParameters.decode)
            let master = try material.masterKey(params)
            if let row = kekRows.first(where: { $0.optionalText("state") == "next" }), let id = try? row.integer("id"),
               (try? Envelope.unwrap(try row.blob("wrapped"), under: master, context: kekContext(id), what: "KEK")) != nil {
                throw StoreError.rotationUnfinished
            }
        }
        if currentKind != material.kind.rawValue {
            let wanted = currentKind == MasterKeyKind.keyFile.rawValue ? "--key-file" : "--passphrase-file or HISP_PASSPHRASE"
            throw StoreError.wrongKey("this store is locked with a \(currentKind), not a \(material.kind.rawValue); give \(wanted)")
        }
        throw StoreError.wrongKey("\(material.origin) does not open this store")
    }
}
