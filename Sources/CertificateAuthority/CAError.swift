import DirectCore

/// Why a certificate-authority operation was refused.
public enum CAError: DirectError, Equatable {
    /// An RFC 4514 name that cannot be read; says where and why.
    case invalidName(String)
    case invalidArgument(String)
    case unsupported(String)
    /// The issuer cannot issue: not a CA, no keyCertSign / cRLSign, key mismatch.
    case issuerRefused(String)

    public var kind: FailureKind {
        switch self {
        case .invalidName, .invalidArgument: return .malformedInput
        case .unsupported: return .unsupported
        case .issuerRefused: return .security
        }
    }

    public var description: String {
        switch self {
        case .invalidName(let s): return "invalid distinguished name: \(s)"
        case .invalidArgument(let s): return s
        case .unsupported(let s): return "unsupported: \(s)"
        case .issuerRefused(let s): return "issuer refused: \(s)"
        }
    }
}
