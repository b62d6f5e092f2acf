import Foundation
import Storage
import Synchronization
// The system's SQLite, called directly: a driver that runs every statement
// as a job on a thread pool and hands every row back through an event loop
// (two thread hops per statement, as sqlite-nio does) made the store's
// transactions, not RSA, the gateway's limit.
import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// The embedded SQLite database (the system's libsqlite3) behind `StoreDatabase`.
///
/// Durability: WAL journal with `synchronous=FULL`, so a committed transaction
/// is on disk before `transaction` returns (the gateway answers SMTP 250 only
/// then); a process killed at any moment leaves a database that opens with
/// every committed transaction in it. Files are created mode 0600.
///
/// Two connections, each on a thread of its own (a task executor), where
/// statements are plain calls into SQLite, prepared once and reused; the
/// fsync of a COMMIT blocks that thread, not the threads of Swift's
/// cooperative pool that the rest of the gateway runs on.
/// - The writer runs write transactions one after another, in arrival
///   order; transactions that arrive together share a COMMIT (group commit,
///   see `transaction`).
/// - The reader (`query_only`) runs read transactions, one at a time. In
///   WAL mode a reader sees every transaction committed before it began and
///   does not wait for the writer, so reads are not held up behind a
///   COMMIT's fsync (https://sqlite.org/wal.html, "Concurrency").
public final class SQLiteDatabase: StoreDatabase, Sendable {
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let batches = TransactionBatches()
    private let counts = Mutex<(transactions: Int, commits: Int)>((0, 0))
    /// Write transactions run and COMMITs written since the database was opened
    /// (fewer commits than transactions: group commit at work).
    public var commitCounts: (transactions: Int, commits: Int) { counts.withLock { $0 } }
    /// Write transactions waiting for the next batch (the writer's queue depth).
    public var waitingWriteTransactions: Int { get async { await batches.waitingCount } }
    public let path: String

    private init(writer: SQLiteConnection, reader: SQLiteConnection, path: String) {
        self.writer = writer
        self.reader = reader
        self.path = path
    }

