/// The store's tables. Columns named `*_enc` hold Envelope ciphertexts under
/// the row's data key (`dek`, wrapped under key-encryption key `kek_id`);
/// columns named `*_index` hold blind indexes. What stays in clear: ids,
/// times, states, sizes, domain names, and public CA certificates.
enum Schema {
    static let version = 6

    /// Statements that bring a store of version `key - 1` to version `key`.
    static let migrations: [Int: [String]] = [
        // Version 1 had a placeholder queue table that nothing wrote to.
        2: ["DROP TABLE IF EXISTS queue"] + gatewayTablesVersion2,
        // Version 3 keeps the outbound message and its wire form out of the outbound
        // row, whose state changes rewrote them. The ciphertexts move as they are:
        // their key is still the outbound row's and their context still names
        // the outbound row and the column they came from.
        3: [
            outboundBlobs,
            "INSERT INTO outbound_blobs (outbound_id, part, data) SELECT id, 'body_enc', body_enc FROM outbound",
            "INSERT INTO outbound_blobs (outbound_id, part, data) SELECT id, 'wire_enc', wire_enc FROM outbound WHERE wire_enc IS NOT NULL",
            "ALTER TABLE outbound DROP COLUMN body_enc",
            "ALTER TABLE outbound DROP COLUMN wire_enc",
        ],
        // Version 4 drops the unique index on trace ids (see `traceTable`). Rows keep
        // their ids, data keys and ciphertexts, and their rowids (the order they were written in).
        4: [
            traceTable.replacingOccurrences(of: "CREATE TABLE trace (", with: "CREATE TABLE trace_v4 ("),
            "INSERT INTO trace_v4 (rowid, id, message_id_index, at, step, outcome, kek_id, dek, detail_enc) "
                + "SELECT rowid, id, message_id_index, at, step, outcome, kek_id, dek, detail_enc FROM trace",
            "DROP TABLE trace",
            "ALTER TABLE trace_v4 RENAME TO trace",
            traceIndex,
        ],
        // Version 5 gives mailboxes folders, UIDs, flags and modification sequences
        // (RFC 9051 2.3.1.1, RFC 7162). Every mailbox gets its five special folders;
        // what was stored before lands in INBOX, unread, with UIDs in the order it
        // was received. Message rows keep their ids, data keys and ciphertexts.
        5: [
            foldersTable,
            expungedTable,
        ] + SpecialFolder.allCases.map { f in
            """
            INSERT INTO folders (id, mailbox_id, special, uidvalidity, uidnext, highest_modseq, subscribed, created)
            SELECT lower(hex(randomblob(16))), id, '\(f.rawValue)', CAST(strftime('%s', 'now') AS INTEGER), 1, 1, 1,
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM addresses
            """
        } + [
            messagesTable.replacingOccurrences(of: "CREATE TABLE messages (", with: "CREATE TABLE messages_v5 ("),
            """
            INSERT INTO messages_v5 (id, mailbox_id, folder_id, uid, flags, modseq, received, size, kek_id, dek, message_id_index,
                sender_index, sender_enc, recipients_enc, subject_enc, message_id_enc, body_enc)
            SELECT m.id, m.mailbox_id, f.id, ROW_NUMBER() OVER (PARTITION BY m.mailbox_id ORDER BY m.received, m.id), 0, 1, m.received,
                m.size, m.kek_id, m.dek, m.message_id_index, m.sender_index, m.sender_enc, m.recipients_enc, m.subject_enc,
                m.message_id_enc, m.body_enc
            FROM messages m JOIN folders f ON f.mailbox_id = m.mailbox_id AND f.special = 'inbox'
            """,
            "DROP TABLE messages",
            "ALTER TABLE messages_v5 RENAME TO messages",
            "UPDATE folders SET uidnext = 1 + (SELECT COUNT(*) FROM messages WHERE messages.folder_id = folders.id)",
        ] + messageIndexes,
        // Version 6 gives queue rows a lease (see `queueLeases`).
        6: queueLeases,
    ]

    /// Who is sending a queue row, and until when: a node leases the rows it
    /// sends, so that nodes sharing one database never send a row twice, and
    /// the rows of a node that died are sent by another once the lease runs out.
    static let queueLeases = [
        "ALTER TABLE queue ADD COLUMN lease_holder TEXT",
        "ALTER TABLE queue ADD COLUMN lease_until TEXT",
    ]

