/// The check that stopped a message, by a stable name (logs, traces, SMTP
/// replies, the API). Every edge words its own reply from it; nothing parses
/// the name back out of a text.
public enum MailCheck: String, Sendable, CaseIterable {
    /// Not an RFC 5322 / MIME message, or a field that may occur once occurs twice (RFC 5322 3.6).
    case format
    /// Direct AS 1.2 5.1: every Direct message is encrypted.
    case notEncrypted = "not-encrypted"
    /// No local key opens it.
    case decryption
    /// The signature does not verify over the content.
    case signature
    /// The signer (or a recipient's certificate) does not chain to an anchor of the local domain.
    case trust
    /// The signer is not bound to the From address (Direct AS 1.2 4.0).
    case senderBinding = "sender-binding"
    /// No key to sign with for the sender or its domain.
    case noKey = "no-key"
    /// The authenticated user does not own the sender address (RFC 6409 6.1).
    case sender
    /// The recipient is not an address, or has no mailbox here.
    case recipient
    /// The recipient's domain is not hosted here (no relaying).
    case relay
    /// The message is over a limit.
    case size
    /// The store could not make it durable now (temporary).
    case storage
    /// The next hop refused it or could not be reached.
    case delivery
    /// No notification came in time (Implementation Guide for Delivery Notification in Direct 1.0).
    case notification
}

/// Why a message (or one recipient of it) was refused: the check, the SMTP
/// reply code (RFC 5321 4.2), the enhanced status code (RFC 3463) and a text
/// that is safe to show a user or a peer (control bytes escaped, bounded).
public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
    public static let maxTextBytes = 400
    public let check: MailCheck
    public let code: Int
    public let enhanced: String
    public let text: String

    public init(_ check: MailCheck, code: Int, enhanced: String, _ text: String) {
        self.check = check
        self.code = code
        self.enhanced = enhanced
        let safe = SafeText.escape(text)
        self.text = safe.utf8.count <= Self.maxTextBytes ? safe : String(decoding: safe.utf8.prefix(Self.maxTextBytes), as: UTF8.self)
    }

    /// A 4xx refusal: the same message may succeed later.
    public var isTemporary: Bool { code / 100 == 4 }

    public var description: String { "\(check.rawValue) failed: \(text)" }

    /// A security or trust refusal of a received message (RFC 3463 5.7.x; a malformed one 5.6.0).
    public static func security(_ check: MailCheck, _ text: String) -> Refusal {
        switch check {
        case .format: return Refusal(check, code: 554, enhanced: "5.6.0", text)
        case .trust: return Refusal(check, code: 554, enhanced: "5.7.1", text)
        default: return Refusal(check, code: 554, enhanced: "5.7.5", text)
        }
    }

    /// The store failed; try again later (RFC 5321 4.2.5: nothing unacknowledged is lost).
    public static func storage(_ text: String) -> Refusal { Refusal(.storage, code: 451, enhanced: "4.3.0", text) }
}
