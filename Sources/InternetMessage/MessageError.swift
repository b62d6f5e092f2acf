import DirectCore

/// Why a message could not be parsed. Every case names the limit or the rule.
public enum MessageError: DirectError, Equatable {
    case messageTooLarge(size: Int, limit: Int)
    case headerSectionTooLarge(limit: Int)
    case headerLineTooLong(line: Int, limit: Int)
    case tooManyHeaderFields(limit: Int)
    case malformedHeaderLine(line: Int)
    case continuationWithoutField(line: Int)
    case nestingTooDeep(limit: Int)
    case tooManyParts(limit: Int)
    case missingBoundary(contentType: String)
    case invalidBoundary(String)
    case missingCloseDelimiter(boundary: String)
    case noParts(boundary: String)
    case invalidBase64(offset: Int)
    case malformedContentType(String)
    case malformedContentDisposition(String)
    case unsupportedTransferEncoding(String)

    public var kind: FailureKind {
        switch self {
        case .messageTooLarge, .headerSectionTooLarge, .headerLineTooLong, .tooManyHeaderFields,
            .nestingTooDeep, .tooManyParts:
            return .limitExceeded
        case .unsupportedTransferEncoding:
            return .unsupported
        default:
            return .malformedInput
        }
    }

    public var description: String {
        switch self {
        case .messageTooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the limit of \(limit) bytes"
        case .headerSectionTooLarge(let limit):
            return "header section exceeds the limit of \(limit) bytes"
        case .headerLineTooLong(let line, let limit):
            return "header line \(line) exceeds the limit of \(limit) characters"
        case .tooManyHeaderFields(let limit):
            return "more than \(limit) header fields"
        case .malformedHeaderLine(let line):
            return "header line \(line) is not a field (no name and colon)"
        case .continuationWithoutField(let line):
            return "header line \(line) continues a field that does not exist"
        case .nestingTooDeep(let limit):
            return "MIME nesting deeper than \(limit) levels"
        case .tooManyParts(let limit):
            return "more than \(limit) MIME parts"
        case .missingBoundary(let ct):
            return "multipart entity without a boundary parameter (\(ct))"
        case .invalidBoundary(let b):
            return "invalid multipart boundary \"\(b)\" (RFC 2046 5.1.1: 1 to 70 characters)"
        case .missingCloseDelimiter(let b):
            return "multipart body has no close delimiter --\(b)--"
        case .noParts(let b):
            return "multipart body has no part delimited by --\(b)"
        case .invalidBase64(let offset):
            return "invalid base64 at byte \(offset)"
        case .malformedContentType(let v):
            return "malformed Content-Type \"\(v)\""
        case .malformedContentDisposition(let v):
            return "malformed Content-Disposition \"\(v)\""
        case .unsupportedTransferEncoding(let v):
            return "unsupported Content-Transfer-Encoding \"\(v)\""
        }
    }
}
