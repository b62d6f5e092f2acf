/// The port a SQL database implements for the store (SQLite now, PostgreSQL
/// later). Statements use `?` placeholders and the SQL common to both; an
/// adapter rewrites placeholders if its driver needs to.
public protocol StoreDatabase: Sendable {
    /// Runs `body` in one transaction: committed when it returns, rolled back
    /// when it throws. `write` transactions take the write lock at the start so
    /// that two writers never deadlock upgrading a read lock. A write
    /// transaction is durable on disk when this returns. An adapter may
    /// commit several callers' transactions together (each still all or
    /// nothing, and isolated from the others as if run one after another).
    func transaction<T: Sendable>(write: Bool, _ body: @escaping @Sendable (any StoreTransaction) async throws -> T) async throws -> T

    /// Writes a consistent copy of the whole database to `path` (a file that
    /// must not exist), while other connections go on reading and writing.
    func snapshot(to path: String) async throws

    /// Checks the database file's own structure (not our ciphertexts).
    func checkStructure() async throws -> [String]

    func close() async throws
}

public protocol StoreTransaction: Sendable {
    func execute(_ sql: String, _ binds: [StoreValue]) async throws
    func query(_ sql: String, _ binds: [StoreValue]) async throws -> [StoreRow]
    /// Whether the database has a table of this name (each database keeps its catalogue differently).
    func tableExists(_ name: String) async throws -> Bool
    /// What the store remembers while this transaction holds its lock (see `TransactionScratch`).
    var scratch: TransactionScratch { get }
}

/// What the store keeps between the statements of one database transaction,
/// so that it does not read again what it read or wrote a moment ago: the KEK
/// new rows are wrapped under, and the audit chain's last event, whose head
/// is then written once, by `finish`, instead of after every event.
///
/// The adapter makes one for each database transaction and owns its life:
/// - several callers' transactions written together (group commit) share
///   one, each inside a savepoint: `saved()` before each, `restore(_:)` when
///   one is rolled back to its savepoint;
/// - `finish(in:)` runs once, after the last statement and before COMMIT;
///   if it throws, nothing is committed.
///
/// Its values are valid only while the transaction holds the database's write
/// lock (nobody else can change them meanwhile); a read transaction's is never
/// finished. One transaction uses it at a time, on one task.
public final class TransactionScratch: @unchecked Sendable {
    // @unchecked: used by one transaction at a time, as its statements are.
    public struct Saved: Sendable {
        fileprivate let writingKEK: Int64?
        fileprivate let auditLast: AuditLink?
        fileprivate let auditHeadToWrite: String?
    }

    struct AuditLink: Sendable {
        let seq: Int64
        let mac: [UInt8]
    }

    /// The id of the KEK new rows are wrapped under, once read.
    var writingKEK: Int64?
    /// The chain's last event, once read or written.
    var auditLast: AuditLink?
    /// The chain's head as it must be stored at the end of the transaction.
    var auditHeadToWrite: String?

    public init() {}

    public func saved() -> Saved { Saved(writingKEK: writingKEK, auditLast: auditLast, auditHeadToWrite: auditHeadToWrite) }

    public func restore(_ saved: Saved) {
        writingKEK = saved.writingKEK
        auditLast = saved.auditLast
        auditHeadToWrite = saved.auditHeadToWrite
    }

    /// Writes what was left for the end of the transaction (the audit head).
    public func finish(in tx: any StoreTransaction) async throws {
        if let head = auditHeadToWrite {
            try await tx.execute(
                "INSERT INTO meta (name, value) VALUES ('audit_head', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                .text(head))
            auditHeadToWrite = nil
        }
    }
}

extension StoreTransaction {
    func execute(_ sql: String, _ binds: StoreValue...) async throws { try await execute(sql, binds) }
    func query(_ sql: String, _ binds: StoreValue...) async throws -> [StoreRow] { try await query(sql, binds) }
}

/// A column value.
public enum StoreValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])
}

/// One result row, by column name.
public struct StoreRow: Sendable {
    public var columns: [String: StoreValue]

    public init(_ columns: [String: StoreValue]) { self.columns = columns }

    public subscript(_ name: String) -> StoreValue { columns[name] ?? .null }

    func text(_ name: String) throws -> String {
        if case .text(let s) = self[name] { return s }
        throw StoreError.database("column \(name) is not text")
    }

    func optionalText(_ name: String) -> String? {
        if case .text(let s) = self[name] { return s }
        return nil
    }

    func integer(_ name: String) throws -> Int64 {
        if case .integer(let i) = self[name] { return i }
        throw StoreError.database("column \(name) is not an integer")
    }

    func blob(_ name: String) throws -> [UInt8] {
        switch self[name] {
        case .blob(let b): return b
        // SQLite hands back a zero-length blob as NULL.
        case .null: return []
        default: throw StoreError.database("column \(name) is not a blob")
        }
    }

    func optionalBlob(_ name: String) -> [UInt8]? {
        if case .blob(let b) = self[name] { return b }
        return nil
    }
}
