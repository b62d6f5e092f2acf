import Crypto
import CryptoExtras
import Foundation

/// Mailbox passwords (for submission and, later, POP3/IMAP and web mail),
/// stored as `scrypt$logN$r$p$salt$hash` and themselves sealed in the store.
public enum PasswordHash {
    public static let minimumLength = 10
    public static let maximumLength = 1024

    public static func make(_ password: String) throws -> String {
        guard password.count >= minimumLength, password.utf8.count <= maximumLength else {
            throw StoreError.invalid("a mailbox password needs \(minimumLength) to \(maximumLength) characters")
        }
        let p = KDFParameters(algorithm: "scrypt", salt: Envelope.randomBytes(16), logN: 15, r: 8, p: 1)
        let hash = try p.derive(Array(password.utf8))
        let b64 = hash.withUnsafeBytes { Data($0).base64EncodedString() }
        return "scrypt$\(p.logN)$\(p.r)$\(p.p)$\(Data(p.salt).base64EncodedString())$\(b64)"
    }

    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              let salt = Data(base64Encoded: parts[4]), let expected = Data(base64Encoded: parts[5]),
              password.utf8.count <= maximumLength
        else { return false }
        let params = KDFParameters(algorithm: "scrypt", salt: Array(salt), logN: logN, r: r, p: p)
        guard let key = try? params.derive(Array(password.utf8)) else { return false }
        // Compared in constant time.
        return key.withUnsafeBytes { Array($0) }.constantTimeEquals(Array(expected))
    }
}

extension Array where Element == UInt8 {
    func constantTimeEquals(_ other: [UInt8]) -> Bool {
        guard count == other.count else { return false }
        var diff: UInt8 = 0
        for i in indices { diff |= self[i] ^ other[i] }
        return diff == 0
    }
}
