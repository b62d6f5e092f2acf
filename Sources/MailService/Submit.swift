import Delivery
import DirectCore
import Foundation
import InternetMessage
import Storage

/// A message an authenticated user hands over for sending.
public struct Submission: Sendable {
    /// Who signed in.
    public var user: DirectAddress
    /// The envelope sender when the edge has one (SMTP MAIL FROM); nil: the user.
    public var envelopeFrom: String?
    public var recipients: [String]
    /// The message as written (RFC 5322).
    public var message: [UInt8]
    /// Which edge it came by, and over what ("submission over TLS"), for the trace.
    public var via: String

    public init(user: DirectAddress, envelopeFrom: String? = nil, recipients: [String], message: [UInt8], via: String) {
        self.user = user
        self.envelopeFrom = envelopeFrom
        self.recipients = recipients
        self.message = message
        self.via = via
    }
}

/// What became of a submission.
public enum SubmitResult: Sendable, Equatable {
    /// Durable in the queue. `refused` names the recipients that were not queued, each with why.
    case queued(messageID: String, queueID: String, refused: [RecipientRefusal])
    /// Nothing was queued.
    case refused(Refusal)
}

public struct RecipientRefusal: Sendable, Equatable {
    public let recipient: String
    public let refusal: Refusal
}

extension MailService {
    /// Whether the signed-in `user` may send as `sender` (RFC 6409 6.1: only as an address they own).
    public func checkSender(_ sender: String, user: DirectAddress) -> Refusal? {
        guard sender.lowercased() == user.description.lowercased(), DirectAddress(sender) != nil else {
            return Refusal(.sender, code: 553, enhanced: "5.7.1", "you may send only as \(user)")
        }
        return nil
    }

    /// Whether a recipient can be sent to by `sender`: a Direct address, and (when configured) one with a trusted certificate now.
    public func checkRecipient(_ recipient: String, sender: DirectAddress) async -> Refusal? {
        guard let address = DirectAddress(recipient) else {
            return Refusal(.recipient, code: 553, enhanced: "5.1.3", "\(recipient) is not a Direct address")
        }
        if configuration.rejectUntrustedAtRCPT {
            let found = await queue.certificates.certificates(for: address, localDomain: sender.domain)
            if found.chosen.isEmpty {
                return Refusal(.trust, code: 550, enhanced: "5.7.1", "no trusted certificate for \(address): \(found.reason)")
            }
        }
        return nil
    }

    /// Applies the Direct rules to what a user sends, once for every edge:
    /// the sender owns the From address, a Message-ID and Date are added when
    /// missing (RFC 6409 8.1, 8.3), discovery and trust per recipient, wrap,
    /// sign and encrypt (now, or by the preparer when discovery is slow), the
    /// durable queue, and a copy as written in the sender's Sent folder, in
    /// the same transaction. Acknowledged only once durable (RFC 5321 4.2.5).
    public func submit(_ s: Submission) async -> SubmitResult {
        if let envelopeFrom = s.envelopeFrom, let refusal = checkSender(envelopeFrom, user: s.user) { return .refused(refusal) }
        let entity: MIMEEntity
        do {
            entity = try MIMEEntity(parsing: s.message)
        } catch {
            return .refused(Refusal(.format, code: 554, enhanced: "5.6.0", "the message is not RFC 5322: \(error)"))
        }
        // RFC 5322 3.6: one From (and To, Subject, ...); the checks below and the reader must see the same one.
        if let name = entity.headers.repeatedSingleOccurrenceField {
            return .refused(Refusal(.format, code: 554, enhanced: "5.6.0", "the message has more than one \(name) header field (RFC 5322 3.6)"))
        }
        // The header From is what the recipient sees and what the signature binds (Direct AS 1.2 4.0).
        guard let from = entity.headers["From"].flatMap(AddressList.single), from.lowercased() == s.user.description.lowercased() else {
            return .refused(Refusal(.sender, code: 553, enhanced: "5.7.1", "the From header must be \(s.user)"))
        }
        var recipients: [String] = []
        var refused: [RecipientRefusal] = []
        for r in s.recipients {
            if let refusal = await checkRecipient(r, sender: s.user) {
                refused.append(RecipientRefusal(recipient: r, refusal: refusal))
            } else if !recipients.contains(where: { $0.lowercased() == r.lowercased() }) {
                recipients.append(r)
            }
        }
        guard !recipients.isEmpty else {
            return .refused(refused.first?.refusal ?? Refusal(.recipient, code: 554, enhanced: "5.5.1", "no valid recipients"))
        }
        var bytes = s.message
        var messageID = entity.headers["Message-ID"]?.trimmingWhitespace() ?? ""
        var added = ""
        if messageID.isEmpty {
            messageID = Notices.messageID(domain: s.user.domain)
            added += "Message-ID: \(messageID)\r\n"
        }
        if entity.headers["Date"] == nil { added += "Date: \(Notifications.rfc5322Date(queue.now()))\r\n" }
        if !added.isEmpty { bytes = Array(added.utf8) + bytes }
        let draft = await queue.prepareAtOnce(OutboundDraft(
            kind: .message, sender: s.user.description, recipients: recipients, message: bytes, messageID: messageID,
            wantsDispatched: Notifications.requestsFinalDestinationDelivery(entity.headers)))
        let sent = LocalDelivery(mailbox: s.user, bytes: bytes, metadata: MessageMetadata(headers: entity.headers, messageID: messageID))
        do {
            let id = try await store.enqueue(draft, trace: "submitted by \(s.user) over \(s.via)", sentCopy: sent, now: queue.now())
            queue.queued(draft)
            return .queued(messageID: messageID, queueID: id, refused: refused)
        } catch {
            logger.error("queueing failed", metadata: ["error": .string("\(error)")])
            // RFC 5321 4.2.5: nothing is acknowledged that is not durable.
            return .refused(Refusal(.storage, code: 451, enhanced: "4.3.0", "cannot queue the message now; try again later"))
        }
    }

}

extension MessageMetadata {
    /// The header facts kept beside a stored message (RFC 5322 3.6): From, To and Cc, Subject (RFC 2047 decoded).
    public init(headers h: HeaderFields, messageID: String) {
        func decoded(_ name: String) -> String { (h.all(name).first?.decodedValue ?? "").trimmingWhitespace() }
        let recipients = (h.all("To") + h.all("Cc")).flatMap { $0.decodedValue.split(separator: ",") }
            .map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        self.init(sender: decoded("From"), recipients: recipients, subject: decoded("Subject"), messageID: messageID)
    }
}
