import ArgumentParser
import DirectCore
import Foundation
import SQLiteStore
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Encrypted, consistent backups of the whole store.",
        discussion: """
            A backup is a snapshot of the store taken in one read transaction (the HISP keeps running), encrypted \
            in 1 MiB AES-256-GCM chunks under a key wrapped by the master key. Restoring it needs the master key \
            that was current when it was made: keep old key files as long as backups made with them.
            """,
        subcommands: [Create.self, Verify.self, Restore.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write an encrypted backup while the HISP runs.")
        @Option(help: "The backup file to write (mode 0600; never overwritten).") var out: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try CommandIO.refuseExisting(out)
            let partial = out + ".partial"
            try CommandIO.refuseExisting(partial)
            let snapshot = (store.data as NSString).appendingPathComponent(".backup-\(Envelope.newID()).sqlite")
            try await store.withStore { s in
                defer { try? FileManager.default.removeItem(atPath: snapshot) }
                try await s.snapshot(to: snapshot)
                let size = Int64((try? FileManager.default.attributesOfItem(atPath: snapshot)[.size] as? Int) ?? 0)
                var writer = try await s.backupWriter(plaintextBytes: size)
                let written: Int64
                do {
                    written = try BackupFiles.encrypt(snapshot, size: size, writer: &writer, to: partial)
                    guard rename(partial, out) == 0 else { throw CLIFailure.usage("cannot rename \(partial) to \(out): \(String(cString: strerror(errno)))") }
                } catch {
                    try? FileManager.default.removeItem(atPath: partial)
                    throw error
                }
                try await s.recordBackup(writer.header.backupID, bytes: written)
                say("wrote backup \(out): \(written) bytes, snapshot of \(size) bytes, id \(writer.header.backupID)")
                say("  encrypted under the current master key (\(writer.header.masterKind)); restore with: hisp backup restore --in \(out) --data NEWDIR and the same key")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt a backup and check it completely (chunks, database structure, every ciphertext, the audit chain).")
        @Option(name: .customLong("in"), help: "The backup file.") var input: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let material = try MasterKeyOptions.material(
                keyFile: store.keyFile, passphraseFile: store.passphraseFile, creating: false, dataDirectory: nil)
            let dir = try BackupFiles.privateTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = (dir as NSString).appendingPathComponent(StoreOptions.databaseName)
            let header = try BackupFiles.decrypt(input, material: material, to: path)
            let report = try await BackupFiles.check(path, material: material, record: nil)
            say("backup \(input) is good: id \(header.backupID), made \(header.created)")
            say(report)
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a backup into a new data directory (which must not exist or be empty), then check it.")
        @Option(name: .customLong("in"), help: "The backup file.") var input: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let fm = FileManager.default
            if fm.fileExists(atPath: store.data) {
                let entries = (try? fm.contentsOfDirectory(atPath: store.data)) ?? ["?"]
                guard entries.isEmpty else { throw CLIFailure.usage("\(store.data) is not empty; restore into a new directory") }
            }
            let material = try store.material()
            try fm.createDirectory(atPath: store.data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            do {
                let header = try BackupFiles.decrypt(input, material: material, to: store.databasePath)
                let report = try await BackupFiles.check(store.databasePath, material: material, record: header.backupID)
                say("restored backup \(input) (id \(header.backupID), made \(header.created)) into \(store.data)")
                say(report)
            } catch {
                for name in [StoreOptions.databaseName, StoreOptions.databaseName + "-wal", StoreOptions.databaseName + "-shm"] {
                    try? fm.removeItem(atPath: (store.data as NSString).appendingPathComponent(name))
                }
                throw error
            }
        }
    }
}

/// Streaming backup files in and out.
enum BackupFiles {
    static let chunk = 1 << 20