    /// Opens the database at `path`; with `create`, makes a new file (which must not exist).
    public static func open(path: String, create: Bool) async throws -> SQLiteDatabase {
        // RETURNING and ALTER TABLE DROP COLUMN (the store's statements and migrations) came in SQLite 3.35.
        guard sqlite3_libversion_number() >= minimumVersion else {
            throw StoreError.database("the system's SQLite is \(String(cString: sqlite3_libversion())); hisp needs 3.35 or later")
        }
        if create {
            let fd = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw StoreError.database("cannot create \(path): \(String(cString: strerror(errno)))") }
            Glibc.close(fd)
        } else {
            guard FileManager.default.fileExists(atPath: path) else { throw StoreError.notFound("database \(path)") }
        }
        let writer = try SQLiteConnection.open(path: path, thread: "hisp-sqlite", pragmas: [
            // WAL: readers (the read connection, a backup) never block the writer (https://sqlite.org/wal.html).
            "PRAGMA journal_mode = WAL",
            // FULL: the WAL is synced at every commit, so an acknowledged write survives power loss.
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
            // Freed pages are zeroed, so removed rows do not linger in the file.
            "PRAGMA secure_delete = ON",
            // Statement journals (each group-committed transaction runs in a savepoint) and
            // sorts stay in memory: they spilled to temporary files, a file opened, written
            // and closed per batch, holding copies of pages (https://sqlite.org/tempfiles.html).
            "PRAGMA temp_store = MEMORY",
            // Wait (sleeping, not spinning) up to 30 s for another process's write lock.
            "PRAGMA busy_timeout = 30000",
            // Reading the catalogue fails here, with a clear message, when the file is not a database.
            "PRAGMA schema_version",
        ])
        let reader: SQLiteConnection
        do {
            reader = try SQLiteConnection.open(path: path, thread: "hisp-sqlite-read", pragmas: [
                // Any write through this connection fails: it is for read transactions only.
                "PRAGMA query_only = ON",
                "PRAGMA temp_store = MEMORY",
                "PRAGMA busy_timeout = 30000",
            ])
        } catch {
            try? await writer.close()
            throw error
        }
        return SQLiteDatabase(writer: writer, reader: reader, path: path)
    }

    /// Group commit: write transactions that arrive while a batch is being
    /// written wait and are written together in the next one, each inside a
    /// savepoint (rolled back alone when its body throws), with one COMMIT
    /// and so one fsync for all of them. No caller hears of success before
    /// that COMMIT is on disk. The first caller to find no batch running
    /// writes batches until none is waiting. Read transactions run on the
    /// read connection, one at a time.
    public func transaction<T: Sendable>(
        write: Bool, _ body: @escaping @Sendable (any StoreTransaction) async throws -> T
    ) async throws -> T {
        guard write else {
            let reader = self.reader
            // Its own task on the reader's thread, as a batch has on the writer's (below).
            return try await Task(executorPreference: reader.thread) { try await reader.read(body) }.value
        }
        let outcome = Outcome<T>()
        let pending = PendingTransaction(
            run: { tx in
                do {
                    let value = try await body(tx)
                    return (true, { commitError in outcome.deliver(commitError.map { .failure($0) } ?? .success(value)) })
                } catch {
                    return (false, { _ in outcome.deliver(.failure(error)) })
                }
            },
            fail: { outcome.deliver(.failure($0)) })
        if await batches.enqueue(pending) {
            // Its own task, on the writer's thread: a caller cancelled
            // meanwhile must not cancel the other callers' bodies it runs.
            await Task(executorPreference: writer.thread) { await self.writeWaitingBatches() }.value
        }
        return try await outcome.value()
    }

    private func writeWaitingBatches() async {
        await writer.gate.acquire()
        while true {
            let batch = await batches.take(max: Self.maxBatch)
            if batch.isEmpty { break }
            await write(batch)
        }
        await writer.gate.release()
    }

    /// The oldest SQLite the store's statements run on (3.35.0).
    static let minimumVersion: Int32 = 3_035_000

    /// Transactions written together at most.
    static let maxBatch = 64

    private func write(_ batch: [PendingTransaction]) async {
        let writer = self.writer
        do {
            _ = try writer.run("BEGIN IMMEDIATE", [], true)
        } catch {
            for p in batch { p.fail(error) }
            return
        }
        // One scratch for the batch: it holds while the write lock does (BEGIN IMMEDIATE to COMMIT).
        let tx = SQLiteTransaction(connection: writer, scratch: TransactionScratch())
        var deliveries: [@Sendable ((any Error)?) -> Void] = []
        for (i, p) in batch.enumerated() {
            do {
                _ = try writer.run("SAVEPOINT txn", [], true)
                let saved = tx.scratch.saved()
                let (succeeded, deliver) = await p.run(tx)
                if !succeeded {
                    _ = try writer.run("ROLLBACK TO txn", [], true)
                    tx.scratch.restore(saved)
                }
                _ = try writer.run("RELEASE txn", [], true)
                deliveries.append(deliver)
            } catch {
                // A statement error that ended the whole transaction (SQLite
                // rolls back on I/O errors and a full disk) takes the batch
                // with it: nobody in it is told of a commit that did not happen.
                _ = try? writer.run("ROLLBACK", [], true)
                for d in deliveries { d(error) }
                for q in batch[i...] { q.fail(error) }
                return
            }
        }
        do {
            try await tx.scratch.finish(in: tx)
        } catch {
            _ = try? writer.run("ROLLBACK", [], true)
            for d in deliveries { d(error) }
            return
        }
        do {
            _ = try writer.run("COMMIT", [], true)
            counts.withLock {
                $0.transactions += batch.count
                $0.commits += 1
            }
            for d in deliveries { d(nil) }
        } catch {
            _ = try? writer.run("ROLLBACK", [], true)
            for d in deliveries { d(error) }
        }
    }

    public func snapshot(to path: String) async throws {
        guard !FileManager.default.fileExists(atPath: path) else { throw StoreError.exists(path) }
        let writer = self.writer
        await writer.gate.acquire()
        do {
            // VACUUM INTO reads inside one read transaction: a consistent copy while other
            // connections keep writing (https://sqlite.org/lang_vacuum.html#vacuuminto).
            _ = try await withTaskExecutorPreference(writer.thread) { try writer.run("VACUUM INTO ?", [.text(path)], false) }
            await writer.gate.release()
        } catch {
            await writer.gate.release()
            throw StoreError.database("snapshot to \(path) failed: \(error)")
        }
    }

    public func checkStructure() async throws -> [String] {
        try await transaction(write: false) { tx in
            let rows = try await tx.query("PRAGMA integrity_check", [])
            return rows.compactMap { row in row.columns.values.first.flatMap { if case .text(let s) = $0 { return s } else { return nil } } }
        }
    }

    public func close() async throws {
        // The reader first, so that the writer, closing last, checkpoints the WAL into the file.
        var readerError: (any Error)? = nil
        do { try await reader.close() } catch { readerError = error }
        try await writer.close()
        if let readerError { throw readerError }
    }
}

