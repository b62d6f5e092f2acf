import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import Foundation
import SwiftASN1
import X509

/// An RSA identity made in memory with swift-certificates.
public struct MemoryIdentity: Sendable {
    public let key: LocalPrivateKey
    public let summary: CertificateSummary

    public static func make(_ name: String, ec: Bool = false) throws -> MemoryIdentity {
        let dn = try DistinguishedName { CommonName(name) }
        let now = Date()
        // Self-signed, so it can serve as its own anchor in tests (RFC 5280
        // accepts a self-signed anchor only when it is marked as a CA).
        let exts = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            SubjectKeyIdentifier(keyIdentifier: ArraySlice(Array(SHA256.hash(data: Array(name.utf8))).prefix(20)))
        }
        let cert: Certificate
        let key: LocalPrivateKey
        if ec {
            let k = P256.Signing.PrivateKey()
            cert = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(k.publicKey), notValidBefore: now - 60,
                                   notValidAfter: now + 3600, issuer: dn, subject: dn, signatureAlgorithm: .ecdsaWithSHA256,
                                   extensions: exts, issuerPrivateKey: .init(k))
            key = LocalPrivateKey(p256: k)
        } else {
            let k = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            cert = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(k.publicKey), notValidBefore: now - 60,
                                   notValidAfter: now + 3600, issuer: dn, subject: dn, signatureAlgorithm: .sha256WithRSAEncryption,
                                   extensions: exts, issuerPrivateKey: .init(k))
            key = try LocalPrivateKey(rsa: k)
        }
        var s = DER.Serializer()
        try s.serialize(cert)
        return MemoryIdentity(key: key, summary: try CertificateSummary(der: s.serializedBytes))
    }
}

