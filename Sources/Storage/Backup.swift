import Crypto
import Foundation

/// The backup file format: a store snapshot encrypted in chunks.
///
///     "HISPBAK1" | u32 header length | header (JSON) | { u32 length | sealed chunk }...
///
/// The header records how the master key is derived (kind, scrypt parameters:
/// not secret) and the backup's own AES-256 key wrapped under the master key.
/// Each chunk is AES-256-GCM with associated data naming the backup, the
/// header's SHA-256, the chunk's position and whether it is the last one, so
/// an altered header, a reordered, dropped or altered chunk, and a truncated
/// file are each detected.
public struct BackupHeader: Codable, Sendable {
    public var format: Int
    public var backupID: String
    public var created: String
    public var masterKind: String
    public var kdf: String?
    public var wrappedKey: String
    public var chunkSize: Int
    public var plaintextBytes: Int64
}

public enum BackupFormat {
    public static let magic = Array("HISPBAK1".utf8)
    public static let defaultChunkSize = 1 << 20
    static let maxHeaderBytes = 64 * 1024
    static let maxChunkSize = 16 << 20

    static func keyContext(_ backupID: String) -> [UInt8] { Envelope.context("backup-key", backupID) }
    static func chunkContext(_ backupID: String, headerHash: String, index: UInt64, final: Bool) -> [UInt8] {
        Envelope.context("backup-chunk", backupID, headerHash, String(index), final ? "final" : "more")
    }
}

/// Seals a snapshot chunk by chunk.
public struct BackupWriter: Sendable {
    public let header: BackupHeader
    /// The bytes to write before the first chunk.
    public let prefix: [UInt8]
    let key: SymmetricKey
    let headerHash: String
    var index: UInt64 = 0

    init(masterKey: SymmetricKey, kind: String, kdf: String?, plaintextBytes: Int64, chunkSize: Int = BackupFormat.defaultChunkSize) throws {
        let id = Envelope.newID()
        let key = SymmetricKey(size: .bits256)
        let header = BackupHeader(
            format: 1, backupID: id, created: Timestamp.text(Date()), masterKind: kind, kdf: kdf,
            wrappedKey: Data(try Envelope.wrap(key, under: masterKey, context: BackupFormat.keyContext(id))).base64EncodedString(),
            chunkSize: chunkSize, plaintextBytes: plaintextBytes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = Array(try encoder.encode(header))
        self.header = header
        self.key = key
        self.headerHash = SHA256.hash(data: json).map { String(format: "%02x", $0) }.joined()
        self.prefix = BackupFormat.magic + withUnsafeBytes(of: UInt32(json.count).bigEndian, Array.init) + json
    }

    /// One sealed chunk with its length prefix. `final` marks the last one.
    public mutating func seal(_ chunk: some DataProtocol, final: Bool) throws -> [UInt8] {
        let context = BackupFormat.chunkContext(header.backupID, headerHash: headerHash, index: index, final: final)
        index += 1
        let sealed = try Envelope.seal(chunk, key: key, context: context)
        return withUnsafeBytes(of: UInt32(sealed.count).bigEndian, Array.init) + sealed
    }
}

/// Opens a backup chunk by chunk: feed it bytes as they are read.
public struct BackupReader: Sendable {
    public private(set) var header: BackupHeader?
    var headerHash = ""
    var key: SymmetricKey?
    var buffer: [UInt8] = []
    var index: UInt64 = 0
    public private(set) var finished = false
    public private(set) var plaintextBytes: Int64 = 0
    let material: MasterKeyMaterial

    public init(material: MasterKeyMaterial) { self.material = material }

