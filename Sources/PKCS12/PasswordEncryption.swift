import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import Foundation
import SwiftASN1

/// The PKCS#12 key-derivation function (RFC 7292 B.2): the legacy PBEs'
/// keys and IVs (ID 1 and 2) and the integrity MAC key (ID 3).
enum PKCS12KDF {
    /// The password as a BMPString with two zero bytes at the end (RFC 7292 B.1).
    static func passwordBytes(_ password: String) -> [UInt8] {
        BMPText.encode(password) + [0, 0]
    }

    static func derive<H: HashFunction>(
        _: H.Type, password: String, salt: [UInt8], id: UInt8, iterations: Int, count: Int
    ) -> [UInt8] {
        let u = H.Digest.byteCount, v = H.blockByteCount
        // Steps 1-4: D, then I = S || P, each stretched to a multiple of v bytes.
        func stretch(_ x: [UInt8]) -> [UInt8] {
            x.isEmpty ? [] : (0..<(v * ((x.count + v - 1) / v))).map { x[$0 % x.count] }
        }
        let d = [UInt8](repeating: id, count: v)
        var i = stretch(salt) + stretch(passwordBytes(password))
        var out: [UInt8] = []
        while true {
            // Step 6a: A = H^r(D || I).
            var hasher = H()
            hasher.update(data: d)
            hasher.update(data: i)
            var digest = hasher.finalize()
            for _ in 1..<max(iterations, 1) { digest = digest.withUnsafeBytes { H.hash(data: $0) } }
            let a = Array(digest)
            out += a
            if out.count >= count { return Array(out.prefix(count)) }
            // Steps 6b-6c: I_j = (I_j + B + 1) mod 2^(8v), B = A stretched to v bytes.
            let b = (0..<v).map { a[$0 % u] }
            for j in stride(from: 0, to: i.count, by: v) {
                var carry: UInt16 = 1
                for k in stride(from: v - 1, through: 0, by: -1) {
                    let sum = UInt16(i[j + k]) + UInt16(b[k]) + carry
                    i[j + k] = UInt8(truncatingIfNeeded: sum)
                    carry = sum >> 8
                }
            }
        }
    }
}

/// BMPString contents: UTF-16 big-endian (X.680 41), for passwords and friendlyName.
enum BMPText {
    static func encode(_ text: String) -> [UInt8] {
        text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        let units = stride(from: bytes.startIndex, to: bytes.endIndex - 1, by: 2).map {
            UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1])
        }
        return String(decoding: units, as: UTF16.self)
    }
}

/// The integrity MAC (RFC 7292 5.1 step 5, B.4): HMAC keyed by the PKCS#12 KDF.
enum MAC {
    enum Hash {
        case sha1, sha256, sha384, sha512

        init?(oid: ASN1ObjectIdentifier) {
            switch oid {
            case CMSOID.sha1: self = .sha1
            case CMSOID.sha256: self = .sha256
            case CMSOID.sha384: self = .sha384
            case CMSOID.sha512: self = .sha512
            default: return nil
            }
        }

        var name: String {
            switch self {
            case .sha1: return "SHA-1"
            case .sha256: return "SHA-256"
            case .sha384: return "SHA-384"
            case .sha512: return "SHA-512"
            }
        }
    }