    /// The folders of each mailbox. The five special ones (RFC 6154) are named by
    /// `special` and have no sealed name; a user folder's name is sealed (it may
    /// name a patient) and found by its blind index, under the folder row's own
    /// data key (`kek_id`, `dek`, set only for user folders).
    /// Per folder: UIDVALIDITY, the next UID and the highest modification
    /// sequence (RFC 9051 2.3.1.1, RFC 7162 3.1.1). Migration 5 builds the
    /// table from this text: a later change here must first copy today's text
    /// into that migration, which is history.
    static let foldersTable = """
        CREATE TABLE folders (
            id TEXT PRIMARY KEY,
            mailbox_id TEXT NOT NULL REFERENCES addresses(id),
            special TEXT CHECK (special IN ('inbox', 'sent', 'drafts', 'trash', 'archive')),
            name_index BLOB,
            uidvalidity INTEGER NOT NULL,
            uidnext INTEGER NOT NULL,
            highest_modseq INTEGER NOT NULL,
            subscribed INTEGER NOT NULL DEFAULT 1,
            created TEXT NOT NULL,
            kek_id INTEGER,
            dek BLOB,
            name_enc BLOB,
            UNIQUE (mailbox_id, special),
            UNIQUE (mailbox_id, name_index),
            CHECK ((special IS NULL) = (name_index IS NOT NULL AND name_enc IS NOT NULL AND dek IS NOT NULL)))
        """

    /// The UIDs expunged from a folder and the modification sequence of each
    /// expunge, so that "what changed since N" can name them (RFC 7162 3.2.5.2).
    static let expungedTable = """
        CREATE TABLE expunged (
            folder_id TEXT NOT NULL REFERENCES folders(id),
            uid INTEGER NOT NULL,
            modseq INTEGER NOT NULL,
            PRIMARY KEY (folder_id, uid))
        """

    /// Messages in mailbox folders; every PHI-bearing field sealed under the
    /// message's data key. `flags` holds the system flags as bits (`MessageFlags`);
    /// keywords are sealed. Migration 5 builds the table from this text.
    static let messagesTable = """
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            mailbox_id TEXT NOT NULL REFERENCES addresses(id),
            folder_id TEXT NOT NULL REFERENCES folders(id),
            uid INTEGER NOT NULL,
            flags INTEGER NOT NULL DEFAULT 0,
            modseq INTEGER NOT NULL,
            received TEXT NOT NULL,
            size INTEGER NOT NULL,
            kek_id INTEGER NOT NULL,
            dek BLOB NOT NULL,
            message_id_index BLOB,
            sender_index BLOB,
            sender_enc BLOB NOT NULL,
            recipients_enc BLOB NOT NULL,
            subject_enc BLOB NOT NULL,
            message_id_enc BLOB NOT NULL,
            body_enc BLOB NOT NULL,
            keywords_enc BLOB,
            UNIQUE (folder_id, uid))
        """

    static let messageIndexes = [
        "CREATE INDEX messages_mailbox ON messages (mailbox_id, received)",
        "CREATE INDEX messages_message_id ON messages (message_id_index)",
        "CREATE INDEX messages_modseq ON messages (folder_id, modseq)",
        "CREATE INDEX folders_mailbox ON folders (mailbox_id)",
    ]

    /// The large parts of an outbound message, each in a row of its own, so that
    /// the many small changes to the outbound row do not rewrite them:
    /// `body_enc`, the message as submitted, and `wire_enc`, the signed and
    /// encrypted form once made. Each is sealed under the outbound row's data
    /// key, with the outbound row and the part named in its context.
    static let outboundBlobs = """
        CREATE TABLE outbound_blobs (
            outbound_id TEXT NOT NULL REFERENCES outbound(id),
            part TEXT NOT NULL CHECK (part IN ('body_enc', 'wire_enc')),
            data BLOB NOT NULL,
            PRIMARY KEY (outbound_id, part))
        """

    /// The gateway's tables as version 2 made them (for the migration from
    /// version 1): the outbound row still held the message and its wire form.
    static var gatewayTablesVersion2: [String] {
        ["CREATE TABLE outbound (\(outboundColumns),\n    body_enc BLOB NOT NULL,\n    wire_enc BLOB)"]
            + gatewayTables.filter { $0 != outboundTable && $0 != outboundBlobs }
    }

    static let outboundColumns = """
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('message', 'notification')),
            state TEXT NOT NULL CHECK (state IN ('new', 'ready', 'done')),
            created TEXT NOT NULL,
            wants_dispatched INTEGER NOT NULL DEFAULT 0,
            kek_id INTEGER NOT NULL,
            dek BLOB NOT NULL,
            message_id_index BLOB NOT NULL,
            sender_enc BLOB NOT NULL,
            message_id_enc BLOB NOT NULL
        """
    // One row per message handed to the gateway for sending (a submission or an MDN we send);
    // the message itself is in `outbound_blobs`.
    static let outboundTable = "CREATE TABLE outbound (\n\(outboundColumns))"