    /// Appends input and returns every plaintext chunk it completes.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [[UInt8]] {
        buffer.append(contentsOf: bytes)
        var out: [[UInt8]] = []
        if header == nil {
            guard buffer.count >= 12 else { return [] }
            guard Array(buffer[0..<8]) == BackupFormat.magic else {
                throw StoreError.invalid("not a DirectHISP backup (no HISPBAK1 signature)")
            }
            let length = Int(UInt32(bigEndian: buffer[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
            guard length <= BackupFormat.maxHeaderBytes else { throw StoreError.invalid("backup header of \(length) bytes exceeds the limit") }
            guard buffer.count >= 12 + length else { return [] }
            let json = Array(buffer[12..<(12 + length)])
            let header: BackupHeader
            do { header = try JSONDecoder().decode(BackupHeader.self, from: Data(json)) } catch {
                throw StoreError.invalid("unreadable backup header")
            }
            guard header.format == 1, (4096...BackupFormat.maxChunkSize).contains(header.chunkSize) else {
                throw StoreError.invalid("unsupported backup format \(header.format) or chunk size \(header.chunkSize)")
            }
            guard header.masterKind == material.kind.rawValue else {
                throw StoreError.wrongKey("this backup was made with a \(header.masterKind), not a \(material.kind.rawValue)")
            }
            let master = try material.masterKey(try header.kdf.map(KDFParameters.decode))
            guard let wrapped = Data(base64Encoded: header.wrappedKey),
                  let key = try? Envelope.unwrap(Array(wrapped), under: master, context: BackupFormat.keyContext(header.backupID), what: "backup key")
            else { throw StoreError.wrongKey("\(material.origin) does not open this backup") }
            self.header = header
            self.key = key
            self.headerHash = SHA256.hash(data: json).map { String(format: "%02x", $0) }.joined()
            buffer.removeFirst(12 + length)
        }
        guard let header, let key else { return out }
        while buffer.count >= 4 {
            let length = Int(UInt32(bigEndian: buffer[0..<4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
            guard length <= header.chunkSize + Envelope.overhead else {
                throw StoreError.integrity("backup chunk \(index): length \(length) exceeds the chunk size")
            }
            guard buffer.count >= 4 + length else { break }
            guard !finished else { throw StoreError.integrity("backup: data after the final chunk") }
            let sealed = Array(buffer[4..<(4 + length)])
            buffer.removeFirst(4 + length)
            let chunkIndex = index
            index += 1
            // The last chunk authenticates only with "final" in its context; any other only with "more".
            if let plain = try? Envelope.open(sealed, key: key, context: BackupFormat.chunkContext(
                header.backupID, headerHash: headerHash, index: chunkIndex, final: false), what: "") {
                out.append(plain)
                plaintextBytes += Int64(plain.count)
            } else {
                let plain = try Envelope.open(sealed, key: key, context: BackupFormat.chunkContext(
                    header.backupID, headerHash: headerHash, index: chunkIndex, final: true), what: "backup chunk \(chunkIndex)")
                out.append(plain)
                plaintextBytes += Int64(plain.count)
                finished = true
            }
        }
        return out
    }

    /// Call at end of input: a backup that stops before its final chunk is truncated.
    public func finish() throws {
        guard header != nil else { throw StoreError.invalid("the backup is empty or its header is cut off") }
        guard finished, buffer.isEmpty else { throw StoreError.integrity("the backup is truncated (no final chunk)") }
        guard plaintextBytes == header?.plaintextBytes else {
            throw StoreError.integrity("the backup holds \(plaintextBytes) bytes but its header says \(header?.plaintextBytes ?? 0)")
        }
    }
}

extension HISPStore {
    /// A writer for a backup of this store, under its current master key.
    public func backupWriter(plaintextBytes: Int64) async throws -> BackupWriter {
        let master = keys.masterKey
        let row = try await database.transaction(write: false) { tx in
            try await tx.query("SELECT kind, kdf FROM master WHERE slot = 'current'").first
        }
        guard let row else { throw StoreError.integrity("the store records no master key") }
        return try BackupWriter(masterKey: master, kind: try row.text("kind"), kdf: row.optionalText("kdf"), plaintextBytes: plaintextBytes)
    }

    /// A consistent snapshot of the database to `path` (see `StoreDatabase.snapshot`).
    public func snapshot(to path: String) async throws {
        try await database.snapshot(to: path)
    }

    public func recordBackup(_ backupID: String, bytes: Int64) async throws {
        try await recordEvent("backup.create", object: "backup \(backupID)", outcome: "ok", detail: "\(bytes) bytes")
    }

    /// Checks every sealed value in the store opens (a full integrity pass).
    public func verifyCiphertexts() async throws -> Int {
        try await database.transaction(write: false) { tx in
            var n = 0
            for row in try await tx.query("SELECT * FROM domains", []) {
                let rk = try await self.rowKey(table: "domains", id: try row.text("id"), row: row, in: tx)
                _ = try rk.open("ca_key_enc", row); _ = try rk.open("key_enc", row); n += 2
            }
            for row in try await tx.query("SELECT * FROM addresses", []) {
                let (_, rk) = try await self.addressRecord(row, in: tx)
                _ = try rk.open("key_enc", row); n += 3
                if row.optionalBlob("password_enc") != nil { _ = try rk.open("password_enc", row); n += 1 }
            }
            for row in try await tx.query("SELECT * FROM folders WHERE special IS NULL", []) {
                _ = try await self.folderRow(row, in: tx); n += 1
            }
            var after = ""
            while true {
                let rows = try await tx.query("SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT 100", .text(after))
                if rows.isEmpty { break }
                for row in rows {
                    let id = try row.text("id")
                    let rk = try await self.rowKey(table: "messages", id: id, row: row, in: tx)
                    for c in ["sender_enc", "recipients_enc", "subject_enc", "message_id_enc", "body_enc"] { _ = try rk.open(c, row) }
                    n += 5
                    if row.optionalBlob("keywords_enc") != nil { _ = try rk.open("keywords_enc", row); n += 1 }
                    after = id
                }
            }
            return n
        }
    }
}