    static func compute(_ hash: Hash, data: [UInt8], password: String, salt: [UInt8], iterations: Int) -> [UInt8] {
        func hmac<H: HashFunction>(_: H.Type) -> [UInt8] {
            let key = PKCS12KDF.derive(H.self, password: password, salt: salt, id: 3, iterations: iterations, count: H.Digest.byteCount)
            return Array(HMAC<H>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        }
        switch hash {
        case .sha1: return hmac(Insecure.SHA1.self)
        case .sha256: return hmac(SHA256.self)
        case .sha384: return hmac(SHA384.self)
        case .sha512: return hmac(SHA512.self)
        }
    }

    static func matches(_ hash: Hash, data: [UInt8], password: String, salt: [UInt8], iterations: Int, expected: [UInt8]) -> Bool {
        let actual = compute(hash, data: data, password: password, salt: salt, iterations: iterations)
        // Constant time: the MAC is the password oracle.
        guard actual.count == expected.count else { return false }
        return zip(actual, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// PBES2 (RFC 8018 6.2) with PBKDF2 (5.2), as written and read.
enum PBES2 {
    static let pbes2: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 5, 13]
    static let pbkdf2: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 5, 12]
    static let hmacWithSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 7]
    static let hmacWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 9]
    static let hmacWithSHA384: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 10]
    static let hmacWithSHA512: ASN1ObjectIdentifier = [1, 2, 840, 113549, 2, 11]

    /// AES-256-CBC under PBKDF2-HMAC-SHA256 with a fresh salt and IV.
    static func encrypt(_ plaintext: [UInt8], password: String, iterations: Int) throws -> (AlgorithmIdentifier, [UInt8]) {
        let salt = PKCS12.randomBytes(16), iv = PKCS12.randomBytes(16)
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        let ciphertext = try AES._CBC.encrypt(plaintext, using: key, iv: try AES._CBC.IV(ivBytes: iv))
        // PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }
        // PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER, keyLength INTEGER OPTIONAL, prf DEFAULT hmacWithSHA1 }
        var params = DER.Serializer()
        try params.appendConstructedNode(identifier: .sequence) { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(pbkdf2)
                try s.appendConstructedNode(identifier: .sequence) { s in
                    try s.serialize(ASN1OctetString(contentBytes: salt[...]))
                    try s.serialize(iterations)
                    try s.serialize(AlgorithmIdentifier.withNull(hmacWithSHA256))
                }
            }
            try s.serialize(AlgorithmIdentifier(CMSOID.aes256CBC, parameters: ASN1Any(erasing: ASN1OctetString(contentBytes: iv[...]))))
        }
        let algorithm = AlgorithmIdentifier(pbes2, parameters: try ASN1Any(derEncoded: params.serializedBytes))
        return (algorithm, Array(ciphertext))
    }

    static func decrypt(_ ciphertext: ArraySlice<UInt8>, parameters: ASN1Any?, password: String) throws -> ([UInt8], String) {
        guard let parameters else { throw PKCS12Error.malformed("PBES2 without parameters") }
        let (kdf, scheme) = try PKCS12.parse("PBES2-params", parameters.derBytesOrEmpty) { node in
            try BER.sequence(node, identifier: .sequence) { nodes in
                (try AlgorithmIdentifier(berEncoded: &nodes), try AlgorithmIdentifier(berEncoded: &nodes))
            }
        }
        guard kdf.algorithm == pbkdf2, let kdfParameters = kdf.parameters else {
            throw PKCS12Error.unsupported("PBES2 key derivation \(kdf.name) (only PBKDF2)")
        }
        let (salt, iterations, keyLength, prf) = try PKCS12.parse("PBKDF2-params", kdfParameters.derBytesOrEmpty) { node in
            try BER.sequence(node, identifier: .sequence) { nodes in
                let salt = Array(try ASN1OctetString(berEncoded: &nodes).bytes)  // the "otherSource" choice is reserved
                let iterations = try Int(berEncoded: &nodes)
                var keyLength: Int? = nil
                var prf = AlgorithmIdentifier(hmacWithSHA1)
                while let n = nodes.next() {
                    if n.identifier == .integer { keyLength = try Int(berEncoded: n) } else { prf = try AlgorithmIdentifier(berEncoded: n) }
                }
                return (salt, iterations, keyLength, prf)
            }
        }
        guard (1...PKCS12.maxIterations).contains(iterations) else {
            throw PKCS12Error.limitExceeded("PBKDF2 iteration count \(iterations) is outside 1...\(PKCS12.maxIterations)")
        }
        let hash: KDF.Insecure.PBKDF2.HashFunction, hashName: String
        switch prf.algorithm {
        case hmacWithSHA1: (hash, hashName) = (.insecureSHA1, "SHA-1")
        case hmacWithSHA256: (hash, hashName) = (.sha256, "SHA-256")
        case hmacWithSHA384: (hash, hashName) = (.sha384, "SHA-384")
        case hmacWithSHA512: (hash, hashName) = (.sha512, "SHA-512")
        default: throw PKCS12Error.unsupported("PBKDF2 pseudo-random function \(prf.name)")
        }
        let iv = try scheme.parameters.map { Array(try ASN1OctetString(asn1Any: $0).bytes) } ?? []
        let cipherName: String, keyBytes: Int
        switch scheme.algorithm {
        case CMSOID.aes128CBC: (cipherName, keyBytes) = ("AES-128-CBC", 16)
        case CMSOID.aes192CBC: (cipherName, keyBytes) = ("AES-192-CBC", 24)
        case CMSOID.aes256CBC: (cipherName, keyBytes) = ("AES-256-CBC", 32)
        case CMSOID.desEDE3CBC: (cipherName, keyBytes) = ("3DES-CBC", 24)
        default: throw PKCS12Error.unsupported("PBES2 encryption scheme \(scheme.name)")
        }
        if let keyLength, keyLength != keyBytes {
            throw PKCS12Error.malformed("PBKDF2 keyLength \(keyLength) does not fit \(cipherName)")
        }
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: hash, outputByteCount: keyBytes, unsafeUncheckedRounds: iterations)
        let description = "PBES2 (PBKDF2-HMAC-\(hashName), \(iterations) iterations, \(cipherName))"
        if scheme.algorithm == CMSOID.desEDE3CBC {
            let cipher = LegacyBlockCipher.tripleDES(try TripleDES(key: key.withUnsafeBytes { Array($0) }))
            return (try cipher.decryptCBC(ciphertext, iv: iv), description)
        }
        guard iv.count == 16 else { throw PKCS12Error.malformed("\(cipherName) IV of \(iv.count) bytes") }
        do {
            return (Array(try AES._CBC.decrypt(ciphertext, using: key, iv: try AES._CBC.IV(ivBytes: iv))), description)
        } catch {
            throw PKCS12Error.wrongPassword  // bad padding: without a MAC, the only sign of a wrong password
        }
    }
}

