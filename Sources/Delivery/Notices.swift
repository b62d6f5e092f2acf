import Crypto
import DirectCore
import Foundation
import InternetMessage
import Storage

/// The notifications a gateway writes: MDNs it sends, DSNs it files.
public struct Notices: Sendable {
    public let hostname: String

    public init(hostname: String) { self.hostname = hostname }

    /// `<random@domain>`: unique per message (ETT compares three).
    public static func messageID(domain: String) -> String { "<\(Envelope.newID())@\(domain)>" }

    static let dsnSubject = "Undeliverable: your Direct message"

    /// A processed / dispatched / failed MDN from `recipient` back to the sender of `original`.
    public func mdn(_ disposition: MDNDisposition, recipient: DirectAddress, to sender: DirectAddress, original: MIMEEntity,
             finalDestination: Bool, failure: String? = nil) -> OutboundDraft {
        let originalID = original.headers["Message-ID"]?.trimmingWhitespace() ?? ""
        let id = Self.messageID(domain: recipient.domain)
        let subject = original.headers.all("Subject").first?.decodedValue.trimmingWhitespace() ?? ""
        let bytes = Notifications.mdnMessage(
            MDN(reportingUA: "\(hostname); DirectHISP", originalRecipient: recipient.description, finalRecipient: recipient.description,
                originalMessageID: originalID, disposition: disposition, failure: failure, finalDestinationDelivery: finalDestination),
            from: recipient.description, to: sender.description,
            subject: "\(disposition.rawValue.capitalized): \(subject)".trimmingWhitespace(), messageID: id, date: Date())
        return OutboundDraft(kind: .notification, sender: recipient.description, recipients: [sender.description], message: bytes, messageID: id)
    }

    /// A failure DSN for the local sender of a message (RFC 3464), filed in their mailbox.
    public func dsn(to sender: DirectAddress, messageID: String, failures: [(recipient: String, status: String, diagnostic: String)],
             originalHeaders: [UInt8]?) -> LocalDelivery {
        let id = Self.messageID(domain: sender.domain)
        let list = failures.map { "  \($0.recipient): \($0.diagnostic)" }.joined(separator: "\r\n")
        let explanation = "Your message \(messageID) could not be delivered to:\r\n\(list)\r\n"
        let bytes = Notifications.dsnMessage(
            DSN(reportingMTA: hostname, originalMessageID: messageID,
                recipients: failures.map { DSNRecipient(finalRecipient: $0.recipient, status: $0.status, diagnostic: $0.diagnostic) }),
            from: "postmaster@\(sender.domain)", to: sender.description, subject: Self.dsnSubject,
            messageID: id, date: Date(), explanation: explanation, originalHeaders: originalHeaders)
        return LocalDelivery(mailbox: sender, bytes: bytes, metadata: MessageMetadata(
            sender: "postmaster@\(sender.domain)", recipients: [sender.description], subject: Self.dsnSubject, messageID: id))
    }

    /// The header block of a message, for the DSN's text/rfc822-headers part.
    public static func headers(_ message: [UInt8]) -> [UInt8]? {
        guard let e = try? MIMEEntity(parsing: message) else { return nil }
        return Array(e.headerBytes)
    }
}