/// One SQLite connection, the thread its statements run on, and the gate
/// that lets one transaction at a time use it.
final class SQLiteConnection: @unchecked Sendable {
    // @unchecked: `handle`, `statements` and `closed` are only touched by
    // the holder of `gate` (and by open and deinit, before and after any).
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    private var closed = false
    /// One transaction at a time on this connection, in arrival order.
    let gate = AsyncGate()
    let thread: SQLiteThread
    let path: String
    /// Prepared statements kept (the store has a few dozen distinct ones).
    static let maxPreparedStatements = 256
    /// Bound values above this size are released right after the statement has run.
    static let largeBinding = 65_536

    private init(handle: OpaquePointer, path: String, thread: String) {
        self.handle = handle
        self.path = path
        self.thread = SQLiteThread(name: thread)
    }

    deinit {
        if !closed {
            for (_, statement) in statements { sqlite3_finalize(statement) }
            sqlite3_close_v2(handle)
        }
        thread.stop()
    }

    static func open(path: String, thread: String, pragmas: [String]) throws -> SQLiteConnection {
        var raw: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW
        guard sqlite3_open_v2(path, &raw, flags, nil) == SQLITE_OK, let handle = raw else {
            let message = raw.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(raw)
            throw StoreError.database("cannot open \(path): \(message)")
        }
        let connection = SQLiteConnection(handle: handle, path: path, thread: thread)
        do {
            for pragma in pragmas { _ = try connection.run(pragma, [], false) }
        } catch {
            // deinit closes the handle and stops the thread.
            throw StoreError.database("\(path) is not a usable SQLite database: \(error)")
        }
        return connection
    }

    /// A read transaction; runs on `thread`.
    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        await gate.acquire()
        do {
            _ = try run("BEGIN DEFERRED", [], true)
        } catch {
            await gate.release()
            throw error
        }
        do {
            let value = try await body(SQLiteTransaction(connection: self, scratch: TransactionScratch()))
            _ = try run("COMMIT", [], true)
            await gate.release()
            return value
        } catch {
            _ = try? run("ROLLBACK", [], true)
            await gate.release()
            throw error
        }
    }

    func close() async throws {
        await gate.acquire()
        guard !closed else {
            await gate.release()
            return
        }
        for (_, statement) in statements { sqlite3_finalize(statement) }
        statements.removeAll()
        let result = sqlite3_close_v2(handle)
        closed = true
        thread.stop()
        await gate.release()
        guard result == SQLITE_OK else { throw StoreError.database("closing \(path): \(String(cString: sqlite3_errstr(result)))") }
    }

    private func message() -> String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs one statement and returns its rows. Called only by the holder of
    /// `gate`, on `thread`. With `keep`, the prepared statement is kept for the next call.
    func run(_ sql: String, _ binds: [StoreValue], _ keep: Bool) throws -> [StoreRow] {
        guard !closed else { throw StoreError.database("\(path) is closed") }
        let statement: OpaquePointer
        if let kept = statements[sql] {
            statement = kept
        } else {
            var raw: OpaquePointer?
            guard sqlite3_prepare_v2(handle, sql, -1, &raw, nil) == SQLITE_OK, let prepared = raw else {
                throw StoreError.database(message())
            }
            statement = prepared
            if keep && statements.count < Self.maxPreparedStatements { statements[sql] = prepared }
        }
        let kept = statements[sql] == statement
        defer {
            if kept {
                sqlite3_reset(statement)
                // Every run binds every parameter, so the old values need no clearing, and
                // clearing them would make SQLite parse the statement again at the next
                // step whenever its plan looked at a bound value (sqlite3_clear_bindings
                // expires such a statement). Large values are let go at once all the same.
                if binds.contains(where: { if case .blob(let b) = $0 { return b.count > Self.largeBinding } else { return false } }) {
                    sqlite3_clear_bindings(statement)
                }
            } else {
                sqlite3_finalize(statement)
            }
        }
        guard Int(sqlite3_bind_parameter_count(statement)) == binds.count else {
            throw StoreError.database("\(sql): \(binds.count) values for \(sqlite3_bind_parameter_count(statement)) parameters")
        }
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            let result: Int32
            switch value {
            case .null: result = sqlite3_bind_null(statement, index)
            case .integer(let v): result = sqlite3_bind_int64(statement, index, v)
            case .text(let s):
                result = sqlite3_bind_text64(statement, index, s, UInt64(s.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
            case .blob(let b):
                result = b.withUnsafeBytes {
                    sqlite3_bind_blob64(statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64($0.count), Self.transient)
                }
            }
            guard result == SQLITE_OK else { throw StoreError.database("\(sql): \(message())") }
        }
        let count = sqlite3_column_count(statement)
        let names = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
        var rows: [StoreRow] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw StoreError.database("\(sql): \(message())") }
            var columns: [String: StoreValue] = [:]
            columns.reserveCapacity(Int(count))
            for c in 0..<count {
                columns[names[Int(c)]] = Self.value(statement, c)
            }
            rows.append(StoreRow(columns))
        }
        return rows
    }

    static func value(_ statement: OpaquePointer, _ column: Int32) -> StoreValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: return .text(String(sqlite3_column_double(statement, column)))
        case SQLITE_TEXT:
            guard let text = sqlite3_column_text(statement, column) else { return .text("") }
            let length = Int(sqlite3_column_bytes(statement, column))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self))
        case SQLITE_BLOB:
            let length = Int(sqlite3_column_bytes(statement, column))
            guard length > 0, let bytes = sqlite3_column_blob(statement, column) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: length)))
        default: return .null
        }
    }

    /// SQLITE_TRANSIENT: SQLite copies a bound value before the call returns.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// A caller's transaction waiting for a batch: `run` executes its body and