/// Dispatch on the encryption algorithm of an EncryptedData or a shrouded key bag.
enum PasswordEncryption {
    // RFC 7292 C: pkcs-12PbeIds.
    static let pbeWithSHAAnd128BitRC2CBC: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 1, 5]
    static let pbeWithSHAAnd40BitRC2CBC: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 1, 6]
    static let pbeWithSHAAnd3KeyTripleDESCBC: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 1, 3]

    static func decrypt(_ ciphertext: ArraySlice<UInt8>, algorithm: AlgorithmIdentifier, password: String) throws -> ([UInt8], String) {
        if algorithm.algorithm == PBES2.pbes2 {
            return try PBES2.decrypt(ciphertext, parameters: algorithm.parameters, password: password)
        }
        let legacy: (name: String, keyBytes: Int)
        switch algorithm.algorithm {
        case pbeWithSHAAnd3KeyTripleDESCBC: legacy = ("pbeWithSHAAnd3-KeyTripleDES-CBC", 24)
        case pbeWithSHAAnd40BitRC2CBC: legacy = ("pbeWithSHAAnd40BitRC2-CBC", 5)
        case pbeWithSHAAnd128BitRC2CBC: legacy = ("pbeWithSHAAnd128BitRC2-CBC", 16)
        default: throw PKCS12Error.unsupported("encryption algorithm \(algorithm.name)")
        }
        // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER } (RFC 7292 C)
        guard let parameters = algorithm.parameters else { throw PKCS12Error.malformed("\(legacy.name) without parameters") }
        let (salt, iterations) = try PKCS12.parse("pkcs-12PbeParams", parameters.derBytesOrEmpty) { node in
            try BER.sequence(node, identifier: .sequence) { nodes in
                (Array(try ASN1OctetString(berEncoded: &nodes).bytes), try Int(berEncoded: &nodes))
            }
        }
        guard (1...PKCS12.maxIterations).contains(iterations) else {
            throw PKCS12Error.limitExceeded("\(legacy.name) iteration count \(iterations) is outside 1...\(PKCS12.maxIterations)")
        }
        let key = PKCS12KDF.derive(Insecure.SHA1.self, password: password, salt: salt, id: 1, iterations: iterations, count: legacy.keyBytes)
        let iv = PKCS12KDF.derive(Insecure.SHA1.self, password: password, salt: salt, id: 2, iterations: iterations, count: 8)
        let cipher: LegacyBlockCipher = legacy.keyBytes == 24
            ? .tripleDES(try TripleDES(key: key))
            : .rc2(try RC2(key: key, effectiveBits: legacy.keyBytes * 8))
        return (try cipher.decryptCBC(ciphertext, iv: iv), "\(legacy.name) (legacy, \(iterations) iterations)")
    }
}
