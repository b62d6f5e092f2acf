import Crypto
import CryptoExtras
import X509

/// The key types an operator can ask for (Direct: RSA of at least 2048 bits,
/// or ECDSA P-256 / P-384 for signing).
public enum KeySpec: String, CaseIterable, Sendable {
    case rsa2048, rsa3072, rsa4096, p256, p384

    public var isRSA: Bool { self == .rsa2048 || self == .rsa3072 || self == .rsa4096 }

    /// A fresh key and its PKCS#8 PEM ("PRIVATE KEY", RFC 5958 / RFC 7468 10).
    public func generate() throws -> (key: Certificate.PrivateKey, pkcs8PEM: String) {
        switch self {
        case .rsa2048, .rsa3072, .rsa4096:
            let bits = self == .rsa2048 ? 2048 : self == .rsa3072 ? 3072 : 4096
            let key = try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
            return (Certificate.PrivateKey(key), key.pkcs8PEMRepresentation)
        case .p256:
            let key = P256.Signing.PrivateKey()
            return (Certificate.PrivateKey(key), key.pemRepresentation)
        case .p384:
            let key = P384.Signing.PrivateKey()
            return (Certificate.PrivateKey(key), key.pemRepresentation)
        }
    }
}

extension Certificate.PrivateKey {
    /// The signature algorithm an issuer with this key uses: SHA-256 with RSA
    /// (Direct AS 1.2 5), ECDSA with the hash matching the curve (RFC 5480 4).
    var directSignatureAlgorithm: Certificate.SignatureAlgorithm {
        get throws {
            switch publicKey.keyKind {
            case .rsa: return .sha256WithRSAEncryption
            case .p256: return .ecdsaWithSHA256
            case .p384: return .ecdsaWithSHA384
            case .other: throw CAError.unsupported("issuer key type (RSA, P-256 or P-384 only)")
            }
        }
    }
}

extension Certificate.PublicKey {
    enum Kind { case rsa, p256, p384, other }

    var keyKind: Kind {
        if _RSA.Signing.PublicKey(self) != nil { return .rsa }
        if P256.Signing.PublicKey(self) != nil { return .p256 }
        if P384.Signing.PublicKey(self) != nil { return .p384 }
        return .other
    }
}