    /// The gateway's tables: submitted messages (and their blobs), one queue
    /// row per recipient, and the per-message trace `hisp message trace` reads.
    static let gatewayTables: [String] = [
        outboundTable,
        outboundBlobs,
        "CREATE INDEX outbound_state ON outbound (state, created)",
        "CREATE INDEX outbound_message_id ON outbound (message_id_index)",
        // One row per outbound message and recipient. The recipient's domain stays in clear to
        // group deliveries by destination (docs/storage.md); the address is sealed.
        """
        CREATE TABLE queue (
            id TEXT PRIMARY KEY,
            outbound_id TEXT NOT NULL REFERENCES outbound(id),
            domain TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            deadline TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            kek_id INTEGER NOT NULL,
            dek BLOB NOT NULL,
            recipient_index BLOB NOT NULL,
            recipient_enc BLOB NOT NULL,
            last_error_enc BLOB)
        """,
        "CREATE INDEX queue_due ON queue (state, next_attempt)",
        "CREATE INDEX queue_outbound ON queue (outbound_id)",
        "CREATE INDEX queue_deadline ON queue (state, deadline)",
        traceTable,
        traceIndex,
    ]

    /// What happened to a message, step by step, found by its Message-ID's
    /// blind index and kept in the order written (rowid). The random `id`
    /// names the row in its ciphertexts' context only, so it has no index:
    /// a unique index on it put every trace row on a page of its own and was
    /// a sixth of the pages a busy gateway wrote to the WAL.
    /// Migration 4 builds the table from this text: a later change here must
    /// first copy today's text into that migration, which is history.
    static let traceTable = """
        CREATE TABLE trace (
            id TEXT NOT NULL,
            message_id_index BLOB NOT NULL,
            at TEXT NOT NULL,
            step TEXT NOT NULL,
            outcome TEXT NOT NULL,
            kek_id INTEGER NOT NULL,
            dek BLOB NOT NULL,
            detail_enc BLOB NOT NULL)
        """
    static let traceIndex = "CREATE INDEX trace_message ON trace (message_id_index, at)"

    static let statements: [String] = [
        """
        CREATE TABLE meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL)
        """,
        // How the master key is derived (kind, scrypt parameters) now and, during a rotation, next.
        """
        CREATE TABLE master (
            slot TEXT PRIMARY KEY CHECK (slot IN ('current', 'next')),
            kind TEXT NOT NULL,
            kdf TEXT)
        """,
        // Key-encryption keys, wrapped under the master key. During a rotation the next
        // KEK is also wrapped under the current master key (wrapped_current).
        """
        CREATE TABLE keks (
            id INTEGER PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('active', 'next')),
            wrapped BLOB NOT NULL,
            wrapped_current BLOB,
            created TEXT NOT NULL)
        """,
        // The blind-index key and the audit key, wrapped under a KEK.
        """
        CREATE TABLE system_keys (
            purpose TEXT PRIMARY KEY,
            kek_id INTEGER NOT NULL,
            wrapped BLOB NOT NULL)
        """,
        """
        CREATE TABLE domains (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            ca_cert BLOB NOT NULL,
            cert BLOB NOT NULL,
            kek_id INTEGER NOT NULL,
            dek BLOB NOT NULL,
            ca_key_enc BLOB NOT NULL,
            key_enc BLOB NOT NULL,
            dns_host TEXT NOT NULL,
            dns_ipv4 TEXT,
            dns_ipv6 TEXT)
        """,
        """
        CREATE TABLE addresses (
            id TEXT PRIMARY KEY,
            domain_id TEXT NOT NULL REFERENCES domains(id),
            address_index BLOB NOT NULL UNIQUE,
            created TEXT NOT NULL,
            kek_id INTEGER NOT NULL,
            dek BLOB NOT NULL,
            address_enc BLOB NOT NULL,
            cert_enc BLOB NOT NULL,
            key_enc BLOB NOT NULL,
            password_enc BLOB)
        """,
        """
        CREATE TABLE anchors (
            id TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing', 'both')),
            sha256 TEXT NOT NULL,
            subject TEXT NOT NULL,
            cert BLOB NOT NULL,
            created TEXT NOT NULL,
            UNIQUE (domain, sha256))
        """,
        """
        CREATE TABLE bundles (
            id TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing', 'both')),
            source TEXT NOT NULL,
            refresh_seconds INTEGER NOT NULL,
            signers_pem TEXT,
            created TEXT NOT NULL,
            UNIQUE (domain, source))
        """,
        foldersTable,
        expungedTable,
        messagesTable,
    ] + messageIndexes + gatewayTables + queueLeases + [
        // The audit trail: each event's MAC covers the previous event's MAC.
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            object TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL,
            mac BLOB NOT NULL)
        """,
    ]

    /// Tables whose rows carry a wrapped data key (`kek_id`, `dek`), for rotation.
    static let keyedTables = ["domains", "addresses", "folders", "messages", "outbound", "queue", "trace"]
}
