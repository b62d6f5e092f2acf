import SwiftASN1
import DirectCore
import Crypto
import CryptoExtras
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Key transport algorithms for KeyTransRecipientInfo.
public enum KeyTransport: String, Sendable, CaseIterable {
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 4055 4, RFC 8551 2.3).
    case rsaOAEPSHA256 = "rsa-oaep-sha256"
    /// RSAES-OAEP with SHA-1 (read only: openssl's default OAEP).
    case rsaOAEPSHA1 = "rsa-oaep-sha1"
    /// RSAES-PKCS1-v1_5 (RFC 3370 4.2.1): what every peer reads.
    case rsaPKCS1v15 = "rsa-pkcs1v15"

    /// RSAES-OAEP-SHA256 as we write it, made once: most peers send exactly this.
    private static let oaepSHA256Identifier = try? KeyTransport.rsaOAEPSHA256.makeAlgorithmIdentifier()

    public var algorithmIdentifier: AlgorithmIdentifier {
        get throws {
            if self == .rsaOAEPSHA256, let made = Self.oaepSHA256Identifier { return made }
            return try makeAlgorithmIdentifier()
        }
    }

    private func makeAlgorithmIdentifier() throws -> AlgorithmIdentifier {
        switch self {
        case .rsaPKCS1v15: return .withNull(CMSOID.rsaEncryption)
        case .rsaOAEPSHA256:
            return AlgorithmIdentifier(
                CMSOID.rsaesOAEP, parameters: try ASN1Any(erasing: RSAESOAEPParams(hash: CMSOID.sha256, mgfHash: CMSOID.sha256)))
        case .rsaOAEPSHA1:
            return AlgorithmIdentifier(
                CMSOID.rsaesOAEP, parameters: try ASN1Any(erasing: RSAESOAEPParams(hash: CMSOID.sha1, mgfHash: CMSOID.sha1)))
        }
    }

    /// Reads the key encryption algorithm of a received KeyTransRecipientInfo.
    public init(_ alg: AlgorithmIdentifier) throws {
        if alg.algorithm == CMSOID.rsaEncryption {
            self = .rsaPKCS1v15
            return
        }
        guard alg.algorithm == CMSOID.rsaesOAEP else {
            throw CMSError.unsupportedAlgorithm("key encryption \(alg.name)")
        }
        // The same encoding as ours needs no parse (RFC 4055 4.1); any other is parsed.
        if alg == Self.oaepSHA256Identifier {
            self = .rsaOAEPSHA256
            return
        }
        let params = try alg.parameters.map { try RSAESOAEPParams(berASN1Any: $0) }
            ?? RSAESOAEPParams(hash: CMSOID.sha1, mgfHash: CMSOID.sha1)
        guard params.label.isEmpty else { throw CMSError.unsupportedAlgorithm("RSAES-OAEP with a label") }
        switch (params.hash, params.mgfHash) {
        case (CMSOID.sha256, CMSOID.sha256): self = .rsaOAEPSHA256
        case (CMSOID.sha1, CMSOID.sha1): self = .rsaOAEPSHA1
        default:
            throw CMSError.unsupportedAlgorithm(
                "RSAES-OAEP with \(CMSOID.name(params.hash)) and MGF1-\(CMSOID.name(params.mgfHash))")
        }
    }
}

/// Something that can produce a CMS signature. The private key may live in
/// this process or, later, in an HSM behind the same protocol.
public protocol CMSSigningKey: Sendable {
    /// The public key's certificate-independent description, for policy checks.
    var keyDescription: String { get }
    /// The SignerInfo signatureAlgorithm for this key and digest.
    func signatureAlgorithm(digest: DigestAlgorithm) -> AlgorithmIdentifier
    /// Signs `data` (hashed with `digest` here).
    func sign(_ data: [UInt8], digest: DigestAlgorithm) throws -> [UInt8]
}

/// Something that can decrypt a content-encryption key sent to it.
public protocol CMSKeyTransportDecrypter: Sendable {
    func decryptContentKey(_ encryptedKey: ArraySlice<UInt8>, transport: KeyTransport, expectedLength: Int) throws -> [UInt8]
}

/// A private key reached through a key provider (docs/keys.md): it signs and
/// decrypts; where its bytes live (this process, OpenSSL, a token) is the provider's.
public protocol PrivateKeyHandle: CMSSigningKey, CMSKeyTransportDecrypter {
    /// The provider holding the key: "builtin", "openssl", "pkcs11".
    var provider: String { get }
    /// SubjectPublicKeyInfo DER of the public half, to check a key matches its certificate.
    var publicKeySPKI: [UInt8] { get }
}

