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
