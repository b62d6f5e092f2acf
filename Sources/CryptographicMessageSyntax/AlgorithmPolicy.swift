import SwiftASN1

/// Which algorithms and key sizes DirectHISP accepts, applied both when
/// producing and when consuming (Direct AS 1.2 5, RFC 8551 2.7). On by default;
/// every refusal names the algorithm.
public struct AlgorithmPolicy: Sendable, Hashable {
    /// RSA keys below this are refused (Direct AS 1.2: 2048-bit minimum).
    public var minimumRSAKeyBits: Int
    /// RSA keys above this are refused (a parser limit: 16384 bits).
    public var maximumRSAKeyBits: Int
    public var allowedDigests: Set<ASN1ObjectIdentifier>
    public var allowedContentEncryption: Set<ASN1ObjectIdentifier>
    public var allowedCurves: Set<ASN1ObjectIdentifier>

    public init(
        minimumRSAKeyBits: Int = 2048,
        maximumRSAKeyBits: Int = 16384,
        allowedDigests: Set<ASN1ObjectIdentifier> = [CMSOID.sha256, CMSOID.sha384, CMSOID.sha512],
        allowedContentEncryption: Set<ASN1ObjectIdentifier> = [
            CMSOID.aes128CBC, CMSOID.aes192CBC, CMSOID.aes256CBC, CMSOID.aes128GCM, CMSOID.aes192GCM, CMSOID.aes256GCM,
        ],
        allowedCurves: Set<ASN1ObjectIdentifier> = [CMSOID.secp256r1, CMSOID.secp384r1]
    ) {
        self.minimumRSAKeyBits = minimumRSAKeyBits
        self.maximumRSAKeyBits = maximumRSAKeyBits
        self.allowedDigests = allowedDigests
        self.allowedContentEncryption = allowedContentEncryption
        self.allowedCurves = allowedCurves
    }

    public static let direct = AlgorithmPolicy()

    /// Direct AS 1.2 5: SHA-1 and MD5 digests are refused for signatures.
    public func checkDigest(_ oid: ASN1ObjectIdentifier) throws {
        guard allowedDigests.contains(oid) else {
            throw CMSError.algorithmRefused("\(CMSOID.name(oid)) digest refused (allowed: SHA-256, SHA-384, SHA-512)")
        }
    }

    /// Direct AS 1.2 5: AES only; DES, 3DES and RC2 are refused.
    public func checkContentEncryption(_ oid: ASN1ObjectIdentifier) throws {
        guard allowedContentEncryption.contains(oid) else {
            throw CMSError.algorithmRefused("\(CMSOID.name(oid)) content encryption refused (allowed: AES-CBC, AES-GCM)")
        }
    }

    /// Key size and type of a certificate used to sign or to encrypt.
    public func checkKey(_ cert: CertificateSummary, role: String) throws {
        try checkKey(cert.keyType, role: role, certificateName: cert.displayName)
    }

    public func checkKey(
        _ keyType: CertificateSummary.KeyType, role: String, certificateName: @autoclosure () -> String
    ) throws {
        switch keyType {
        case .rsa(let bits):
            guard bits >= minimumRSAKeyBits else {
                throw CMSError.algorithmRefused(
                    "\(role) RSA key of \(bits) bits is below the \(minimumRSAKeyBits)-bit minimum (\(certificateName()))")
            }
            guard bits <= maximumRSAKeyBits else {
                throw CMSError.algorithmRefused("\(role) RSA key of \(bits) bits exceeds \(maximumRSAKeyBits) bits")
            }
        case .ec(let curve):
            guard allowedCurves.contains(curve) else {
                throw CMSError.algorithmRefused("\(role) \(keyType) refused (allowed: P-256, P-384)")
            }
        case .other(let oid):
            throw CMSError.algorithmRefused("\(role) key algorithm \(oid) refused (\(certificateName()))")
        }
    }

    /// A certificate signed with SHA-1 or MD5 is refused (Direct AS 1.2 5).
    public func checkCertificateSignature(_ cert: CertificateSummary) throws {
        try checkCertificateSignature(algorithm: cert.signatureAlgorithm, certificateName: cert.displayName)
    }

    public func checkCertificateSignature(algorithm: ASN1ObjectIdentifier, certificateName: @autoclosure () -> String) throws {
        let weak: [ASN1ObjectIdentifier] = [CMSOID.sha1WithRSAEncryption, CMSOID.md5WithRSAEncryption, CMSOID.ecdsaWithSHA1]
        if weak.contains(algorithm) {
            throw CMSError.algorithmRefused(
                "certificate signed with \(CMSOID.name(algorithm)) refused (\(certificateName()))")
        }
    }
}