/// What kind of private key a handle holds: what its signatures are called and how it is described.
public enum PrivateKeyAlgorithm: Sendable, Equatable, CustomStringConvertible {
    case rsa(bits: Int)
    case p256
    case p384

    public var description: String {
        switch self {
        case .rsa(let bits): return "RSA-\(bits)"
        case .p256: return "EC P-256"
        case .p384: return "EC P-384"
        }
    }

    /// The SignerInfo signatureAlgorithm for this key and digest.
    public func signatureAlgorithm(digest: DigestAlgorithm) -> AlgorithmIdentifier {
        switch self {
        case .rsa:
            // RFC 3370 3.2 / RFC 5754 3.2: rsaEncryption is what every peer reads.
            return .withNull(CMSOID.rsaEncryption)
        case .p256, .p384:
            // RFC 5758 3.2: ecdsa-with-SHA*, parameters absent.
            switch digest {
            case .sha256: return AlgorithmIdentifier(CMSOID.ecdsaWithSHA256)
            case .sha384: return AlgorithmIdentifier(CMSOID.ecdsaWithSHA384)
            case .sha512: return AlgorithmIdentifier(CMSOID.ecdsaWithSHA512)
            }
        }
    }
}

/// Makes handles for the keys the store holds sealed (PKCS#8 DER once unsealed).
public protocol KeyProvider: Sendable {
    var name: String { get }
    func handle(pkcs8 der: [UInt8]) throws -> any PrivateKeyHandle
}

/// swift-crypto in this process: always present.
public struct BuiltinKeyProvider: KeyProvider {
    public init() {}
    public var name: String { "builtin" }
    public func handle(pkcs8 der: [UInt8]) throws -> any PrivateKeyHandle { try LocalPrivateKey(der: der) }
}

/// A private key held in memory: RSA (PKCS#1 or PKCS#8) or EC P-256/P-384
/// (SEC1 or PKCS#8), read from PEM or DER.
public struct LocalPrivateKey: PrivateKeyHandle {
    public var provider: String { "builtin" }

    enum Backing: @unchecked Sendable {
        case rsa(_RSA.Signing.PrivateKey, _RSA.Encryption.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
    }

    let backing: Backing
    public static let maxSize = 64 * 1024

    public init(rsa: _RSA.Signing.PrivateKey) throws {
        backing = .rsa(rsa, try _RSA.Encryption.PrivateKey(unsafeDERRepresentation: rsa.derRepresentation))
    }

    public init(p256: P256.Signing.PrivateKey) { backing = .p256(p256) }
    public init(p384: P384.Signing.PrivateKey) { backing = .p384(p384) }