    static func createExclusive(_ path: String) throws -> FileHandle {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIFailure.usage("cannot create \(path): \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    static func encrypt(_ snapshot: String, size: Int64, writer: inout BackupWriter, to path: String) throws -> Int64 {
        guard let input = FileHandle(forReadingAtPath: snapshot) else { throw CLIFailure.usage("cannot read the snapshot \(snapshot)") }
        defer { try? input.close() }
        let output = try createExclusive(path)
        var progress = ProgressBar(label: "backup", total: size)
        var written = Int64(writer.prefix.count)
        try output.write(contentsOf: writer.prefix)
        var read: Int64 = 0
        repeat {
            let data = try input.read(upToCount: chunk) ?? Data()
            read += Int64(data.count)
            let sealed = try writer.seal(data, final: read >= size || data.isEmpty)
            try output.write(contentsOf: sealed)
            written += Int64(sealed.count)
            progress.update(read)
            if data.isEmpty { break }
        } while read < size
        progress.finish()
        try output.synchronize()
        try output.close()
        return written
    }

    /// Decrypts a backup into `path` (created mode 0600), checking every chunk and that nothing is missing.
    static func decrypt(_ backup: String, material: MasterKeyMaterial, to path: String) throws -> BackupHeader {
        guard let input = FileHandle(forReadingAtPath: backup) else { throw CLIFailure.usage("cannot read \(backup): no such file") }
        defer { try? input.close() }
        let total = Int64((try? FileManager.default.attributesOfItem(atPath: backup)[.size] as? Int) ?? 0)
        let output = try createExclusive(path)
        var reader = BackupReader(material: material)
        var progress = ProgressBar(label: "restore", total: total)
        var read: Int64 = 0
        while let data = try input.read(upToCount: chunk), !data.isEmpty {
            read += Int64(data.count)
            for plain in try reader.feed(data) { try output.write(contentsOf: plain) }
            progress.update(read)
        }
        progress.finish()
        try reader.finish()
        try output.synchronize()
        try output.close()
        guard let header = reader.header else { throw StoreError.invalid("the backup has no header") }
        return header
    }

    /// Opens a restored database and checks it through and through.
    static func check(_ path: String, material: MasterKeyMaterial, record backupID: String?) async throws -> String {
        let database = try await SQLiteDatabase.open(path: path, create: false)
        let structure = try await database.checkStructure()
        guard structure == ["ok"] else {
            try? await database.close()
            throw StoreError.integrity("the database in the backup is damaged: \(structure.prefix(3).joined(separator: "; "))")
        }
        let store: HISPStore
        do { store = try await HISPStore.open(database: database, material: material, actor: StoreOptions.actor) } catch {
            try? await database.close()
            throw error
        }
        do {
            let audit = try await store.verifyAudit()
            if let failure = audit.failure { throw StoreError.integrity("audit trail: \(failure)") }
            let sealed = try await store.verifyCiphertexts()
            let counts = try await store.counts().map { "\($0.table) \($0.rows)" }.joined(separator: ", ")
            if let backupID { try await store.recordEvent("backup.restore", object: "backup \(backupID)", outcome: "ok") }
            try await store.close()
            return "  \(counts)\n  \(sealed) sealed values open, audit chain of \(audit.events) events intact"
        } catch {
            try? await store.close()
            throw error
        }
    }

    static func privateTemporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("hisp-verify-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw CLIFailure.usage("cannot create a temporary directory") }
        return String(cString: p)
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The tamper-evident audit trail.", subcommands: [Verify.self, List.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the audit chain: exit 1 if any event was edited, removed or reordered.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                let report = try await s.verifyAudit()
                if let failure = report.failure {
                    throw CLIFailure.security("audit trail broken: \(failure) (\(report.events) events before it verify)")
                }
                say("audit trail intact: \(report.events) events, each chained to the one before")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the most recent events.")
        @Option(help: "How many.") var limit: Int = 50
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                for e in try await s.auditEvents(limit: max(1, min(limit, 100_000))) {
                    say("\(e.seq)  \(e.at)  \(e.event.actor)  \(e.event.action)  \(e.event.object)  \(e.event.outcome)\(e.event.detail.isEmpty ? "" : "  \(e.event.detail)")")
                }
            }
        }
    }
}

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "The master key.", subcommands: [Rotate.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Switch to a new master key: a new key-encryption key, every data key re-wrapped, the old key refused afterwards.",
            discussion: "Runs while the HISP is in use. If interrupted, run it again with the same keys to finish.")
        @OptionGroup var store: StoreOptions
        @Option(help: "The new key file (created, random, when it does not exist).") var newKeyFile: String?
        @Option(help: "A file whose first line is the new passphrase.") var newPassphraseFile: String?

        func validate() throws {
            guard (newKeyFile == nil) != (newPassphraseFile == nil) else {
                throw ValidationError("give exactly one of --new-key-file and --new-passphrase-file")
            }
            if let a = newKeyFile, let b = store.keyFile,
               URL(fileURLWithPath: a).standardizedFileURL == URL(fileURLWithPath: b).standardizedFileURL {
                throw ValidationError("--new-key-file must be a different file from --key-file")
            }
        }

        func run() async throws {
            let newMaterial = try MasterKeyOptions.material(
                keyFile: newKeyFile, passphraseFile: newPassphraseFile, creating: true, dataDirectory: store.data)
            try await store.withStore { s in
                let bar = LockedProgress(label: "re-wrap")
                let report = try await s.rotate(to: newMaterial) { done, total in bar.update(done, total) }
                bar.finish()
                say("rotated the master key to \(newMaterial.origin)\(report.resumed ? " (finished an interrupted rotation)" : "")")
                say("  key-encryption key \(report.newKEK) active; \(report.rewrapped) data keys re-wrapped; no message re-encrypted")
                say("  the old key no longer opens this store; backups made before now still need it")
            }
        }
    }
}

/// A progress bar updated from a @Sendable callback.
final class LockedProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var bar: ProgressBar?
    private let label: String

    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        lock.lock(); defer { lock.unlock() }
        if bar == nil { bar = ProgressBar(label: label, total: Int64(total)) }
        bar?.update(Int64(done))
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        bar?.finish()
    }
}
