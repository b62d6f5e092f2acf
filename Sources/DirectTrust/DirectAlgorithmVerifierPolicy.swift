import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import SwiftASN1
import X509

/// Applies the algorithm policy and the chain-length limit to every
/// certificate of a candidate chain except the anchor, whose self-signature
/// is not relied on. Works on swift-certificates' parsed view, so nothing is
/// re-encoded per chain.
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
            do {
                try Self.check(cert, policy: policy, name: "subject \(cert.subject), serial \(CertificateNaming.serial(cert.serialNumber))")
            } catch {
                return .failsToMeetPolicy(reason: "\(error)")
            }
        }
        return .meetsPolicy
    }

    /// The signature algorithm and the key of one certificate.
    static func check(_ cert: Certificate, policy: AlgorithmPolicy, name: @autoclosure () -> String) throws {
        if cert.signatureAlgorithm == .sha1WithRSAEncryption {
            try policy.checkCertificateSignature(algorithm: CMSOID.sha1WithRSAEncryption, certificateName: name())
        }
        guard acceptedSignatures.contains(where: { $0.0 == cert.signatureAlgorithm }) else {
            throw CMSError.algorithmRefused("certificate signed with \(Self.name(cert.signatureAlgorithm)) refused (\(name()))")
        }
        try policy.checkKey(keyType(cert.publicKey), role: "certificate", certificateName: name())
    }

    static func name(_ alg: Certificate.SignatureAlgorithm) -> String {
        if let oid = acceptedSignatures.first(where: { $0.0 == alg })?.1 { return CMSOID.name(oid) }
        if alg == .sha1WithRSAEncryption { return CMSOID.name(CMSOID.sha1WithRSAEncryption) }
        return "\(alg)"
    }

    static func keyType(_ key: Certificate.PublicKey) -> CertificateSummary.KeyType {
        if let rsa = _RSA.Signing.PublicKey(key) { return .rsa(bits: rsa.keySizeInBits) }
        if P256.Signing.PublicKey(key) != nil { return .ec(curve: CMSOID.secp256r1) }
        if P384.Signing.PublicKey(key) != nil { return .ec(curve: CMSOID.secp384r1) }
        if P521.Signing.PublicKey(key) != nil { return .ec(curve: [1, 3, 132, 0, 35]) }
        return .other([1, 3, 101, 112])  // Ed25519, the only other key swift-certificates reads
    }
}
