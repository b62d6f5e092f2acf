import CryptoExtras
import DirectCore
import X509
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Certificates parsed once and kept by their exact DER bytes: a peer
/// includes the same certificates in every message it signs, and parsing
/// them (ours for CMS, swift-certificates' for chain validation) costs more
/// than checking the signature with them. Parsing is a pure function of the
/// bytes, so a kept result is the one a fresh parse would give; what fails
/// to parse is not kept and fails again, with its own error, each time.
public final class CertificateCache: Sendable {
    public static let defaultCapacity = 1024

    // @unchecked: only for `_RSA.Encryption.PublicKey`, which swift-crypto
    // does not mark Sendable although it wraps the same immutable BoringSSL
    // key as `_RSA.Signing.PublicKey`, which it does (BoringSSL sets up a
    // key's Montgomery context under the key's own lock).
    struct Entry: @unchecked Sendable {
        var summary: CertificateSummary?
        var certificate: Certificate?
        /// Parsed RSA public keys: BoringSSL sets up a key's Montgomery
        /// context on its first use, which costs about as much as the
        /// public-key operation itself.
        var rsaVerifying: _RSA.Signing.PublicKey?
        var rsaEncryption: _RSA.Encryption.PublicKey?
    }

    /// The DER bytes as the key. Hashing takes only the length and the last
    /// bytes (the issuer's signature, different in every certificate), so a
    /// lookup does not hash a whole certificate; equality compares it all.
    struct Key: Hashable, Sendable {
        let der: [UInt8]

        static func == (a: Key, b: Key) -> Bool {
            guard a.der.count == b.der.count else { return false }
            return a.der.withUnsafeBytes { x in
                b.der.withUnsafeBytes { y in
                    guard let p = x.baseAddress, let q = y.baseAddress else { return true }  // both empty
                    return memcmp(p, q, x.count) == 0
                }
            }
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(der.count)
            der.withUnsafeBufferPointer { hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: $0.suffix(32)))) }
        }
    }

    private let entries: BoundedCache<Key, Entry>

    /// A capacity of zero keeps nothing.
    public init(capacity: Int = CertificateCache.defaultCapacity) {
        entries = BoundedCache(capacity: capacity)
    }

    /// Our parse of `der` (`CertificateSummary(der:)`).
    public func summary(_ der: [UInt8]) throws -> CertificateSummary {
        if let kept = entries.value(Key(der: der))?.summary { return kept }
        let parsed = try CertificateSummary(der: der)
        keep(der) { $0.summary = parsed }
        return parsed
    }

    /// swift-certificates' parse of `der`.
    public func certificate(_ der: [UInt8]) throws -> Certificate {
        if let kept = entries.value(Key(der: der))?.certificate { return kept }
        let parsed = try Certificate(derEncoded: der)
        keep(der) { $0.certificate = parsed }
        return parsed
    }

    /// The RSA key of `certificate`, to check signatures with.
    public func rsaVerifyingKey(_ certificate: CertificateSummary) throws -> _RSA.Signing.PublicKey {
        if let kept = entries.value(Key(der: certificate.der))?.rsaVerifying { return kept }
        let key = try _RSA.Signing.PublicKey(unsafeDERRepresentation: certificate.subjectPublicKeyInfo)
        keep(certificate.der) { $0.rsaVerifying = key }
        return key
    }

    /// The RSA key of `certificate`, to encrypt a content-encryption key to.
    public func rsaEncryptionKey(_ certificate: CertificateSummary) throws -> _RSA.Encryption.PublicKey {
        if let kept = entries.value(Key(der: certificate.der))?.rsaEncryption { return kept }
        let key = try _RSA.Encryption.PublicKey(unsafeDERRepresentation: certificate.subjectPublicKeyInfo)
        keep(certificate.der) { $0.rsaEncryption = key }
        return key
    }

    private func keep(_ der: [UInt8], _ update: (inout Entry) -> Void) {
        guard der.count <= CertificateSummary.maxSize else { return }
        entries.update(Key(der: der)) { entry in
            var e = entry ?? Entry()
            update(&e)
            entry = e
        }
    }

    public var count: Int { entries.count }
}
