import CryptographicMessageSyntax
import Crypto
import CryptoExtras
import DirectCore
#if canImport(Glibc)
import Glibc
#endif

/// The "openssl" key provider (docs/keys.md): private-key operations by the
/// system's OpenSSL 3 libcrypto, loaded at run time (`dlopen`), so that a
/// machine without it still builds and runs `hisp` with the built-in provider.
/// On CPUs with AVX-512 IFMA, OpenSSL's RSA is about twice swift-crypto's.
///
/// Keys come from the store as PKCS#8 DER, are parsed into OpenSSL's own key
/// object for the life of the handle (OpenSSL clears them when freed), and our
/// copy of the DER is zeroed once parsed.
public final class OpenSSLKeyProvider: KeyProvider, @unchecked Sendable {
    public var name: String { "openssl" }
    /// OpenSSL's version text, as `openssl version` prints it.
    public let version: String
    let api: LibCrypto

    /// Loads libcrypto.so.3; nil with the reason when it is missing or too old.
    public static func load() -> Result<OpenSSLKeyProvider, KeyProviderError> {
        LibCrypto.load().map { OpenSSLKeyProvider(api: $0) }
    }

    init(api: LibCrypto) {
        self.api = api
        version = api.versionText()
    }

    public func handle(pkcs8 der: [UInt8]) throws -> any PrivateKeyHandle {
        try OpenSSLPrivateKey(der: der, api: api)
    }
}

public struct KeyProviderError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One key held by OpenSSL.
final class OpenSSLPrivateKey: PrivateKeyHandle, @unchecked Sendable {
    // EVP_PKEY is safe to share between threads for signing and decrypting, each
    // operation with a context of its own (OpenSSL 3 threading guide).
    let key: OpaquePointer
    let api: LibCrypto
    let algorithm: PrivateKeyAlgorithm
    let publicKeySPKI: [UInt8]
    var provider: String { "openssl" }

    init(der: [UInt8], api: LibCrypto) throws {
        // Read with swift-crypto first: it names the algorithm and gives the public key,
        // and refuses what the built-in provider would refuse.
        let local = try LocalPrivateKey(der: der)
        publicKeySPKI = local.publicKeySPKI
        algorithm = local.algorithm
        var copy = der
        defer { for i in copy.indices { copy[i] = 0 } }
        guard let parsed = copy.withUnsafeBufferPointer({ buffer -> OpaquePointer? in
            var p: UnsafePointer<UInt8>? = buffer.baseAddress
            return api.d2i_AutoPrivateKey(nil, &p, buffer.count)
        }) else {
            api.ERR_clear_error()
            throw CMSError.invalidKey("OpenSSL could not read the private key")
        }
        key = parsed
        self.api = api
    }

    deinit { api.EVP_PKEY_free(key) }

    var keyDescription: String { algorithm.description }

    func signatureAlgorithm(digest: DigestAlgorithm) -> AlgorithmIdentifier { algorithm.signatureAlgorithm(digest: digest) }

    func sign(_ data: [UInt8], digest: DigestAlgorithm) throws -> [UInt8] {
        let (hash, md): ([UInt8], OpaquePointer?)
        switch digest {
        case .sha256: (hash, md) = (Array(SHA256.hash(data: data)), api.EVP_sha256())
        case .sha384: (hash, md) = (Array(SHA384.hash(data: data)), api.EVP_sha384())
        case .sha512: (hash, md) = (Array(SHA512.hash(data: data)), api.EVP_sha512())
        }
        return try operate("signing", init: api.EVP_PKEY_sign_init, run: api.EVP_PKEY_sign, input: hash) { ctx in
            guard case .rsa = algorithm else { return true }
            // RFC 8017 8.2: RSASSA-PKCS1-v1_5, the digest named in its DigestInfo.
            return api.EVP_PKEY_CTX_set_rsa_padding(ctx, LibCrypto.RSA_PKCS1_PADDING) > 0 && api.EVP_PKEY_CTX_set_signature_md(ctx, md) > 0
        }
    }

