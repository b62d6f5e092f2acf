import Foundation
import SQLiteStore
import Storage
import Testing

/// The SQLite adapter's transactions under concurrency: callers that arrive
/// together are committed together, each still all or nothing, and nobody
/// hears of a commit before it happened.
@Suite struct SQLiteDatabaseTests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func database() async throws -> SQLiteDatabase {
        let db = try await SQLiteDatabase.open(path: dir.appendingPathComponent("t.sqlite").path, create: true)
        try await db.transaction(write: true) { tx -> Void in
            try await tx.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT NOT NULL)", [])
        }
        return db
    }

    func values(_ db: SQLiteDatabase) async throws -> [Int64] {
        try await db.transaction(write: false) { tx in
            try await tx.query("SELECT n FROM t ORDER BY n", []).compactMap {
                if case .integer(let n) = $0["n"] { return n } else { return nil }
            }
        }
    }

    struct Refused: Error {}

    @Test func concurrentTransactionsCommitTogetherAndAFailingOneIsRolledBackAlone() async throws {
        let db = try await database()
        let before = db.commitCounts
        let (firstIsIn, signalFirstIsIn) = AsyncStream.makeStream(of: Void.self)
        let results = await withTaskGroup(of: (Int64, Bool).self) { group in
            // The first holds its batch open until all the others wait behind it
            // (however slowly a busy machine starts them).
            group.addTask {
                defer { signalFirstIsIn.finish() }  // never leaves the others unstarted
                do {
                    try await db.transaction(write: true) { tx -> Void in
                        try await tx.execute("INSERT INTO t (n, v) VALUES (?, ?)", [.integer(0), .text("first")])
                        signalFirstIsIn.yield()
                        let deadline = ContinuousClock.now + .seconds(120)
                        while await db.waitingWriteTransactions < 100, ContinuousClock.now < deadline {
                            try await Task.sleep(for: .milliseconds(10))
                        }
                    }
                    return (0, true)
                } catch {
                    return (0, false)
                }
            }
            for await _ in firstIsIn { break }
            for n in Int64(1)...100 {
                group.addTask {
                    do {
                        let seen = try await db.transaction(write: true) { tx -> Int64 in
                            try await tx.execute("INSERT INTO t (n, v) VALUES (?, ?)", [.integer(n), .text("row \(n)")])
                            // Every fifth writes, then fails: its row must not stay.
                            if n % 5 == 0 { throw Refused() }
                            // A transaction reads its own write.
                            let rows = try await tx.query("SELECT v FROM t WHERE n = ?", [.integer(n)])
                            return rows.count == 1 ? n : -1
                        }
                        return (n, seen == n)
                    } catch {
                        return (n, false)
                    }
                }
            }
            var out: [(Int64, Bool)] = []
            for await r in group { out.append(r) }
            return out
        }
        let after = db.commitCounts
        let succeeded = Set(results.filter(\.1).map(\.0))
        #expect(succeeded == Set((0...100).filter { $0 == 0 || $0 % 5 != 0 }.map(Int64.init)))
        #expect(try await values(db) == succeeded.sorted())
        #expect(after.transactions - before.transactions == 101)
        // 101 transactions in three commits: the first alone, then 64 (the largest batch) and 36.
        #expect(after.commits - before.commits == 3, "\(after.commits - before.commits) commits")
        try await db.close()
    }

    @Test func whatACallerWasToldIsWhatAReopenedDatabaseHolds() async throws {
        let db = try await database()
        await withTaskGroup(of: Void.self) { group in
            for n in Int64(1)...40 {
                group.addTask {
                    try? await db.transaction(write: true) { tx -> Void in
                        try await tx.execute("INSERT INTO t (n, v) VALUES (?, ?)", [.integer(n), .text("x")])
                    }
                }
            }
        }
        try await db.close()
        let reopened = try await SQLiteDatabase.open(path: dir.appendingPathComponent("t.sqlite").path, create: false)
        #expect(try await values(reopened) == Array(1...40))
        try await reopened.close()
    }

    @Test(.timeLimit(.minutes(5))) func aReadDoesNotWaitForAWriteInProgressAndSeesOnlyWhatWasCommitted() async throws {
        let db = try await database()
        try await db.transaction(write: true) { tx -> Void in try await tx.execute("INSERT INTO t (n, v) VALUES (1, 'a')", []) }
        // A write that holds the writer until the read has finished.
        let (readDone, readFinished) = AsyncStream.makeStream(of: Void.self)
        let (writeStarted, writeIsIn) = AsyncStream.makeStream(of: Void.self)
        let write = Task {
            try await db.transaction(write: true) { tx -> Void in
                try await tx.execute("INSERT INTO t (n, v) VALUES (2, 'b')", [])
                writeIsIn.yield()
                for await _ in readDone { break }
            }
        }
        for await _ in writeStarted { break }
        // With reads queued behind the writer this would never return.
        #expect(try await values(db) == [1], "the uncommitted row is not seen")
        readFinished.yield()
        try await write.value
        #expect(try await values(db) == [1, 2], "a read begun after the COMMIT sees it")
    }

    /// What the store's promises rest on, on both connections: an acknowledged
    /// write is synced (FULL), removed rows are zeroed in the file, and no
    /// statement journal or sort (copies of pages) goes to a temporary file.
    @Test func durabilityAndConfidentialitySettingsAreInForce() async throws {
        let db = try await database()
        func setting(_ name: String, write: Bool) async throws -> StoreValue? {
            try await db.transaction(write: write) { tx in try await tx.query("PRAGMA \(name)", []).first?[name] }
        }
        for write in [true, false] {
            #expect(try await setting("temp_store", write: write) == .integer(2), "temp_store = MEMORY")
            #expect(try await setting("journal_mode", write: write) == .text("wal"))
        }
        #expect(try await setting("synchronous", write: true) == .integer(2), "synchronous = FULL")
        #expect(try await setting("secure_delete", write: true) == .integer(1))
    }

    @Test func aReadTransactionCannotWrite() async throws {
        let db = try await database()
        await #expect(throws: StoreError.self) {
            try await db.transaction(write: false) { tx -> Void in
                try await tx.execute("INSERT INTO t (n, v) VALUES (1, 'a')", [])
            }
        }
        #expect(try await values(db) == [])
    }

    @Test func aClosedDatabaseRefusesTransactions() async throws {
        let db = try await database()
        try await db.close()
        await #expect(throws: StoreError.self) { try await self.values(db) }
    }

    @Test func aStatementErrorFailsItsTransactionAndNotTheNextOne() async throws {
        let db = try await database()
        await #expect(throws: StoreError.self) {
            try await db.transaction(write: true) { tx -> Void in
                try await tx.execute("INSERT INTO t (n, v) VALUES (?, ?)", [.integer(1), .null])  // NOT NULL
            }
        }
        try await db.transaction(write: true) { tx -> Void in
            try await tx.execute("INSERT INTO t (n, v) VALUES (?, ?)", [.integer(2), .text("ok")])
        }
        #expect(try await values(db) == [2])
        try await db.close()
    }
}
