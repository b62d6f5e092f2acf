import Crypto
import CryptoExtras
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
    let anchorStore: CertificateStore
    public let validationTime: Date
    public let policy: AlgorithmPolicy
    /// RFC 5280 6.1: chain length limit (leaf + intermediates + anchor).
    public let maxChainLength: Int

    public init(anchors: [CertificateSummary], validationTime: Date = Date(), policy: AlgorithmPolicy = .direct,
                maxChainLength: Int = 6) throws {
        guard !anchors.isEmpty else { throw SMIMEError.noAnchors }
        self.anchors = try anchors.map(CertificateLoading.x509)
        self.anchorStore = CertificateStore(self.anchors)
        self.validationTime = validationTime
        self.policy = policy
        self.maxChainLength = maxChainLength
    }

    /// Validates `leaf` for `purpose`. `parsedLeaf` is swift-certificates'
    /// view of the same certificate when the caller has it already.
    public func validate(
        _ leaf: CertificateSummary, parsedLeaf: Certificate? = nil, intermediates: [Certificate], purpose: Purpose
    ) async -> Verdict {
        let cert: Certificate
        do {
            cert = try parsedLeaf ?? CertificateLoading.x509(leaf)
        } catch {
            return .untrusted("\(error)")
        }
        // Key usage for the purpose (RFC 5280 4.2.1.3; Direct AS 1.2 4.0).
        if let ku = try? cert.extensions.keyUsage {
            switch purpose {
            case .signing where !(ku.digitalSignature || ku.nonRepudiation):
                return .untrusted("key usage of \(leaf.displayName) does not allow digitalSignature")
            case .encryption where !ku.keyEncipherment:
                return .untrusted("key usage of \(leaf.displayName) does not allow keyEncipherment")
            default: break
            }
        }
        var verifier = Verifier(rootCertificates: anchorStore) {
            RFC5280Policy(validationTime: validationTime)
            DirectAlgorithmVerifierPolicy(policy: policy, maxChainLength: maxChainLength)
        }
        let result = await verifier.validate(leaf: cert, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate(let chain):
            return .trusted(Array(chain))
        case .couldNotValidate(let failures):
            if let f = failures.first {
                return .untrusted("\(leaf.displayName): \(f.policyFailureReason)")
            }
            return .untrusted("\(leaf.displayName) does not chain to any configured anchor")
        }
    }
}

/// Applies the algorithm policy to every certificate of a candidate chain
/// except the anchor, whose self-signature is not relied on. Works on
/// swift-certificates' parsed view, so nothing is re-encoded per chain.
struct DirectAlgorithmVerifierPolicy: VerifierPolicy {
    let policy: AlgorithmPolicy
    let maxChainLength: Int
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.keyUsage]

    /// The certificate signature algorithms Direct accepts (Direct AS 1.2 5:
    /// SHA-256 or stronger, RSA or ECDSA), with the OIDs the policy names.
    static let acceptedSignatures: [(Certificate.SignatureAlgorithm, ASN1ObjectIdentifier)] = [
        (.sha256WithRSAEncryption, CMSOID.sha256WithRSAEncryption),
        (.sha384WithRSAEncryption, CMSOID.sha384WithRSAEncryption),
        (.sha512WithRSAEncryption, CMSOID.sha512WithRSAEncryption),
        (.ecdsaWithSHA256, CMSOID.ecdsaWithSHA256),
        (.ecdsaWithSHA384, CMSOID.ecdsaWithSHA384),
        (.ecdsaWithSHA512, CMSOID.ecdsaWithSHA512),
    ]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let limit = maxChainLength
        let count = chain.count
        if count > limit {
            return .failsToMeetPolicy(reason: "chain of \(count) certificates exceeds the limit of \(limit)")
        }
        for cert in chain.dropLast() {
            func name() -> String { "subject \(cert.subject), serial \(cert.serialNumber)" }
            do {
                if cert.signatureAlgorithm == .sha1WithRSAEncryption {
                    try policy.checkCertificateSignature(algorithm: CMSOID.sha1WithRSAEncryption, certificateName: name())
                }
                guard Self.acceptedSignatures.contains(where: { $0.0 == cert.signatureAlgorithm }) else {
                    throw CMSError.algorithmRefused("certificate signed with \(cert.signatureAlgorithm) refused (\(name()))")
                }
                try policy.checkKey(Self.keyType(cert.publicKey), role: "certificate", certificateName: name())
            } catch {
                return .failsToMeetPolicy(reason: "\(error)")
            }
        }
        return .meetsPolicy
    }

    static func keyType(_ key: Certificate.PublicKey) -> CertificateSummary.KeyType {
        if let rsa = _RSA.Signing.PublicKey(key) { return .rsa(bits: rsa.keySizeInBits) }
        if P256.Signing.PublicKey(key) != nil { return .ec(curve: CMSOID.secp256r1) }
        if P384.Signing.PublicKey(key) != nil { return .ec(curve: CMSOID.secp384r1) }
        if P521.Signing.PublicKey(key) != nil { return .ec(curve: [1, 3, 132, 0, 35]) }
        return .other([1, 3, 101, 112])  // Ed25519, the only other key swift-certificates reads
    }
}
