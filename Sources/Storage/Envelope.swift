import Crypto
import DirectCore
import Foundation

/// AES-256-GCM envelope encryption. Every ciphertext is
/// `version(1) || nonce(12) || ciphertext || tag(16)` and is bound by its
/// associated data to the table, row and column (or purpose) it belongs to, so
/// a ciphertext copied to another row or column fails to open.
public enum Envelope {
    static let version: UInt8 = 1
    static let overhead = 1 + 12 + 16

    /// Associated data naming where a ciphertext belongs.
    public static func context(_ parts: String...) -> [UInt8] {
        Array(("hisp/v1|" + parts.joined(separator: "|")).utf8)
    }

    public static func seal(_ plaintext: some DataProtocol, key: SymmetricKey, context: [UInt8]) throws -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: SecureRandom.bytes(12)), authenticating: context)
            // With a 12-byte nonce the box holds nonce || ciphertext || tag in one buffer: one copy.
            guard let combined = box.combined else { throw StoreError.database("AES-GCM seal gave no combined form") }
            var out = [UInt8]()
            out.reserveCapacity(combined.count + 1)
            out.append(version)
            combined.withUnsafeBytes { out.append(contentsOf: $0) }
            return out
        } catch {
            throw StoreError.database("AES-GCM seal failed: \(error)")
        }
    }

    /// Opens a ciphertext; `what` names it in the integrity error.
    public static func open(_ sealed: [UInt8], key: SymmetricKey, context: [UInt8], what: @autoclosure () -> String) throws -> [UInt8] {
        guard sealed.count >= overhead, sealed[0] == version else {
            throw StoreError.integrity("\(what()): not a sealed value (too short or unknown version)")
        }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: sealed[1..<13]),
                ciphertext: sealed[13..<(sealed.count - 16)],
                tag: sealed[(sealed.count - 16)...])
            return Array(try AES.GCM.open(box, using: key, authenticating: context))
        } catch {
            throw StoreError.integrity("\(what()): the ciphertext does not authenticate (altered, or moved from elsewhere)")
        }
    }

    public static func wrap(_ key: SymmetricKey, under kek: SymmetricKey, context: [UInt8]) throws -> [UInt8] {
        try key.withUnsafeBytes { try seal(Array($0), key: kek, context: context) }
    }

    public static func unwrap(_ wrapped: [UInt8], under kek: SymmetricKey, context: [UInt8], what: @autoclosure () -> String) throws -> SymmetricKey {
        let raw = try open(wrapped, key: kek, context: context, what: what())
        guard raw.count == 32 else { throw StoreError.integrity("\(what()): wrapped key has \(raw.count) bytes, not 32") }
        return SymmetricKey(data: raw)
    }

    public static func randomBytes(_ count: Int) -> [UInt8] { SecureRandom.bytes(count) }

    /// A fresh 256-bit data key (the random bytes it came from are zeroed).
    public static func newKey() -> SymmetricKey {
        var raw = SecureRandom.bytes(32)
        defer { raw.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        return SymmetricKey(data: raw)
    }

    /// A fresh row identifier: 128 random bits as 32 hex digits.
    public static func newID() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for b in randomBytes(16) {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Keyed blind index: HMAC-SHA-256 of the normalised value under the store's
/// index key, so a column can be searched for equality without holding the value.
/// The format is fixed: stores written by earlier versions are searched with it.
struct BlindIndex: Sendable {
    /// The HMAC state after the key's inner and outer pads: each index starts
    /// from a copy instead of deriving the pads again (a gateway computes a
    /// dozen indexes per message).
    private let keyed: HMAC<SHA256>
    /// The index key itself, which key rotation wraps anew.
    let key: SymmetricKey

    init(key: SymmetricKey) {
        self.key = key
        keyed = HMAC<SHA256>(key: key)
    }

    func callAsFunction(_ purpose: String, _ value: String) -> [UInt8] {
        var h = keyed
        h.update(data: Array(purpose.utf8))
        h.update(data: [0])
        h.update(data: Array(value.lowercased().utf8))
        return Array(h.finalize())
    }
}
