import Crypto
import CryptoExtras
import DirectCore
import Foundation
import Synchronization

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

/// Remembers, for a few minutes and in this process's memory only, that a
/// password was right, so that a client that opens a connection per message
/// (as many EHRs and MTAs do) does not pay a full scrypt (about 50-100 ms
/// of CPU) at every AUTH. The stored hash stays the only thing on disk.
///
/// What is kept is an HMAC, under a key made at random when the process
/// starts, of the address, the stored hash and the password: it says
/// nothing outside this process, and a changed password (a new stored hash)
/// or a removed mailbox no longer matches it. Only successes are kept, so
/// every wrong guess still costs a full scrypt, and the stored hash is read
/// at every AUTH, so the check is never answered without the store.
public final class PasswordVerifier: Sendable {
    /// How long a verified password is remembered.
    public let lifetime: TimeInterval
    private let key = SymmetricKey(size: .bits256)
    private let verified: BoundedCache<Data, Date>
    private let slowChecks = Mutex(0)

    public init(lifetime: TimeInterval = 600, capacity: Int = 1024) {
        self.lifetime = lifetime
        verified = BoundedCache(capacity: lifetime > 0 ? capacity : 0)
    }

    /// Whether `password` is right for `address`, whose stored hash is `stored`.
    public func verify(_ password: String, for address: String, against stored: String, now: Date = Date()) -> Bool {
        var mac = HMAC<SHA256>(key: key)
        for part in [address.lowercased(), stored, password] {
            // Each part with its length, so that no two different triples read the same.
            withUnsafeBytes(of: UInt64(part.utf8.count).bigEndian) { mac.update(data: $0) }
            mac.update(data: Array(part.utf8))
        }
        let tag = Data(mac.finalize())
        if let until = verified.value(tag), now < until { return true }
        slowChecks.withLock { $0 += 1 }
        guard PasswordHash.verify(password, against: stored) else { return false }
        verified.set(tag, now.addingTimeInterval(lifetime))
        return true
    }

    /// Full scrypt checks run so far (the tests count them).
    public var fullChecks: Int { slowChecks.withLock { $0 } }
}