/// says whether it succeeded and how to tell the caller once the batch's
/// COMMIT is known; `fail` tells it of an error before its body ran.
struct PendingTransaction: Sendable {
    let run: @Sendable (SQLiteTransaction) async -> (Bool, @Sendable ((any Error)?) -> Void)
    let fail: @Sendable (any Error) -> Void
}

/// The transactions waiting for the next batch, and whether a caller is writing batches.
actor TransactionBatches {
    private var waiting: [PendingTransaction] = []
    private var writing = false
    var waitingCount: Int { waiting.count }

    /// Adds `p`; true when the caller is to write batches (none is being written).
    func enqueue(_ p: PendingTransaction) -> Bool {
        waiting.append(p)
        if writing { return false }
        writing = true
        return true
    }

    /// The next batch, in arrival order; empty (and no writer any more) when none is waiting.
    func take(max: Int) -> [PendingTransaction] {
        guard !waiting.isEmpty else {
            writing = false
            return []
        }
        let batch = Array(waiting.prefix(max))
        waiting.removeFirst(batch.count)
        return batch
    }
}

/// A value delivered once, awaited once, in either order.
final class Outcome<T: Sendable>: Sendable {
    private let state = Mutex<(result: Result<T, any Error>?, waiter: CheckedContinuation<T, any Error>?)>((nil, nil))

    func deliver(_ result: Result<T, any Error>) {
        let waiter = state.withLock { s -> CheckedContinuation<T, any Error>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.result = result
            return nil
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { s -> Result<T, any Error>? in
                if let r = s.result { return r }
                s.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

struct SQLiteTransaction: StoreTransaction {
    let connection: SQLiteConnection
    let scratch: TransactionScratch

    func execute(_ sql: String, _ binds: [StoreValue]) async throws {
        _ = try connection.run(sql, binds, true)
    }

    func query(_ sql: String, _ binds: [StoreValue]) async throws -> [StoreRow] {
        try connection.run(sql, binds, true)
    }

    func tableExists(_ name: String) async throws -> Bool {
        try await !query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(name)]).isEmpty
    }
}


/// A thread of its own that runs the jobs of tasks preferring it (SE-0417),
/// so that blocking SQLite calls never hold a thread of the cooperative pool.
final class SQLiteThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `stopped` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    init(name: String) {
        // The thread holds the executor until `stop`.
        let thread = Thread {
            // Named for operators (top -H, /proc/PID/task/*/comm); Foundation's `name` does not reach the kernel.
            let fd = Glibc.open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                let bytes = Array(name.utf8.prefix(15))
                _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                Glibc.close(fd)
            }
            self.loop()
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if stopped {
            // The thread is gone or going: the job must still run (to find its
            // connection closed and say so) rather than wait forever.
            condition.unlock()
            globalConcurrentExecutor.enqueue(job)
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
