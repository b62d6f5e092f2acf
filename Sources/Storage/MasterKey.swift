import Crypto
import CryptoExtras
import Foundation

/// What unlocks a store: the 32 bytes of a key file, or a passphrase that is
/// stretched with scrypt under parameters recorded in the store.
/// Neither is ever written to the data directory.
public enum MasterKeyMaterial: Sendable {
    case keyFile(SymmetricKey, origin: String)
    case passphrase([UInt8], origin: String)

    public var kind: MasterKeyKind {
        switch self {
        case .keyFile: return .keyFile
        case .passphrase: return .passphrase
        }
    }

    /// Where the material came from, for error messages ("key file /etc/hisp/master.key").
    public var origin: String {
        switch self {
        case .keyFile(_, let o), .passphrase(_, let o): return o
        }
    }

    /// The master key, stretched under `parameters` for a passphrase.
    func masterKey(_ parameters: KDFParameters?) throws -> SymmetricKey {
        switch self {
        case .keyFile(let key, _):
            return key
        case .passphrase(let bytes, _):
            guard let parameters else { throw StoreError.invalid("the store records no passphrase parameters") }
            return try parameters.derive(bytes)
        }
    }

    /// Fresh parameters for this kind of material (none for a key file).
    func newParameters() -> KDFParameters? {
        if case .passphrase = self { return KDFParameters.fresh() }
        return nil
    }
}

public enum MasterKeyKind: String, Sendable {
    case keyFile = "key-file"
    case passphrase
}

/// scrypt parameters (RFC 7914), recorded beside the ciphertexts they unlock.
public struct KDFParameters: Sendable, Codable, Equatable {
    public var algorithm: String
    public var salt: [UInt8]
    /// log2 of the CPU/memory cost N.
    public var logN: Int
    public var r: Int
    public var p: Int

    /// N = 2^17, r = 8, p = 1: 128 MiB per unlock (OWASP's scrypt minimum is
    /// N = 2^17 with r = 8).
    public static func fresh() -> KDFParameters {
        KDFParameters(algorithm: "scrypt", salt: Envelope.randomBytes(16), logN: 17, r: 8, p: 1)
    }

    /// Limits on recorded parameters, so a tampered store cannot make unlocking take forever.
    static let maxLogN = 22

    func derive(_ passphrase: [UInt8]) throws -> SymmetricKey {
        guard algorithm == "scrypt", (10...Self.maxLogN).contains(logN), (1...32).contains(r), (1...16).contains(p),
              (8...64).contains(salt.count)
        else { throw StoreError.invalid("unsupported key derivation parameters \(algorithm) N=2^\(logN) r=\(r) p=\(p)") }
        do {
            let memory = 128 * r * (1 << logN) * p + (1 << 20)
            return try KDF.Scrypt.deriveKey(
                from: passphrase, salt: salt, outputByteCount: 32, rounds: 1 << logN, blockSize: r,
                parallelism: p, maxMemory: memory * 2)
        } catch {
            throw StoreError.invalid("scrypt failed: \(error)")
        }
    }

    func encoded() -> String {
        "\(algorithm):\(logN):\(r):\(p):\(Data(salt).base64EncodedString())"
    }

    static func decode(_ text: String) throws -> KDFParameters {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 5, let logN = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              let salt = Data(base64Encoded: String(parts[4]))
        else { throw StoreError.invalid("unreadable key derivation parameters") }
        return KDFParameters(algorithm: String(parts[0]), salt: Array(salt), logN: logN, r: r, p: p)
    }
}
