import DirectCore
import X509
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// OCSP (RFC 6960) for chains whose certificates name a responder in their
/// AuthorityInformationAccess. swift-certificates' `OCSPVerifierPolicy`
/// builds the request and checks the response (signature, responder
/// authorisation, nonce, freshness); we carry it over HTTP GET and tell
/// "revoked" from "could not ask", which the policy alone does not.
enum OCSPOutcome {
    case good
    case revoked(String)
    case unavailable(String)
}

struct OCSPRevocation {
    let fetcher: (any HTTPFetching)?
    let policy: TrustPolicy

    static func responders(_ cert: Certificate) -> [String] {
        guard let aia = try? cert.extensions.authorityInformationAccess else { return [] }
        return aia.compactMap { d in
            guard d.method == .ocspServer, case .uniformResourceIdentifier(let uri) = d.location else { return nil }
            return uri
        }
    }

    func check(chain: [Certificate], at time: Date) async -> OCSPOutcome {
        guard let fetcher else { return .unavailable("fetching is off") }
        let requester = OCSPGetRequester(fetcher: fetcher, policy: policy)
        var verifier = Verifier(rootCertificates: CertificateStore([chain[chain.count - 1]])) {
            // RFC5280Policy is there to claim the critical extensions (key usage, basic constraints): a Verifier
            // drops a chain with a critical extension no policy understands. The chain itself was checked before.
            RFC5280Policy(validationTime: time)
            OCSPVerifierPolicy(failureMode: .hard, requester: requester, validationTime: time)
        }
        let result = await verifier.validate(leaf: chain[0], intermediates: CertificateStore(Array(chain.dropFirst().dropLast())))
        switch result {
        case .validCertificate:
            return .good
        case .couldNotValidate(let failures):
            let reason = failures.first.map { "\($0.policyFailureReason)" } ?? "no chain"
            if let transport = requester.transportError { return .unavailable(transport) }
            if reason.contains("revoked through OCSP") { return .revoked(reason) }
            return .unavailable("response refused: \(reason)")
        }
    }
}

/// RFC 6960 A.1: GET {url}/{url-encoding of base64 of the DER request}.
final class OCSPGetRequester: OCSPRequester, Sendable {
    let fetcher: any HTTPFetching
    let policy: TrustPolicy
    private let error = Mutex<String?>(nil)

    init(fetcher: any HTTPFetching, policy: TrustPolicy) {
        self.fetcher = fetcher
        self.policy = policy
    }

    /// The first failure to reach a responder, if any.
    var transportError: String? { error.withLock { $0 } }

    func query(request: [UInt8], uri: String) async -> OCSPRequesterQueryResult {
        let encoded = Data(request).base64EncodedString().utf8.reduce(into: "") { out, byte in
            switch byte {
            case UInt8(ascii: "+"): out += "%2B"
            case UInt8(ascii: "/"): out += "%2F"
            case UInt8(ascii: "="): out += "%3D"
            default: out.append(Character(UnicodeScalar(byte)))
            }
        }
        let url = uri + (uri.hasSuffix("/") ? "" : "/") + encoded
        do {
            return .response(try await fetcher.get(url, maxBytes: policy.maxCRLFetchBytes, timeout: policy.fetchTimeout))
        } catch {
            let cause: String
            switch error as? HTTPFetchError {
            case .unreachable(_, let reason): cause = "unreachable: \(reason)"
            case .status(_, let code): cause = "answered HTTP \(code)"
            case .tooLarge(_, let limit): cause = "sent more than \(limit) bytes"
            default: cause = "\(error)"
            }
            let text = "OCSP responder \(uri) \(cause)"
            self.error.withLock { if $0 == nil { $0 = text } }
            // Terminal, so the policy fails and we report it; the trust policy then applies "revocation unreachable".
            return .terminalError(error)
        }
    }
}
