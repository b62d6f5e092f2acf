import CryptographicMessageSyntax
import X509
import SwiftASN1
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Validates a certificate's chain to configured anchors. This is the seam
/// the Direct trust policy (per-domain anchors, direction, CRL, AIA) plugs
/// into; today it is RFC 5280 path validation plus the algorithm policy and
/// key usage.
public struct ChainValidator: Sendable {
    public enum Purpose: Sendable { case signing, encryption }

    public enum Verdict: Sendable {
        case trusted([Certificate])
        case untrusted(String)
    }

    public let anchors: [Certificate]
    public let validationTime: Date
    public let policy: AlgorithmPolicy
    /// RFC 5280 6.1: chain length limit (leaf + intermediates + anchor).
    public let maxChainLength: Int

    public init(anchors: [CertificateSummary], validationTime: Date = Date(), policy: AlgorithmPolicy = .direct,
                maxChainLength: Int = 6) throws {
        guard !anchors.isEmpty else { throw SMIMEError.noAnchors }
        self.anchors = try anchors.map(CertificateLoading.x509)
        self.validationTime = validationTime
        self.policy = policy
        self.maxChainLength = maxChainLength
    }

    public func validate(_ leaf: CertificateSummary, intermediates: [Certificate], purpose: Purpose) async -> Verdict {
        let name = leaf.displayName
        let cert: Certificate
        do {
            cert = try CertificateLoading.x509(leaf)
        } catch {
            return .untrusted("\(error)")
        }
        // Key usage for the purpose (RFC 5280 4.2.1.3; Direct AS 1.2 4.0).
        if let ku = try? cert.extensions.keyUsage {
            switch purpose {
            case .signing where !(ku.digitalSignature || ku.nonRepudiation):
                return .untrusted("key usage of \(name) does not allow digitalSignature")
            case .encryption where !ku.keyEncipherment:
                return .untrusted("key usage of \(name) does not allow keyEncipherment")
            default: break
            }
        }
        var verifier = Verifier(rootCertificates: CertificateStore(anchors)) {
            RFC5280Policy(validationTime: validationTime)
            DirectAlgorithmVerifierPolicy(policy: policy, maxChainLength: maxChainLength)
        }
        let result = await verifier.validate(leaf: cert, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate(let chain):
            return .trusted(Array(chain))
        case .couldNotValidate(let failures):
            if let f = failures.first {
                return .untrusted("\(name): \(f.policyFailureReason)")
            }
            return .untrusted("\(name) does not chain to any configured anchor")
        }
    }
}

/// Applies the algorithm policy to every certificate of a candidate chain
/// except the anchor, whose self-signature is not relied on.
struct DirectAlgorithmVerifierPolicy: VerifierPolicy {
    let policy: AlgorithmPolicy
    let maxChainLength: Int
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.keyUsage]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let limit = maxChainLength
        let count = chain.count
        if count > limit {
            return .failsToMeetPolicy(reason: "chain of \(count) certificates exceeds the limit of \(limit)")
        }
        for cert in chain.dropLast() {
            let summary: CertificateSummary
            do {
                var s = DER.Serializer()
                try s.serialize(cert)
                summary = try CertificateSummary(der: s.serializedBytes)
                try policy.checkCertificateSignature(summary)
                try policy.checkKey(summary, role: "certificate")
            } catch {
                let text = "\(error)"
                return .failsToMeetPolicy(reason: text)
            }
        }
        return .meetsPolicy
    }
}