    /// Reads a key from PEM ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
    /// or DER (PKCS#8, PKCS#1 or SEC1).
    public init(bytes: [UInt8]) throws {
        guard bytes.count <= Self.maxSize else { throw CMSError.limitExceeded("key file larger than \(Self.maxSize) bytes") }
        let der: [UInt8]
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
                throw CMSError.invalidKey("the private key is encrypted with a passphrase; give an unencrypted PEM or DER key")
            }
            guard let doc = PEMText.firstBlock(text, labels: ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]) else {
                throw CMSError.invalidKey("no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in the PEM input")
            }
            der = doc
        } else {
            der = bytes
        }
        try self.init(der: der)
    }

    public init(der: [UInt8]) throws {
        // PKCS#8 PrivateKeyInfo (RFC 5208 5) names the algorithm; PKCS#1 and SEC1 are tried after.
        if let alg = Self.pkcs8Algorithm(der) {
            if alg.algorithm == CMSOID.rsaEncryption {
                backing = try Self.rsa(der)
            } else if alg.algorithm == CMSOID.ecPublicKey {
                backing = try Self.ec(der)
            } else {
                throw CMSError.invalidKey("unsupported private key algorithm \(alg.name)")
            }
            return
        }
        if let rsa = try? Self.rsa(der) {
            backing = rsa
        } else if let ec = try? Self.ec(der) {
            backing = ec
        } else {
            throw CMSError.invalidKey("not a PKCS#8, PKCS#1 or SEC1 private key")
        }
    }

    private static func pkcs8Algorithm(_ der: [UInt8]) -> AlgorithmIdentifier? {
        guard let root = try? DER.parse(der) else { return nil }
        return try? DER.sequence(root, identifier: .sequence) { n in
            _ = try Int(derEncoded: &n)
            return try AlgorithmIdentifier(berEncoded: &n)
        }
    }

    private static func rsa(_ der: [UInt8]) throws -> Backing {
        do {
            let s = try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)
            let e = try _RSA.Encryption.PrivateKey(unsafeDERRepresentation: der)
            return .rsa(s, e)
        } catch {
            throw CMSError.invalidKey("RSA private key could not be read: \(error)")
        }
    }

    private static func ec(_ der: [UInt8]) throws -> Backing {
        if let k = try? P256.Signing.PrivateKey(derRepresentation: der) { return .p256(k) }
        if let k = try? P384.Signing.PrivateKey(derRepresentation: der) { return .p384(k) }
        throw CMSError.invalidKey("EC private key is not on P-256 or P-384")
    }

    /// swift-certificates' view of the key, for issuing certificates and CRLs.
    public var certificatePrivateKey: Certificate.PrivateKey {
        switch backing {
        case .rsa(let s, _): return Certificate.PrivateKey(s)
        case .p256(let k): return Certificate.PrivateKey(k)
        case .p384(let k): return Certificate.PrivateKey(k)
        }
    }

    public var algorithm: PrivateKeyAlgorithm {
        switch backing {
        case .rsa(let s, _): return .rsa(bits: s.keySizeInBits)
        case .p256: return .p256
        case .p384: return .p384
        }
    }

    public var rsaKeyBits: Int? {
        if case .rsa(let bits) = algorithm { return bits }
        return nil
    }

    public var keyDescription: String { algorithm.description }

    /// PKCS#8 PrivateKeyInfo DER (RFC 5208 5), for export.
    public var pkcs8DER: [UInt8] {
        switch backing {
        case .rsa(let s, _): return Array(s.pkcs8DERRepresentation)
        // swift-crypto writes NIST keys as PKCS#8 "PRIVATE KEY" PEM.
        case .p256(let k): return PEMText.firstBlock(k.pemRepresentation, labels: ["PRIVATE KEY"]) ?? []
        case .p384(let k): return PEMText.firstBlock(k.pemRepresentation, labels: ["PRIVATE KEY"]) ?? []
        }
    }

    /// SubjectPublicKeyInfo DER of the public half, to check a key matches its certificate.
    public var publicKeySPKI: [UInt8] {
        switch backing {
        case .rsa(let s, _): return Array(s.publicKey.derRepresentation)
        case .p256(let k): return Array(k.publicKey.derRepresentation)
        case .p384(let k): return Array(k.publicKey.derRepresentation)
        }
    }

    public func signatureAlgorithm(digest: DigestAlgorithm) -> AlgorithmIdentifier { algorithm.signatureAlgorithm(digest: digest) }

    public func sign(_ data: [UInt8], digest: DigestAlgorithm) throws -> [UInt8] {
        switch backing {
        case .rsa(let key, _):
            let sig: _RSA.Signing.RSASignature
            switch digest {
            case .sha256: sig = try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha384: sig = try key.signature(for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha512: sig = try key.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            }
            return Array(sig.rawRepresentation)
        case .p256(let key):
            switch digest {
            case .sha256: return Array(try key.signature(for: SHA256.hash(data: data)).derRepresentation)
            case .sha384: return Array(try key.signature(for: SHA384.hash(data: data)).derRepresentation)
            case .sha512: return Array(try key.signature(for: SHA512.hash(data: data)).derRepresentation)
            }
        case .p384(let key):
            switch digest {
            case .sha256: return Array(try key.signature(for: SHA256.hash(data: data)).derRepresentation)
            case .sha384: return Array(try key.signature(for: SHA384.hash(data: data)).derRepresentation)
            case .sha512: return Array(try key.signature(for: SHA512.hash(data: data)).derRepresentation)
            }
        }
    }

    public func decryptContentKey(_ encryptedKey: ArraySlice<UInt8>, transport: KeyTransport, expectedLength: Int) throws -> [UInt8] {
        guard case .rsa(_, let key) = backing else {
            throw CMSError.unsupportedRecipientType("our key is EC; key agreement (kari) is not supported")
        }
        switch transport {
        case .rsaPKCS1v15:
            // RFC 3218 2.3 / RFC 5652 14 (Bleichenbacher): a padding failure must
            // not be distinguishable from a wrong key, so a failed or wrong-size
            // decryption yields a random key and fails later at the content.
            let fallback = SecureRandom.bytes(expectedLength)
            guard let plain = try? key.decrypt(encryptedKey, padding: ._WEAK_AND_INSECURE_PKCS_V1_5),
                plain.count == expectedLength
            else { return fallback }
            return Array(plain)
        case .rsaOAEPSHA256, .rsaOAEPSHA1:
            do {
                let plain = try key.decrypt(
                    encryptedKey, padding: transport == .rsaOAEPSHA256 ? .PKCS1_OAEP_SHA256 : .PKCS1_OAEP)
                return Array(plain)
            } catch {
                throw CMSError.keyDecryptionFailed("RSAES-OAEP decryption with our key failed")
            }
        }
    }
}