    func decryptContentKey(_ encryptedKey: ArraySlice<UInt8>, transport: KeyTransport, expectedLength: Int) throws -> [UInt8] {
        guard case .rsa = algorithm else { throw CMSError.unsupportedRecipientType("our key is EC; key agreement (kari) is not supported") }
        let input = Array(encryptedKey)
        switch transport {
        case .rsaPKCS1v15:
            // RFC 3218 2.3 / RFC 5652 14 (Bleichenbacher): a padding failure is not told apart
            // from a wrong key; a failed or wrong-size decryption yields a random key.
            let fallback = SecureRandom.bytes(expectedLength)
            guard let plain = try? operate("decryption", init: api.EVP_PKEY_decrypt_init, run: api.EVP_PKEY_decrypt, input: input, configure: { ctx in
                api.EVP_PKEY_CTX_set_rsa_padding(ctx, LibCrypto.RSA_PKCS1_PADDING) > 0
            }), plain.count == expectedLength else { return fallback }
            return plain
        case .rsaOAEPSHA256, .rsaOAEPSHA1:
            let md = transport == .rsaOAEPSHA256 ? api.EVP_sha256() : api.EVP_sha1()
            do {
                // RFC 8017 7.1: OAEP with the hash and MGF1 hash the AlgorithmIdentifier named.
                return try operate("decryption", init: api.EVP_PKEY_decrypt_init, run: api.EVP_PKEY_decrypt, input: input) { ctx in
                    api.EVP_PKEY_CTX_set_rsa_padding(ctx, LibCrypto.RSA_PKCS1_OAEP_PADDING) > 0
                        && api.EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) > 0 && api.EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0
                }
            } catch {
                throw CMSError.keyDecryptionFailed("RSAES-OAEP decryption with our key failed")
            }
        }
    }

    /// One EVP_PKEY operation with a context of its own: init, configure, ask the size, run.
    private func operate(
        _ what: String, init start: LibCrypto.CtxFn, run: LibCrypto.OperateFn, input: [UInt8], configure: (OpaquePointer) -> Bool
    ) throws -> [UInt8] {
        guard let ctx = api.EVP_PKEY_CTX_new(key, nil) else { throw failure(what) }
        defer { api.EVP_PKEY_CTX_free(ctx) }
        guard start(ctx) > 0, configure(ctx) else { throw failure(what) }
        var length = 0
        guard input.withUnsafeBufferPointer({ run(ctx, nil, &length, $0.baseAddress, $0.count) }) > 0, length > 0, length <= 16_384 else {
            throw failure(what)
        }
        var out = [UInt8](repeating: 0, count: length)
        let ok = out.withUnsafeMutableBufferPointer { o in input.withUnsafeBufferPointer { run(ctx, o.baseAddress, &length, $0.baseAddress, $0.count) } }
        guard ok > 0 else { throw failure(what) }
        return Array(out.prefix(length))
    }

    private func failure(_ what: String) -> CMSError {
        // The thread's error queue is emptied so that it neither grows nor explains a later failure.
        api.ERR_clear_error()
        return CMSError.invalidKey("OpenSSL \(what) with the \(keyDescription) key failed")
    }
}

/// `crypto.provider` (docs/keys.md): which provider performs private-key operations.
public enum KeyProviderChoice: String, Sendable, CaseIterable {
    /// OpenSSL when it loads and passes its known-answer test at start-up, else builtin.
    case auto
    case builtin
    case openssl

    /// The provider, and a line for the log saying which and why.
    public func make() -> Result<(provider: any KeyProvider, note: String), KeyProviderError> {
        switch self {
        case .builtin:
            return .success((BuiltinKeyProvider(), "private keys: builtin (swift-crypto), as configured"))
        case .openssl, .auto:
            switch OpenSSLKeyProvider.load().flatMap({ p in p.selfTest().map { p } }) {
            case .success(let p):
                return .success((p, "private keys: openssl (\(p.version)), known-answer test passed"))
            case .failure(let e) where self == .auto:
                return .success((BuiltinKeyProvider(), "private keys: builtin (swift-crypto); OpenSSL is not used: \(e.description)"))
            case .failure(let e):
                return .failure(e)
            }
        }
    }
}

extension OpenSSLKeyProvider {
    /// Known answers before the provider is trusted with real keys: with keys made here,
    /// RSA PKCS#1 v1.5 signatures byte for byte the built-in provider's (the scheme is
    /// deterministic), an OAEP-SHA-256 key transport swift-crypto encrypted, and a P-256
    /// signature swift-crypto verifies.
    public func selfTest() -> Result<Void, KeyProviderError> {
        do {
            let message = Array("DirectHISP known-answer test".utf8)
            let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let builtin = try LocalPrivateKey(rsa: rsa)
            let ours = try handle(pkcs8: builtin.pkcs8DER)
            for digest in [DigestAlgorithm.sha256, .sha384, .sha512] {
                guard try ours.sign(message, digest: digest) == builtin.sign(message, digest: digest) else {
                    return .failure(KeyProviderError("OpenSSL's RSA signature (\(digest)) differs from swift-crypto's"))
                }
            }
            let contentKey = SecureRandom.bytes(32)
            let wrapped = try _RSA.Encryption.PublicKey(unsafeDERRepresentation: rsa.publicKey.derRepresentation)
                .encrypt(contentKey, padding: .PKCS1_OAEP_SHA256)
            guard try ours.decryptContentKey(ArraySlice(wrapped), transport: .rsaOAEPSHA256, expectedLength: 32) == contentKey else {
                return .failure(KeyProviderError("OpenSSL's RSA-OAEP decryption gave another key"))
            }
            let ec = P256.Signing.PrivateKey()
            let ecHandle = try handle(pkcs8: LocalPrivateKey(p256: ec).pkcs8DER)
            let signature = try P256.Signing.ECDSASignature(derRepresentation: ecHandle.sign(message, digest: .sha256))
            guard ec.publicKey.isValidSignature(signature, for: SHA256.hash(data: message)) else {
                return .failure(KeyProviderError("OpenSSL's ECDSA P-256 signature does not verify"))
            }
            return .success(())
        } catch {
            return .failure(KeyProviderError("OpenSSL's known-answer test failed: \(error)"))
        }
    }
}
