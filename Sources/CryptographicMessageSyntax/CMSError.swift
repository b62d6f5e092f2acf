import DirectCore

/// Why a CMS operation failed. Security failures name the check.
public enum CMSError: DirectError, Equatable {
    /// The DER/BER could not be parsed as the named structure.
    case malformed(String)
    case unexpectedContentType(expected: String, found: String)
    case unsupportedAlgorithm(String)
    /// The algorithm policy refused an algorithm or key (names it).
    case algorithmRefused(String)
    case noSignerInfos
    case signerCertificateNotFound(String)
    case messageDigestMismatch
    case missingSignedAttribute(String)
    case contentTypeAttributeMismatch
    case signatureInvalid(String)
    case noContentToVerify
    case notAddressedToUs(recipients: [String])
    case unsupportedRecipientType(String)
    case keyDecryptionFailed(String)
    case contentDecryptionFailed(String)
    case invalidKey(String)
    case limitExceeded(String)

    public var kind: FailureKind {
        switch self {
        case .malformed, .unexpectedContentType, .noSignerInfos, .noContentToVerify:
            return .malformedInput
        case .unsupportedAlgorithm, .unsupportedRecipientType:
            return .unsupported
        case .limitExceeded:
            return .limitExceeded
        case .invalidKey:
            return .malformedInput
        default:
            return .security
        }
    }

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed CMS: \(s)"
        case .unexpectedContentType(let e, let f): return "expected CMS content type \(e), found \(f)"
        case .unsupportedAlgorithm(let s): return "unsupported algorithm: \(s)"
        case .algorithmRefused(let s): return "algorithm policy: \(s)"
        case .noSignerInfos: return "SignedData has no signers"
        case .signerCertificateNotFound(let s): return "signer certificate not found in the message (\(s))"
        case .messageDigestMismatch:
            return "content does not match the signed message digest (content altered after signing)"
        case .missingSignedAttribute(let s): return "signed attributes lack \(s)"
        case .contentTypeAttributeMismatch: return "signed content-type attribute does not match the content type"
        case .signatureInvalid(let s): return "signature verification failed: \(s)"
        case .noContentToVerify: return "detached signature without the signed content"
        case .notAddressedToUs(let r):
            return "message not addressed to our key (recipients: \(r.isEmpty ? "none" : r.joined(separator: "; ")))"
        case .unsupportedRecipientType(let s): return "unsupported recipient type: \(s)"
        case .keyDecryptionFailed(let s): return "content-encryption key could not be decrypted: \(s)"
        case .contentDecryptionFailed(let s): return "content decryption failed: \(s)"
        case .invalidKey(let s): return "invalid key: \(s)"
        case .limitExceeded(let s): return "limit exceeded: \(s)"
        }
    }
}