/// Public key operations on a certificate's SubjectPublicKeyInfo.
public enum PublicKeyOperations {
    /// Verifies a SignerInfo signature (RFC 5652 5.6) with the certificate's key.
    public static func verify(
        signature: ArraySlice<UInt8>, over data: [UInt8], digest: DigestAlgorithm, certificate: CertificateSummary,
        cache: CertificateCache? = nil
    ) throws -> Bool {
        switch certificate.keyType {
        case .rsa:
            let key = try cache.map { try $0.rsaVerifyingKey(certificate) }
                ?? _RSA.Signing.PublicKey(unsafeDERRepresentation: certificate.subjectPublicKeyInfo)
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch digest {
            case .sha256: return key.isValidSignature(sig, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha384: return key.isValidSignature(sig, for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
            case .sha512: return key.isValidSignature(sig, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            }
        case .ec(let curve) where curve == CMSOID.secp256r1:
            let key = try P256.Signing.PublicKey(derRepresentation: certificate.subjectPublicKeyInfo)
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            switch digest {
            case .sha256: return key.isValidSignature(sig, for: SHA256.hash(data: data))
            case .sha384: return key.isValidSignature(sig, for: SHA384.hash(data: data))
            case .sha512: return key.isValidSignature(sig, for: SHA512.hash(data: data))
            }
        case .ec(let curve) where curve == CMSOID.secp384r1:
            let key = try P384.Signing.PublicKey(derRepresentation: certificate.subjectPublicKeyInfo)
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            switch digest {
            case .sha256: return key.isValidSignature(sig, for: SHA256.hash(data: data))
            case .sha384: return key.isValidSignature(sig, for: SHA384.hash(data: data))
            case .sha512: return key.isValidSignature(sig, for: SHA512.hash(data: data))
            }
        default:
            throw CMSError.unsupportedAlgorithm("signature with \(certificate.keyType)")
        }
    }

    /// Encrypts a content-encryption key to an RSA certificate.
    public static func encryptContentKey(
        _ cek: ArraySlice<UInt8>, to certificate: CertificateSummary, transport: KeyTransport, cache: CertificateCache? = nil
    ) throws -> [UInt8] {
        guard case .rsa = certificate.keyType else {
            throw CMSError.unsupportedRecipientType(
                "recipient has an \(certificate.keyType) key; encryption to EC certificates (key agreement) is not supported (\(certificate.displayName))")
        }
        let key = try cache.map { try $0.rsaEncryptionKey(certificate) }
            ?? _RSA.Encryption.PublicKey(unsafeDERRepresentation: certificate.subjectPublicKeyInfo)
        switch transport {
        case .rsaOAEPSHA256: return Array(try key.encrypt(cek, padding: .PKCS1_OAEP_SHA256))
        case .rsaOAEPSHA1: return Array(try key.encrypt(cek, padding: .PKCS1_OAEP))
        case .rsaPKCS1v15: return Array(try key.encrypt(cek, padding: ._WEAK_AND_INSECURE_PKCS_V1_5))
        }
    }
}

/// Minimal PEM reading (RFC 7468) for keys and certificate lists.
public enum PEMText {
    /// All blocks with one of `labels`, decoded, in order.
    public static func blocks(_ text: String, labels: Set<String>) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var label: String? = nil
        var body = ""
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                label = String(line.dropFirst(11).dropLast(5))
                body = ""
            } else if line.hasPrefix("-----END "), let l = label {
                if labels.contains(l), let d = Data(base64Encoded: body) { result.append(Array(d)) }
                label = nil
            } else if label != nil, !line.contains(":") {
                body += line
            }
        }
        return result
    }

    public static func firstBlock(_ text: String, labels: Set<String>) -> [UInt8]? {
        blocks(text, labels: labels).first
    }
}
