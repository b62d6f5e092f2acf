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
    /// A key rotation to this key was started and not finished.
    case rotationUnfinished
    /// A mailbox still holds messages.
    case mailboxNotEmpty(mailbox: String, messages: Int)
    /// A domain still has mailboxes.
    case domainInUse(domain: String, addresses: Int)

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
        case .rotationUnfinished: return "a key rotation to this key is unfinished; run the rotation again with the old key and this one as the new key"
        case .mailboxNotEmpty(let m, let n): return "mailbox \(m) holds \(n) message(s); remove them with it only on purpose"
        case .domainInUse(let d, let n): return "domain \(d) still has \(n) address(es); remove them first"
        }
    }
}
