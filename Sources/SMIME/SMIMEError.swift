import DirectCore

/// Why an S/MIME operation failed, above the CMS level.
public enum SMIMEError: DirectError, Equatable {
    /// The message is not of the S/MIME type the operation expects.
    case notSMIME(expected: String, found: String)
    case malformedSMIME(String)
    /// Chain validation failed: names the signer and the reason.
    case untrustedSigner(String)
    case keyDoesNotMatchCertificate
    case invalidCertificate(String)

    public var kind: FailureKind {
        switch self {
        case .untrustedSigner: return .security
        case .notSMIME, .malformedSMIME, .invalidCertificate, .keyDoesNotMatchCertificate: return .malformedInput
        }
    }

    public var description: String {
        switch self {
        case .notSMIME(let e, let f): return "not an S/MIME \(e) message (Content-Type: \(f))"
        case .malformedSMIME(let s): return "malformed S/MIME: \(s)"
        case .untrustedSigner(let s): return "signer not trusted: \(s)"
        case .keyDoesNotMatchCertificate: return "the private key does not belong to the certificate"
        case .invalidCertificate(let s): return "invalid certificate: \(s)"
        }
    }
}
