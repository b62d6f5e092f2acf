import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DirectCore
import NIOCore
import NIOPosix
import NIOSSL

/// `HTTPFetching` over AsyncHTTPClient: HTTP and HTTPS (TLS 1.2 or later,
/// certificates verified), a deadline per request, a cap on the body read,
/// at most three redirects and no redirect loops. A failed connection is
/// reported at once rather than retried until the deadline: an unreachable
/// CRL server must not stall every message for the whole timeout.
///
/// The client owns an event loop's connections, so it is used inside
/// `withFetcher`, which shuts it down afterwards. A long-running server
/// creates one with `init(client:)` and shuts it down itself.
public struct AsyncHTTPFetcher: HTTPFetching {
    let client: HTTPClient

    public init(client: HTTPClient) {
        self.client = client
    }

    /// The configuration every DirectHISP fetch uses.
    public static var configuration: HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.cipherSuites = TLSPolicy.tls12CipherSuites
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .follow(max: 3, allowCycles: false),
            timeout: .init(connect: .seconds(5), read: .seconds(15)),
            decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// Runs `body` with a fetcher whose client is shut down when it returns.
    public static func withFetcher<T: Sendable>(_ body: (AsyncHTTPFetcher) async throws -> T) async throws -> T {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result: Result<T, Error>
        do { result = .success(try await body(AsyncHTTPFetcher(client: client))) } catch { result = .failure(error) }
        try? await client.shutdown()
        return try result.get()
    }

    public func get(_ url: String, maxBytes: Int, timeout: Duration) async throws -> [UInt8] {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw HTTPFetchError.unsupportedURL(url) }
        let (seconds, attoseconds) = timeout.components
        let deadline = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(HTTPClientRequest(url: url), timeout: deadline)
        } catch {
            throw HTTPFetchError.unreachable(url: url, reason: Self.reason(error, timeout: timeout))
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw HTTPFetchError.status(url: url, code: Int(response.status.code))
        }
        do {
            var body = try await response.body.collect(upTo: maxBytes)
            return body.readBytes(length: body.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw HTTPFetchError.tooLarge(url: url, limit: maxBytes)
        } catch {
            throw HTTPFetchError.unreachable(url: url, reason: Self.reason(error, timeout: timeout))
        }
    }

    /// A short operator-readable cause instead of NIO's nested descriptions.
    static func reason(_ error: Error, timeout: Duration) -> String {
        if let e = error as? NIOConnectionError {
            if let failure = e.connectionErrors.first { return reason(failure.error, timeout: timeout) }
            if e.dnsAError != nil || e.dnsAAAAError != nil { return "cannot resolve \(e.host)" }
        }
        if let e = error as? IOError, let text = strerror(e.errnoCode) { return String(cString: text).lowercased() }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout: return "no answer within \(timeout)"
            case .connectTimeout: return "connection timed out"
            case .redirectLimitReached: return "more than 3 redirects"
            case .redirectCycleDetected: return "redirect loop"
            default: return "\(e)"
            }
        }
        return "\(error)"
    }
}
