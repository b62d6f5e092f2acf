import DirectCore
import Foundation

/// A folder row, opened.
struct FolderRow: Sendable {
    let id: String
    let name: String
    let special: SpecialFolder?
    let uidValidity: UInt32
    let uidNext: UInt32
    let highestModSeq: UInt64
    let subscribed: Bool
}

extension HISPStore {
    func blindIndex(_ purpose: String, _ value: String) -> [UInt8] { index(purpose, value) }

    /// A write transaction whose changes to mailboxes are signalled (`signals`) once it is durable.
    func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction, MailboxTouches) async throws -> T) async throws -> T {
        let touches = MailboxTouches()
        let value = try await database.transaction(write: true) { tx in try await body(tx, touches) }
        signals.signal(touches.touched)
        return value
    }

    // MARK: folders

    func createSpecialFolders(mailboxID: String, now: Date, in tx: any StoreTransaction) async throws {
        let validity = try await nextUIDValidity(now: now, in: tx)
        for f in SpecialFolder.allCases {
            try await tx.execute(
                """
                INSERT INTO folders (id, mailbox_id, special, uidvalidity, uidnext, highest_modseq, subscribed, created)
                VALUES (?, ?, ?, ?, 1, 1, 1, ?)
                """, .text(Envelope.newID()), .text(mailboxID), .text(f.rawValue), .integer(Int64(validity)), .text(Timestamp.text(now)))
        }
    }

    /// RFC 9051 2.3.1.1: a folder made again under an old name must not get an old UIDVALIDITY,
    /// so each is later than every one given before in this store (and than the clock).
    func nextUIDValidity(now: Date, in tx: any StoreTransaction) async throws -> UInt32 {
        let last = try await tx.query("SELECT value FROM meta WHERE name = 'uidvalidity_last'").first.flatMap { Int64(try $0.text("value")) } ?? 0
        let next = min(Int64(UInt32.max), max(Int64(now.timeIntervalSince1970), last + 1))
        try await tx.execute(
            "INSERT INTO meta (name, value) VALUES ('uidvalidity_last', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            .text(String(next)))
        return UInt32(next)
    }

    func folderNameIndex(mailboxID: String, _ name: String) -> [UInt8] { blindIndex("folder", mailboxID + "\u{0}" + name) }

    func folderRow(_ row: StoreRow, in tx: any StoreTransaction) async throws -> FolderRow {
        let id = try row.text("id")
        let special = row.optionalText("special").flatMap(SpecialFolder.init(rawValue:))
        let name: String
        if let special {
            name = special.name
        } else {
            name = try await rowKey(table: "folders", id: id, row: row, in: tx).openText("name_enc", row)
        }
        return FolderRow(
            id: id, name: name, special: special, uidValidity: UInt32(truncatingIfNeeded: try row.integer("uidvalidity")),
            uidNext: UInt32(truncatingIfNeeded: try row.integer("uidnext")), highestModSeq: UInt64(try row.integer("highest_modseq")),
            subscribed: try row.integer("subscribed") != 0)
    }

    /// The mailbox's folder of this name (a special one by its name, INBOX in any case).
    func folder(mailboxID: String, named name: String, in tx: any StoreTransaction) async throws -> FolderRow {
        let rows: [StoreRow]
        if let special = SpecialFolder(name: name) {
            rows = try await tx.query("SELECT * FROM folders WHERE mailbox_id = ? AND special = ?", .text(mailboxID), .text(special.rawValue))
        } else {
            rows = try await tx.query("SELECT * FROM folders WHERE mailbox_id = ? AND name_index = ?",
                                      .text(mailboxID), .blob(folderNameIndex(mailboxID: mailboxID, name)))
        }
        guard let row = rows.first else { throw StoreError.notFound("folder \(SafeText.escape(name))") }
        let folder = try await folderRow(row, in: tx)
        // The index matched; the sealed name must say the same.
        guard folder.special != nil || folder.name == name else { throw StoreError.integrity("folders \(folder.id): the sealed name does not match its index") }
        return folder
    }

    func folders(mailboxID: String, in tx: any StoreTransaction) async throws -> [FolderRow] {
        var out: [FolderRow] = []
        for row in try await tx.query("SELECT * FROM folders WHERE mailbox_id = ?", .text(mailboxID)) {
            out.append(try await folderRow(row, in: tx))
        }
        let order = SpecialFolder.allCases
        return out.sorted { a, b in
            switch (a.special, b.special) {
            case (let x?, let y?): return order.firstIndex(of: x)! < order.firstIndex(of: y)!
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.name < b.name
            }
        }
    }

    func status(_ f: FolderRow, in tx: any StoreTransaction) async throws -> FolderStatus {
        let counts = try await tx.query(
            """
            SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN flags & 1 = 0 THEN 1 ELSE 0 END), 0) AS unseen, COALESCE(SUM(size), 0) AS bytes
            FROM messages WHERE folder_id = ?
            """,
            .text(f.id))
        return FolderStatus(
            id: f.id, name: f.name, special: f.special, uidValidity: f.uidValidity, uidNext: f.uidNext, highestModSeq: f.highestModSeq,
            messages: Int(try counts.first?.integer("n") ?? 0), unseen: Int(try counts.first?.integer("unseen") ?? 0),
            bytes: Int(try counts.first?.integer("bytes") ?? 0), subscribed: f.subscribed)
    }

    /// The mailbox's folders with their counters: the special ones first, then the others by name.
    public func folders(mailbox: DirectAddress) async throws -> [FolderStatus] {
        try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            var out: [FolderStatus] = []
            for f in try await self.folders(mailboxID: box, in: tx) { out.append(try await self.status(f, in: tx)) }
            return out
        }
    }

    public func folderStatus(mailbox: DirectAddress, folder: String) async throws -> FolderStatus {
        try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            return try await self.status(try await self.folder(mailboxID: box, named: folder, in: tx), in: tx)
        }
    }

    /// Makes a user folder (and the levels above it that are missing, RFC 9051 6.3.4).
    public func createFolder(mailbox: DirectAddress, name: String, now: Date = Date()) async throws -> FolderStatus {
        let name = try FolderName.validate(name)
        guard SpecialFolder(name: name) == nil else { throw StoreError.exists("folder \(name)") }
        return try await write { tx, _ in
            let box = try await self.mailboxID(mailbox, in: tx)
            let levels = name.split(separator: FolderName.separator)
            var created: FolderRow? = nil
            for depth in 1...levels.count {
                let level = levels.prefix(depth).joined(separator: String(FolderName.separator))
                let index = self.folderNameIndex(mailboxID: box, level)
                let exists = try await !tx.query("SELECT 1 FROM folders WHERE mailbox_id = ? AND name_index = ?", .text(box), .blob(index)).isEmpty
                if exists {
                    if depth == levels.count { throw StoreError.exists("folder \(SafeText.escape(name))") }
                    continue
                }
                let count = try await tx.query("SELECT COUNT(*) AS n FROM folders WHERE mailbox_id = ?", .text(box)).first?.integer("n") ?? 0
                guard count < FolderName.maxFolders else { throw StoreError.invalid("a mailbox has at most \(FolderName.maxFolders) folders") }
                let id = Envelope.newID()
                let rk = try await self.newRowKey(table: "folders", id: id, in: tx)
                let validity = try await self.nextUIDValidity(now: now, in: tx)
                try await tx.execute(
                    """
                    INSERT INTO folders (id, mailbox_id, name_index, uidvalidity, uidnext, highest_modseq, subscribed, created, kek_id, dek, name_enc)
                    VALUES (?, ?, ?, ?, 1, 1, 1, ?, ?, ?, ?)
                    """,
                    .text(id), .text(box), .blob(index), .integer(Int64(validity)), .text(Timestamp.text(now)), .integer(rk.kekID), .blob(rk.wrapped),
                    try rk.seal("name_enc", text: level))
                try await self.audit("folder.create", "folder \(id)", detail: "mailbox \(box)", in: tx)
                created = FolderRow(id: id, name: level, special: nil, uidValidity: validity, uidNext: 1, highestModSeq: 1, subscribed: true)
            }
            guard let created else { throw StoreError.exists("folder \(SafeText.escape(name))") }
            return try await self.status(created, in: tx)
        }
    }

    /// Deletes a user folder and the messages in it. Refused for the special folders and for a folder with folders under it.
    public func deleteFolder(mailbox: DirectAddress, name: String) async throws {
        guard SpecialFolder(name: name) == nil else { throw StoreError.conflict("\(name) is a special folder; it cannot be deleted") }
        try await write { tx, touches in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: name, in: tx)
            let children = try await self.folders(mailboxID: box, in: tx).filter { $0.special == nil && $0.name.hasPrefix(f.name + "/") }
            guard children.isEmpty else {
                throw StoreError.conflict("folder \(SafeText.escape(name)) has \(children.count) folder(s) under it; delete those first")
            }
            let n = try await tx.query("SELECT COUNT(*) AS n FROM messages WHERE folder_id = ?", .text(f.id)).first?.integer("n") ?? 0
            try await tx.execute("DELETE FROM messages WHERE folder_id = ?", .text(f.id))
            try await tx.execute("DELETE FROM expunged WHERE folder_id = ?", .text(f.id))
            try await tx.execute("DELETE FROM folders WHERE id = ?", .text(f.id))
            try await self.audit("folder.delete", "folder \(f.id)", detail: "mailbox \(box), \(n) message(s) deleted", in: tx)
            touches.touch(box)
        }
    }

    /// Renames a user folder and the folders under it (RFC 9051 6.3.6); UIDs and UIDVALIDITY stay.
    public func renameFolder(mailbox: DirectAddress, from: String, to: String) async throws {
        let to = try FolderName.validate(to)
        guard SpecialFolder(name: from) == nil else { throw StoreError.conflict("\(from) is a special folder; it cannot be renamed") }
        guard SpecialFolder(name: to) == nil else { throw StoreError.exists("folder \(to)") }
        try await write { tx, touches in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: from, in: tx)
            let all = try await self.folders(mailboxID: box, in: tx)
            guard !all.contains(where: { $0.special == nil && ($0.name == to || $0.name.hasPrefix(to + "/")) }) else {
                throw StoreError.exists("folder \(SafeText.escape(to))")
            }
            for g in all where g.special == nil && (g.id == f.id || g.name.hasPrefix(f.name + "/")) {
                let newName = to + g.name.dropFirst(f.name.count)
                let rows = try await tx.query("SELECT kek_id, dek FROM folders WHERE id = ?", .text(g.id))
                guard let row = rows.first else { continue }
                let rk = try await self.rowKey(table: "folders", id: g.id, row: row, in: tx)
                try await tx.execute("UPDATE folders SET name_index = ?, name_enc = ? WHERE id = ?",
                                     .blob(self.folderNameIndex(mailboxID: box, newName)), try rk.seal("name_enc", text: newName), .text(g.id))
            }
            try await self.audit("folder.rename", "folder \(f.id)", detail: "mailbox \(box)", in: tx)
            touches.touch(box)
        }
    }

    public func setSubscribed(mailbox: DirectAddress, folder: String, _ subscribed: Bool) async throws {
        try await write { tx, _ in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            try await tx.execute("UPDATE folders SET subscribed = ? WHERE id = ?", .integer(subscribed ? 1 : 0), .text(f.id))
        }
    }

    /// The next UID of a folder and a new modification sequence for the change that takes it.
    func allocateUID(_ folderID: String, in tx: any StoreTransaction) async throws -> (uid: UInt32, modSeq: UInt64) {
        let rows = try await tx.query(
            "UPDATE folders SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING uidnext - 1 AS uid, highest_modseq",
            .text(folderID))
        guard let row = rows.first else { throw StoreError.notFound("folder \(folderID)") }
        let uid = try row.integer("uid")
        // RFC 9051 2.3.1.1: UIDs are 32-bit and never reused; a full folder takes no more.
        guard uid < Int64(UInt32.max) else { throw StoreError.conflict("the folder has used every UID; move its messages to a new folder") }
        return (UInt32(uid), UInt64(try row.integer("highest_modseq")))
    }

    /// A new modification sequence for a change to a folder (RFC 7162 3.1.1).
    func nextModSeq(_ folderID: String, in tx: any StoreTransaction) async throws -> UInt64 {
        let rows = try await tx.query("UPDATE folders SET highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING highest_modseq", .text(folderID))
        guard let row = rows.first else { throw StoreError.notFound("folder \(folderID)") }
        return UInt64(try row.integer("highest_modseq"))
    }

    // MARK: storing

    /// Stores a message in a mailbox folder (INBOX unless named): the exact bytes
    /// and its metadata, each sealed under the message's own data key. Durable when this returns.
    public func addMessage(
        mailbox: DirectAddress, bytes: [UInt8], metadata: MessageMetadata, folder: String = SpecialFolder.inbox.name,
        flags: MessageFlags = [], keywords: [String] = [], received: Date = Date()
    ) async throws -> String {
        try await append(mailbox: mailbox, folder: folder, bytes: bytes, metadata: metadata, flags: flags, keywords: keywords, received: received).id
    }

    /// `addMessage` with the UID it got (RFC 4315 APPENDUID).
    public func append(
        mailbox: DirectAddress, folder: String, bytes: [UInt8], metadata: MessageMetadata, flags: MessageFlags = [],
        keywords: [String] = [], received: Date = Date()
    ) async throws -> (id: String, uidValidity: UInt32, uid: UInt32) {
        try Self.checkMessage(bytes: bytes, metadata: metadata)
        let keywords = try Self.checkKeywords(keywords)
        return try await write { tx, touches in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            let (id, uid) = try await self.insertMessage(
                mailboxID: box, folderID: f.id, bytes: bytes, metadata: metadata, flags: flags, keywords: keywords, received: received, in: tx)
            touches.touch(box)
            return (id, f.uidValidity, uid)
        }
    }

    static func checkMessage(bytes: [UInt8], metadata: MessageMetadata) throws {
        guard bytes.count <= StoreLimits.maxMessageBytes else {
            throw StoreError.invalid("the message has \(bytes.count) bytes; the limit is \(StoreLimits.maxMessageBytes)")
        }
        guard metadata.recipients.count <= StoreLimits.maxRecipients else {
            throw StoreError.invalid("the message has \(metadata.recipients.count) recipients; the limit is \(StoreLimits.maxRecipients)")
        }
    }

    /// Keywords as stored: atoms (RFC 9051 9, `flag-keyword`), each once, within the limits.
    static func checkKeywords(_ keywords: [String]) throws -> [String] {
        var out: [String] = []
        for k in keywords where !out.contains(k) {
            guard !k.isEmpty, k.utf8.count <= StoreLimits.maxKeywordBytes,
                  k.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !"(){%*\"\\]".utf8.contains($0) })
            else { throw StoreError.invalid("\(SafeText.escape(k)) is not a keyword (an atom of at most \(StoreLimits.maxKeywordBytes) bytes)") }
            out.append(k)
        }
        guard out.count <= StoreLimits.maxKeywords else { throw StoreError.invalid("a message has at most \(StoreLimits.maxKeywords) keywords") }
        return out
    }

    /// A received message for a mailbox's INBOX, inside a caller's transaction.
    func insertMessage(mailbox: DirectAddress, bytes: [UInt8], metadata: MessageMetadata, received: Date = Date(),
                       in tx: any StoreTransaction, touches: MailboxTouches) async throws -> String {
        try Self.checkMessage(bytes: bytes, metadata: metadata)
        let box = try await mailboxID(mailbox, in: tx)
        let inbox = try await folder(mailboxID: box, named: SpecialFolder.inbox.name, in: tx)
        let (id, _) = try await insertMessage(mailboxID: box, folderID: inbox.id, bytes: bytes, metadata: metadata, flags: [], keywords: [],
                                              received: received, in: tx)
        touches.touch(box)
        return id
    }

    func insertMessage(
        mailboxID box: String, folderID: String, bytes: [UInt8], metadata: MessageMetadata, flags: MessageFlags, keywords: [String],
        received: Date, in tx: any StoreTransaction
    ) async throws -> (id: String, uid: UInt32) {
        let id = Envelope.newID()
        let recipients = metadata.recipients.joined(separator: "\n")
        let rk = try await self.newRowKey(table: "messages", id: id, in: tx)
        let (uid, modSeq) = try await allocateUID(folderID, in: tx)
        try await tx.execute(
            """
            INSERT INTO messages (id, mailbox_id, folder_id, uid, flags, modseq, received, size, kek_id, dek, message_id_index, sender_index,
                sender_enc, recipients_enc, subject_enc, message_id_enc, body_enc, keywords_enc)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            .text(id), .text(box), .text(folderID), .integer(Int64(uid)), .integer(flags.rawValue), .integer(Int64(modSeq)),
            .text(Timestamp.text(received)), .integer(Int64(bytes.count)), .integer(rk.kekID), .blob(rk.wrapped),
            metadata.messageID.isEmpty ? .null : .blob(self.blindIndex("message-id", metadata.messageID)),
            metadata.sender.isEmpty ? .null : .blob(self.blindIndex("address", metadata.sender)),
            try rk.seal("sender_enc", text: metadata.sender), try rk.seal("recipients_enc", text: recipients),
            try rk.seal("subject_enc", text: metadata.subject), try rk.seal("message_id_enc", text: metadata.messageID),
            try rk.seal("body_enc", bytes), keywords.isEmpty ? .null : try rk.seal("keywords_enc", text: keywords.joined(separator: " ")))
        try await self.audit("message.store", "message \(id)", detail: "mailbox \(box), folder \(folderID), uid \(uid), \(bytes.count) bytes", in: tx)
        return (id, uid)
    }

    /// Whether `mailbox` already received a message with this Message-ID (a redelivery).
    func hasMessage(mailbox: DirectAddress, messageID: String, in tx: any StoreTransaction) async throws -> Bool {
        guard !messageID.isEmpty else { return false }
        let boxID = try await mailboxID(mailbox, in: tx)
        // What the user wrote (Sent, Drafts) is not a received copy: a message sent to oneself is still delivered.
        let rows = try await tx.query(
            "SELECT id FROM messages WHERE mailbox_id = ? AND message_id_index = ? "
                + "AND folder_id NOT IN (SELECT id FROM folders WHERE mailbox_id = ? AND special IN ('sent', 'drafts')) LIMIT 1",
            .text(boxID), .blob(blindIndex("message-id", messageID)), .text(boxID))
        return !rows.isEmpty
    }

    // MARK: listing

    static let summaryColumns = "id, folder_id, uid, flags, modseq, received, size, kek_id, dek, sender_enc, recipients_enc, subject_enc, message_id_enc, keywords_enc"

    /// Every message of the mailbox, in every folder, oldest first, with their metadata opened.
    public func messages(mailbox: DirectAddress) async throws -> [MessageSummary] {
        try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let names = Dictionary(uniqueKeysWithValues: try await self.folders(mailboxID: box, in: tx).map { ($0.id, $0.name) })
            var out: [MessageSummary] = []
            for row in try await tx.query("SELECT \(Self.summaryColumns) FROM messages WHERE mailbox_id = ? ORDER BY received, id", .text(box)) {
                out.append(try await self.summary(row, mailbox: mailbox, folder: names[try row.text("folder_id")] ?? "", in: tx))
            }
            return out
        }
    }

    /// One page of a folder, newest first (page 1 holds the latest `size`
    /// messages), and how many the folder holds. Only the page's rows are opened.
    public func page(mailbox: DirectAddress, folder: String, number: Int, size: Int) async throws -> (total: Int, messages: [MessageSummary]) {
        guard number >= 1, (1...StoreLimits.maxPageSize).contains(size) else {
            throw StoreError.invalid("pages are numbered from 1 and hold 1 to \(StoreLimits.maxPageSize) messages")
        }
        return try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            let total = Int(try await tx.query("SELECT COUNT(*) AS n FROM messages WHERE folder_id = ?", .text(f.id)).first?.integer("n") ?? 0)
            // The page's first UID from the (folder, uid) index alone, then only the page's rows:
            // skipping rows with OFFSET in the full query would visit each skipped row.
            let start = try await tx.query("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid DESC LIMIT 1 OFFSET ?",
                                           .text(f.id), .integer(Int64((number - 1) * size)))
            guard let top = try start.first?.integer("uid") else { return (total, []) }
            let rows = try await tx.query(
                "SELECT \(Self.summaryColumns) FROM messages WHERE folder_id = ? AND uid <= ? ORDER BY uid DESC LIMIT ?",
                .text(f.id), .integer(top), .integer(Int64(size)))
            var out: [MessageSummary] = []
            for row in rows { out.append(try await self.summary(row, mailbox: mailbox, folder: f.name, in: tx)) }
            return (total, out)
        }
    }

    /// The messages of a folder whose UIDs are in `uids`, in UID order, with their metadata opened.
    public func messages(mailbox: DirectAddress, folder: String, uids: UIDRanges) async throws -> [MessageSummary] {
        try Self.checkRanges(uids)
        return try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            var out: [MessageSummary] = []
            for row in try await self.rows(Self.summaryColumns, folderID: f.id, uids: uids, in: tx) {
                out.append(try await self.summary(row, mailbox: mailbox, folder: f.name, in: tx))
            }
            return out
        }
    }

    /// The messages among `uids` with their size and arrival, from clear columns only (nothing
    /// is opened), in UID order: what an IMAP FETCH of sizes and dates, or a read in parts, needs.
    public func sizes(mailbox: DirectAddress, folder: String, uids: UIDRanges) async throws -> [(uid: UInt32, size: Int, received: Date)] {
        try Self.checkRanges(uids)
        return try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            return try await self.rows("uid, size, received", folderID: f.id, uids: uids, in: tx).map {
                (uid: UInt32(truncatingIfNeeded: try $0.integer("uid")), size: Int(try $0.integer("size")), received: Timestamp.date(try $0.text("received")))
            }
        }
    }

    /// Every message of a folder by UID with its size, from clear columns only (nothing is
    /// opened), in UID order, at most `limit` (the oldest); with the folder's status.
    public func sizes(mailbox: DirectAddress, folder: String, limit: Int) async throws -> (status: FolderStatus, messages: [(uid: UInt32, size: Int)]) {
        try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            let rows = try await tx.query("SELECT uid, size FROM messages WHERE folder_id = ? ORDER BY uid LIMIT \(max(1, limit))", .text(f.id))
            let messages = try rows.map { (uid: UInt32(truncatingIfNeeded: try $0.integer("uid")), size: Int(try $0.integer("size"))) }
            return (try await self.status(f, in: tx), messages)
        }
    }

    static func checkRanges(_ uids: UIDRanges) throws {
        guard uids.count <= StoreLimits.maxUIDRanges else { throw StoreError.invalid("a UID set has at most \(StoreLimits.maxUIDRanges) ranges") }
    }

    /// A folder's rows whose UIDs are in `uids`, in UID order, each once.
    func rows(_ columns: String, folderID: String, uids: UIDRanges, in tx: any StoreTransaction) async throws -> [StoreRow] {
        var seen = Set<Int64>()
        var out: [StoreRow] = []
        for r in uids {
            for row in try await tx.query("SELECT \(columns) FROM messages WHERE folder_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
                                          .text(folderID), .integer(Int64(r.lowerBound)), .integer(Int64(r.upperBound))) {
                if seen.insert(try row.integer("uid")).inserted { out.append(row) }
            }
        }
        return uids.count > 1 ? out.sorted { ((try? $0.integer("uid")) ?? 0) < ((try? $1.integer("uid")) ?? 0) } : out
    }

    func summary(_ row: StoreRow, mailbox: DirectAddress, folder: String, in tx: any StoreTransaction) async throws -> MessageSummary {
        let id = try row.text("id")
        let rk = try await rowKey(table: "messages", id: id, row: row, in: tx)
        let recipients = try rk.openText("recipients_enc", row)
        return MessageSummary(
            id: id, mailbox: mailbox, folder: folder, uid: UInt32(truncatingIfNeeded: try row.integer("uid")),
            flags: MessageFlags(rawValue: try row.integer("flags")), keywords: try Self.keywords(row, rk),
            modSeq: UInt64(try row.integer("modseq")), received: Timestamp.date(try row.text("received")), size: Int(try row.integer("size")),
            metadata: MessageMetadata(
                sender: try rk.openText("sender_enc", row),
                recipients: recipients.isEmpty ? [] : recipients.split(separator: "\n").map(String.init),
                subject: try rk.openText("subject_enc", row), messageID: try rk.openText("message_id_enc", row)))
    }

    static func keywords(_ row: StoreRow, _ rk: RowKey) throws -> [String] {
        guard row.optionalBlob("keywords_enc") != nil else { return [] }
        return try rk.openText("keywords_enc", row).split(separator: " ").map(String.init)
    }

    // MARK: reading

    /// A message's exact stored bytes, with its summary. Reading is audited
    /// (`message.read`, by `reader` or the store's actor), group-committed
    /// within a second (`ReadAudit`): a read costs no write of its own.
    public func message(_ id: String, reader: String? = nil) async throws -> (MessageSummary, [UInt8]) {
        guard id.utf8.count == 32, id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw StoreError.invalid("\(SafeText.escape(id)) is not a message id (32 lowercase hex digits)")
        }
        let found = try await database.transaction(write: false) { tx in
            let rows = try await tx.query("SELECT * FROM messages WHERE id = ?", .text(id))
            guard let row = rows.first else { throw StoreError.notFound("message \(id)") }
            let boxRows = try await tx.query("SELECT * FROM addresses WHERE id = ?", .text(try row.text("mailbox_id")))
            guard let boxRow = boxRows.first else { throw StoreError.integrity("message \(id): its mailbox is missing") }
            let (box, _) = try await self.addressRecord(boxRow, in: tx)
            let folders = try await tx.query("SELECT * FROM folders WHERE id = ?", .text(try row.text("folder_id")))
            guard let folderRow = folders.first else { throw StoreError.integrity("message \(id): its folder is missing") }
            let folder = try await self.folderRow(folderRow, in: tx)
            return try await self.opened(row, mailbox: box.address, folder: folder.name, in: tx)
        }
        reads.record(AuditEvent(actor: reader ?? actor, action: "message.read", object: "message \(id)", outcome: "ok"), at: Date())
        return found
    }

    /// The message with this UID in a folder, audited as `message(_:)` is.
    public func message(mailbox: DirectAddress, folder: String, uid: UInt32, reader: String? = nil) async throws -> (MessageSummary, [UInt8]) {
        let found = try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            let rows = try await tx.query("SELECT * FROM messages WHERE folder_id = ? AND uid = ?", .text(f.id), .integer(Int64(uid)))
            guard let row = rows.first else { throw StoreError.notFound("message \(uid) in \(SafeText.escape(folder))") }
            return try await self.opened(row, mailbox: mailbox, folder: f.name, in: tx)
        }
        reads.record(AuditEvent(actor: reader ?? actor, action: "message.read", object: "message \(found.0.id)", outcome: "ok"), at: Date())
        return found
    }

    /// The messages with these UIDs in a folder, with their bytes, in UID order, read in one
    /// transaction; each read is audited as `message(_:)` is.
    public func messagesWithBodies(mailbox: DirectAddress, folder: String, uids: UIDRanges, reader: String? = nil) async throws -> [(MessageSummary, [UInt8])] {
        try Self.checkRanges(uids)
        let found = try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            var out: [(MessageSummary, [UInt8])] = []
            for row in try await self.rows("*", folderID: f.id, uids: uids, in: tx) {
                out.append(try await self.opened(row, mailbox: mailbox, folder: f.name, in: tx))
            }
            return out
        }
        let now = Date()
        for (summary, _) in found {
            reads.record(AuditEvent(actor: reader ?? actor, action: "message.read", object: "message \(summary.id)", outcome: "ok"), at: now)
        }
        return found
    }

    func opened(_ row: StoreRow, mailbox: DirectAddress, folder: String, in tx: any StoreTransaction) async throws -> (MessageSummary, [UInt8]) {
        let summary = try await summary(row, mailbox: mailbox, folder: folder, in: tx)
        let rk = try await rowKey(table: "messages", id: summary.id, row: row, in: tx)
        let body = try rk.open("body_enc", row)
        guard body.count == summary.size else { throw StoreError.integrity("messages \(summary.id): size differs from the stored body") }
        return (summary, body)
    }

    // MARK: changing

    /// Sets, adds or removes flags and keywords on the messages with these UIDs
    /// (RFC 9051 6.4.6). With `unchangedSince` (RFC 7162 3.1.3), a message
    /// changed after that sequence is left alone and named in `failed`.
    /// A message whose flags do not change keeps its modification sequence.
    public func storeFlags(
        mailbox: DirectAddress, folder: String, uids: UIDRanges, _ change: FlagChange, flags: MessageFlags, keywords: [String] = [],
        unchangedSince: UInt64? = nil
    ) async throws -> (updated: [MessageState], failed: [UInt32]) {
        try Self.checkRanges(uids)
        let keywords = try Self.checkKeywords(keywords)
        return try await write { tx, touches in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            var updated: [MessageState] = []
            var failed: [UInt32] = []
            var modSeq: UInt64? = nil
            for row in try await self.rows("id, uid, flags, modseq, kek_id, dek, keywords_enc", folderID: f.id, uids: uids, in: tx) {
                let id = try row.text("id")
                let uid = UInt32(truncatingIfNeeded: try row.integer("uid"))
                let oldSeq = UInt64(try row.integer("modseq"))
                if let unchangedSince, oldSeq > unchangedSince {
                    failed.append(uid)
                    continue
                }
                let rk = try await self.rowKey(table: "messages", id: id, row: row, in: tx)
                let oldFlags = MessageFlags(rawValue: try row.integer("flags"))
                let oldKeywords = try Self.keywords(row, rk)
                var newFlags = oldFlags
                var newKeywords = oldKeywords
                switch change {
                case .replace:
                    newFlags = flags
                    newKeywords = keywords
                case .add:
                    newFlags.formUnion(flags)
                    newKeywords += keywords.filter { !oldKeywords.contains($0) }
                case .remove:
                    newFlags.subtract(flags)
                    newKeywords.removeAll { keywords.contains($0) }
                }
                guard newKeywords.count <= StoreLimits.maxKeywords else {
                    throw StoreError.invalid("a message has at most \(StoreLimits.maxKeywords) keywords")
                }
                guard newFlags != oldFlags || newKeywords != oldKeywords else {
                    updated.append(MessageState(uid: uid, flags: oldFlags, keywords: oldKeywords, modSeq: oldSeq))
                    continue
                }
                let seq: UInt64
                if let modSeq { seq = modSeq } else { seq = try await self.nextModSeq(f.id, in: tx); modSeq = seq }
                try await tx.execute("UPDATE messages SET flags = ?, modseq = ?, keywords_enc = ? WHERE id = ?",
                                     .integer(newFlags.rawValue), .integer(Int64(seq)),
                                     newKeywords.isEmpty ? .null : try rk.seal("keywords_enc", text: newKeywords.joined(separator: " ")), .text(id))
                updated.append(MessageState(uid: uid, flags: newFlags, keywords: newKeywords, modSeq: seq))
            }
            if modSeq != nil { touches.touch(box) }
            return (updated, failed)
        }
    }

    /// A write transaction over two folders of one mailbox (a copy or a move).
    func betweenFolders<T: Sendable>(
        _ mailbox: DirectAddress, from: String, to: String, uids: UIDRanges,
        _ body: @escaping @Sendable (any StoreTransaction, String, FolderRow, FolderRow, MailboxTouches) async throws -> T
    ) async throws -> T {
        try Self.checkRanges(uids)
        return try await write { tx, touches in
            let box = try await self.mailboxID(mailbox, in: tx)
            let source = try await self.folder(mailboxID: box, named: from, in: tx)
            let target = try await self.folder(mailboxID: box, named: to, in: tx)
            return try await body(tx, box, source, target, touches)
        }
    }

    /// Copies messages to another folder of the mailbox (RFC 9051 6.4.7), each
    /// sealed again under a key of its own; flags and keywords go with them.
    /// Returns the destination's UIDVALIDITY and each (source, new) UID pair (RFC 4315 COPYUID).
    public func copyMessages(mailbox: DirectAddress, from: String, uids: UIDRanges, to: String)
        async throws -> (uidValidity: UInt32, pairs: [(UInt32, UInt32)])
    {
        try await betweenFolders(mailbox, from: from, to: to, uids: uids) { tx, box, source, target, touches in
            var pairs: [(UInt32, UInt32)] = []
            for row in try await self.rows("*", folderID: source.id, uids: uids, in: tx) {
                let id = try row.text("id")
                let rk = try await self.rowKey(table: "messages", id: id, row: row, in: tx)
                let summary = try await self.summary(row, mailbox: mailbox, folder: source.name, in: tx)
                let body = try rk.open("body_enc", row)
                let (_, uid) = try await self.insertMessage(
                    mailboxID: box, folderID: target.id, bytes: body, metadata: summary.metadata, flags: summary.flags,
                    keywords: summary.keywords, received: summary.received, in: tx)
                pairs.append((summary.uid, uid))
            }
            if !pairs.isEmpty { touches.touch(box) }
            return (target.uidValidity, pairs)
        }
    }

    /// Moves messages to another folder of the mailbox (RFC 6851): each keeps
    /// its row and key and gets a UID in the destination; the source records
    /// the expunge. Returns what `copyMessages` returns.
    public func moveMessages(mailbox: DirectAddress, from: String, uids: UIDRanges, to: String)
        async throws -> (uidValidity: UInt32, pairs: [(UInt32, UInt32)])
    {
        try await betweenFolders(mailbox, from: from, to: to, uids: uids) { tx, box, source, target, touches in
            guard source.id != target.id else { throw StoreError.conflict("the messages are in \(SafeText.escape(to)) already") }
            var pairs: [(UInt32, UInt32)] = []
            var expungeSeq: UInt64? = nil
            for row in try await self.rows("id, uid", folderID: source.id, uids: uids, in: tx) {
                let old = UInt32(truncatingIfNeeded: try row.integer("uid"))
                let (uid, seq) = try await self.allocateUID(target.id, in: tx)
                try await tx.execute("UPDATE messages SET folder_id = ?, uid = ?, modseq = ? WHERE id = ?",
                                     .text(target.id), .integer(Int64(uid)), .integer(Int64(seq)), .text(try row.text("id")))
                let s: UInt64
                if let expungeSeq { s = expungeSeq } else { s = try await self.nextModSeq(source.id, in: tx); expungeSeq = s }
                try await tx.execute("INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
                                     .text(source.id), .integer(Int64(old)), .integer(Int64(s)))
                pairs.append((old, uid))
            }
            if !pairs.isEmpty {
                try await self.audit("message.move", "folder \(source.id)", detail: "\(pairs.count) message(s) to folder \(target.id)", in: tx)
                touches.touch(box)
            }
            return (target.uidValidity, pairs)
        }
    }

    /// Removes the messages flagged \Deleted (RFC 9051 6.4.3), or only those
    /// of them whose UIDs are in `uids` (RFC 4315 UID EXPUNGE). Returns their UIDs.
    public func expunge(mailbox: DirectAddress, folder: String, uids: UIDRanges? = nil) async throws -> [UInt32] {
        if let uids { try Self.checkRanges(uids) }
        return try await write { tx, touches in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            let rows = try await self.rows("id, uid, flags", folderID: f.id, uids: uids ?? [1...UInt32.max], in: tx)
            let doomed = try rows.filter { MessageFlags(rawValue: try $0.integer("flags")).contains(.deleted) }
            guard !doomed.isEmpty else { return [] }
            let seq = try await self.nextModSeq(f.id, in: tx)
            var gone: [UInt32] = []
            for row in doomed {
                let uid = try row.integer("uid")
                try await tx.execute("DELETE FROM messages WHERE id = ?", .text(try row.text("id")))
                try await tx.execute("INSERT OR REPLACE INTO expunged (folder_id, uid, modseq) VALUES (?, ?, ?)",
                                     .text(f.id), .integer(uid), .integer(Int64(seq)))
                gone.append(UInt32(truncatingIfNeeded: uid))
            }
            try await self.audit("message.expunge", "folder \(f.id)", detail: "mailbox \(box), \(gone.count) message(s)", in: tx)
            touches.touch(box)
            return gone
        }
    }

    /// What changed in a folder after modification sequence `since` (RFC 7162): the messages added or
    /// changed (with their flags), and the UIDs expunged. Only the changed rows with keywords are opened.
    public func changes(mailbox: DirectAddress, folder: String, since: UInt64) async throws -> FolderChanges {
        try await database.transaction(write: false) { tx in
            let box = try await self.mailboxID(mailbox, in: tx)
            let f = try await self.folder(mailboxID: box, named: folder, in: tx)
            var changed: [MessageState] = []
            for row in try await tx.query("SELECT id, uid, flags, modseq, kek_id, dek, keywords_enc FROM messages WHERE folder_id = ? AND modseq > ? ORDER BY uid",
                                          .text(f.id), .integer(Int64(min(since, UInt64(Int64.max))))) {
                var keywords: [String] = []
                if row.optionalBlob("keywords_enc") != nil {
                    keywords = try Self.keywords(row, try await self.rowKey(table: "messages", id: try row.text("id"), row: row, in: tx))
                }
                changed.append(MessageState(uid: UInt32(truncatingIfNeeded: try row.integer("uid")), flags: MessageFlags(rawValue: try row.integer("flags")),
                                            keywords: keywords, modSeq: UInt64(try row.integer("modseq"))))
            }
            let expunged = try await tx.query("SELECT uid FROM expunged WHERE folder_id = ? AND modseq > ? ORDER BY uid",
                                              .text(f.id), .integer(Int64(min(since, UInt64(Int64.max))))).map { UInt32(truncatingIfNeeded: try $0.integer("uid")) }
            return FolderChanges(status: try await self.status(f, in: tx), changed: changed, expunged: expunged)
        }
    }

    /// The mailbox row id behind an address (what `signals` are keyed by).
    public func mailboxKey(_ mailbox: DirectAddress) async throws -> String {
        try await database.transaction(write: false) { tx in try await self.mailboxID(mailbox, in: tx) }
    }
}
