import Foundation
import NIOCore
import SQLiteNIO
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// The embedded SQLite database (bundled by sqlite-nio) behind `StoreDatabase`.
///
/// Durability: WAL journal with `synchronous=FULL`, so a committed transaction
/// is on disk before `transaction` returns (the gateway answers SMTP 250 only
/// then); a process killed at any moment leaves a database that opens with
/// every committed transaction in it. Files are created mode 0600.
public final class SQLiteDatabase: StoreDatabase {
    let connection: SQLiteConnection
    let gate = TransactionGate()
    public let path: String

    init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    /// Opens the database at `path`; with `create`, makes a new file (which must not exist).
    public static func open(path: String, create: Bool) async throws -> SQLiteDatabase {
        if create {
            let fd = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw StoreError.database("cannot create \(path): \(String(cString: strerror(errno)))") }
            Glibc.close(fd)
        } else {
            guard FileManager.default.fileExists(atPath: path) else { throw StoreError.notFound("database \(path)") }
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path))
        } catch {
            throw StoreError.database("cannot open \(path): \(error)")
        }
        let db = SQLiteDatabase(connection: connection, path: path)
        do {
            // WAL: readers (a backup) never block the writer (https://sqlite.org/wal.html).
            _ = try await connection.query("PRAGMA journal_mode = WAL")
            // FULL: the WAL is synced at every commit, so an acknowledged write survives power loss.
            _ = try await connection.query("PRAGMA synchronous = FULL")
            _ = try await connection.query("PRAGMA foreign_keys = ON")
            // Freed pages are zeroed, so removed rows do not linger in the file.
            _ = try await connection.query("PRAGMA secure_delete = ON")
            // Wait (sleeping, not spinning) up to 30 s for another process's write lock.
            _ = try await connection.query("PRAGMA busy_timeout = 30000")
            // Reading the catalogue fails here, with a clear message, when the file is not a database.
            _ = try await connection.query("PRAGMA schema_version")
        } catch {
            try? await connection.close()
            throw StoreError.database("\(path) is not a usable SQLite database: \(Self.describe(error))")
        }
        return db
    }

    public func transaction<T: Sendable>(write: Bool, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        await gate.acquire()
        do {
            try await run(write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
            let result: T
            do {
                result = try await body(SQLiteTransaction(connection: connection))
                try await run("COMMIT")
            } catch {
                try? await run("ROLLBACK")
                throw error
            }
            await gate.release()
            return result
        } catch {
            await gate.release()
            throw error
        }
    }

    public func snapshot(to path: String) async throws {
        guard !FileManager.default.fileExists(atPath: path) else { throw StoreError.exists(path) }
        await gate.acquire()
        do {
            // VACUUM INTO reads inside one read transaction: a consistent copy while other
            // connections keep writing (https://sqlite.org/lang_vacuum.html#vacuuminto).
            _ = try await connection.query("VACUUM INTO ?", [.text(path)])
            await gate.release()
        } catch {
            await gate.release()
            throw StoreError.database("snapshot to \(path) failed: \(Self.describe(error))")
        }
    }

    public func checkStructure() async throws -> [String] {
        try await transaction(write: false) { tx in
            let rows = try await tx.query("PRAGMA integrity_check", [])
            return rows.compactMap { row in row.columns.values.first.flatMap { if case .text(let s) = $0 { return s } else { return nil } } }
        }
    }

    public func close() async throws {
        try await connection.close()
    }

    func run(_ sql: String) async throws {
        do { _ = try await connection.query(sql) } catch { throw StoreError.database("\(sql): \(Self.describe(error))") }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? SQLiteError { return e.message.isEmpty ? "\(e.reason)" : e.message }
        return "\(error)"
    }
}

struct SQLiteTransaction: StoreTransaction {
    let connection: SQLiteConnection

    func execute(_ sql: String, _ binds: [StoreValue]) async throws {
        _ = try await query(sql, binds)
    }

    func query(_ sql: String, _ binds: [StoreValue]) async throws -> [StoreRow] {
        let rows: [SQLiteRow]
        do {
            rows = try await connection.query(sql, binds.map(Self.data))
        } catch {
            throw StoreError.database(SQLiteDatabase.describe(error))
        }
        return rows.map { row in
            var columns: [String: StoreValue] = [:]
            for column in row.columns { columns[column.name] = Self.value(column.data) }
            return StoreRow(columns)
        }
    }

    func tableExists(_ name: String) async throws -> Bool {
        try await !query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(name)]).isEmpty
    }

    static func data(_ value: StoreValue) -> SQLiteData {
        switch value {
        case .null: return .null
        case .integer(let i): return .integer(.init(i))
        case .text(let s): return .text(s)
        case .blob(let b): return .blob(ByteBuffer(bytes: b))
        }
    }

    static func value(_ data: SQLiteData) -> StoreValue {
        switch data {
        case .null: return .null
        case .integer(let i): return .integer(Int64(i))
        case .float(let d): return .text(String(d))
        case .text(let s): return .text(s)
        case .blob(let b): return .blob(Array(b.readableBytesView))
        }
    }
}

/// One transaction at a time on the connection, in arrival order (the
/// connection's statements run on a thread pool and would otherwise interleave).
actor TransactionGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
