import CryptographicMessageSyntax

/// A local Direct identity: a certificate, a handle on its private key and the chain to send.
public struct SMIMEIdentity: Sendable {
    public let certificate: CertificateSummary
    public let key: any PrivateKeyHandle
    public let chain: [CertificateSummary]

    /// Checks that the key is the certificate's.
    public init(certificate: CertificateSummary, key: any PrivateKeyHandle, chain: [CertificateSummary] = []) throws {
        guard key.publicKeySPKI == certificate.subjectPublicKeyInfo || Self.samePublicKey(key, certificate) else {
            throw SMIMEError.keyDoesNotMatchCertificate
        }
        self.certificate = certificate
        self.key = key
        self.chain = chain
    }

    /// SPKI encodings may differ in the NULL parameter; compare the key bits.
    private static func samePublicKey(_ key: any PrivateKeyHandle, _ cert: CertificateSummary) -> Bool {
        guard let a = try? CertificateSummary.publicKeyBits(spki: key.publicKeySPKI),
            let b = try? CertificateSummary.publicKeyBits(spki: cert.subjectPublicKeyInfo)
        else { return false }
        return a == b
    }
}
