import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import Testing
@testable import OpenSSLKeys

/// The "openssl" key provider against the built-in one, with keys made here
/// (the system's OpenSSL 3, which the README's test command installs).
@Suite struct OpenSSLKeysTests {
    let provider: OpenSSLKeyProvider

    init() throws {
        provider = try OpenSSLKeyProvider.load().get()
    }

    @Test func rsaSignaturesAreByteForByteTheBuiltinProvidersForEveryDigestAndKeySize() throws {
        let message = Array("Referral for Jane Roe".utf8)
        for bits in [_RSA.Signing.KeySize.bits2048, .bits3072] {
            let builtin = try LocalPrivateKey(rsa: try _RSA.Signing.PrivateKey(keySize: bits))
            let ours = try provider.handle(pkcs8: builtin.pkcs8DER)
            #expect(ours.provider == "openssl" && ours.publicKeySPKI == builtin.publicKeySPKI)
            #expect(ours.keyDescription == builtin.keyDescription)
            for digest in [DigestAlgorithm.sha256, .sha384, .sha512] {
                // RFC 8017 8.2: PKCS#1 v1.5 signatures are deterministic, so the bytes must agree.
                #expect(try ours.sign(message, digest: digest) == builtin.sign(message, digest: digest), "\(bits) \(digest)")
                #expect(ours.signatureAlgorithm(digest: digest) == builtin.signatureAlgorithm(digest: digest))
            }
        }
    }

    @Test func ecdsaSignaturesVerifyWithSwiftCrypto() throws {
        let message = Array("Referral for Jane Roe".utf8)
        let p256 = P256.Signing.PrivateKey(), p384 = P384.Signing.PrivateKey()
        let a = try provider.handle(pkcs8: LocalPrivateKey(p256: p256).pkcs8DER)
        let b = try provider.handle(pkcs8: LocalPrivateKey(p384: p384).pkcs8DER)
        #expect(a.keyDescription == "EC P-256" && b.keyDescription == "EC P-384")
        let s256 = try P256.Signing.ECDSASignature(derRepresentation: a.sign(message, digest: .sha256))
        #expect(p256.publicKey.isValidSignature(s256, for: SHA256.hash(data: message)))
        let s384 = try P384.Signing.ECDSASignature(derRepresentation: b.sign(message, digest: .sha384))
        #expect(p384.publicKey.isValidSignature(s384, for: SHA384.hash(data: message)))
        #expect(throws: CMSError.self) { try a.decryptContentKey([1, 2, 3], transport: .rsaOAEPSHA256, expectedLength: 32) }
    }

    @Test func contentKeysSentEachWayAreRecoveredAndABadOneIsNot() throws {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let ours = try provider.handle(pkcs8: LocalPrivateKey(rsa: rsa).pkcs8DER)
        let recipient = try _RSA.Encryption.PublicKey(unsafeDERRepresentation: rsa.publicKey.derRepresentation)
        let cek = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let oaep256 = try recipient.encrypt(cek, padding: .PKCS1_OAEP_SHA256)
        #expect(try ours.decryptContentKey(ArraySlice(oaep256), transport: .rsaOAEPSHA256, expectedLength: 32) == cek)
        let oaep1 = try recipient.encrypt(cek, padding: .PKCS1_OAEP)
        #expect(try ours.decryptContentKey(ArraySlice(oaep1), transport: .rsaOAEPSHA1, expectedLength: 32) == cek)
        let v15 = try recipient.encrypt(cek, padding: ._WEAK_AND_INSECURE_PKCS_V1_5)
        #expect(try ours.decryptContentKey(ArraySlice(v15), transport: .rsaPKCS1v15, expectedLength: 32) == cek)
        // RFC 3218 2.3: a v1.5 key of the wrong length is not told apart: a random key of the expected length.
        let short = try recipient.encrypt(Array(cek.prefix(16)), padding: ._WEAK_AND_INSECURE_PKCS_V1_5)
        let random = try ours.decryptContentKey(ArraySlice(short), transport: .rsaPKCS1v15, expectedLength: 32)
        #expect(random.count == 32 && random != cek)
        // OAEP sent with SHA-1 does not open as SHA-256: a named failure.
        #expect(throws: CMSError.self) { try ours.decryptContentKey(ArraySlice(oaep1), transport: .rsaOAEPSHA256, expectedLength: 32) }
    }

    @Test func autoChoosesOpenSSLHereAfterItsKnownAnswerTestAndBuiltinIsAlwaysThere() throws {
        let (auto, note) = try KeyProviderChoice.auto.make().get()
        #expect(auto.name == "openssl", "\(note)")
        #expect(note.contains("known-answer test passed") && note.contains("OpenSSL 3"), "\(note)")
        let (builtin, _) = try KeyProviderChoice.builtin.make().get()
        #expect(builtin.name == "builtin")
        #expect(throws: CMSError.self) { try provider.handle(pkcs8: [0x30, 0x03, 0x02, 0x01, 0x00]) }
    }
}
