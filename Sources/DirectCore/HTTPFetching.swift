/// Fetching a resource over HTTP(S): the port through which trust reaches
/// AIA caIssuers URLs, CRL distribution points and trust bundles. The
/// implementation lives in an edge target (tier 5); tests and the core take
/// any conforming value.
public protocol HTTPFetching: Sendable {
    /// GETs `url` and returns the body of a 2xx response. Throws
    /// `HTTPFetchError` when the server cannot be reached in `timeout`,
    /// answers otherwise, or sends more than `maxBytes`.
    func get(_ url: String, maxBytes: Int, timeout: Duration) async throws -> [UInt8]
}

public enum HTTPFetchError: DirectError, Equatable {
    case unreachable(url: String, reason: String)
    case status(url: String, code: Int)
    case tooLarge(url: String, limit: Int)
    case unsupportedURL(String)

    public var kind: FailureKind {
        switch self {
        case .tooLarge: return .limitExceeded
        case .unsupportedURL: return .unsupported
        case .unreachable, .status: return .malformedInput
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let u, let r): return "\(u) unreachable: \(r)"
        case .status(let u, let c): return "\(u) answered HTTP \(c)"
        case .tooLarge(let u, let l): return "\(u) sent more than \(l) bytes"
        case .unsupportedURL(let u): return "\(u) is not an http:// or https:// URL"
        }
    }
}
