import DirectCore

/// Why the store refused or failed. Each text names the object and the check,
/// never key material or PHI.
public enum StoreError: DirectError, Equatable {
    /// The master key does not open this store or backup (wrong key file or passphrase).
    case wrongKey(String)
    /// A ciphertext, wrapped key or audit event failed its integrity check.
    case integrity(String)
    /// The named object does not exist.
    case notFound(String)
    /// The object already exists.
    case exists(String)
    /// The request is not valid in the store's current state (e.g. removing a domain that still has addresses).
    case conflict(String)
    /// Input the store cannot accept (size, format).
    case invalid(String)
    /// The master key was rotated by another process after this one opened the store.
    case keyChanged
    /// The database failed (I/O, corruption, locked).
    case database(String)

    public var kind: FailureKind {
        switch self {
        case .wrongKey, .integrity, .keyChanged: return .security
        case .invalid: return .malformedInput
        default: return .unsupported
        }
    }

    public var description: String {
        switch self {
        case .wrongKey(let s): return "wrong key: \(s)"
        case .integrity(let s): return "integrity check failed: \(s)"
        case .notFound(let s): return "\(s) not found"
        case .exists(let s): return "\(s) already exists"
        case .conflict(let s): return s
        case .invalid(let s): return s
        case .keyChanged:
            return "the master key was rotated by another process since this one opened the store; run again with the new key"
        case .database(let s): return "database: \(s)"
        }
    }
}
