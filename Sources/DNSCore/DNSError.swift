import DirectCore

/// Why a DNS message could not be read or written. Each names the limit or field.
public enum DNSError: DirectError, Equatable {
    /// The bytes are not a well-formed DNS message (RFC 1035 4.1); a server answers FORMERR.
    case malformed(String)
    /// An explicit limit was exceeded.
    case limit(String)
    /// A name or value given to build a message is not valid.
    case invalidName(String)

    public var kind: FailureKind {
        switch self {
        case .malformed, .invalidName: return .malformedInput
        case .limit: return .limitExceeded
        }
    }

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed DNS message: \(s)"
        case .limit(let s): return "DNS limit exceeded: \(s)"
        case .invalidName(let s): return "invalid DNS name: \(s)"
        }
    }
}
