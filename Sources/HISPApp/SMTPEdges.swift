import DirectCore
import MailService
import SMTPCore

/// SMTP submission (RFC 6409): a thin adapter over the mail service. MAIL,
/// RCPT and the end of DATA are the steps of one transaction; the mail
/// service decides, this words the reply.
struct SubmissionEdge: SMTPServerDelegate {
    let mail: MailService

    func authenticate(user: String, password: String, session: SMTPSessionInfo) async -> Bool {
        await mail.authenticator.authenticate(user: user, password: password, edge: "submission", client: session.remoteAddress,
                                              session: session.id).address != nil
    }

    // Only set after AUTH, and MAIL needs AUTH on this port; the user is checked at RCPT and DATA.
    func checkSender(_ path: String, session: SMTPSessionInfo) async -> SMTPReply? { nil }

    func checkRecipient(_ path: String, mailFrom: String, user: String?, session: SMTPSessionInfo) async -> SMTPReply? {
        guard let user = user.flatMap(DirectAddress.init) else {
            return SMTPReply(553, "5.7.1", "you may send only as your own address")
        }
        if let refusal = mail.checkSender(mailFrom, user: user) { return refusal.userReply }
        return await mail.checkRecipient(path, sender: user)?.userReply
    }

    func deliver(_ envelope: SMTPEnvelope, message: [UInt8], session: SMTPSessionInfo) async -> SMTPReply {
        guard let user = envelope.user.flatMap(DirectAddress.init) else {
            return SMTPReply(553, "5.7.1", "you may send only as your own address")
        }
        let submission = Submission(user: user, envelopeFrom: envelope.mailFrom, recipients: envelope.recipients, message: message,
                                    via: envelope.tls ? "TLS" : "plain")
        switch await mail.submit(submission) {
        case .queued(_, let id, _): return SMTPReply(250, "2.0.0", "queued as \(id)")
        case .refused(let refusal): return refusal.userReply
        }
    }
}

/// The MX: other HISPs deliver Direct messages for our mailboxes; a thin adapter over the mail service.
struct InboundEdge: SMTPServerDelegate {
    let mail: MailService

    func authenticate(user: String, password: String, session: SMTPSessionInfo) async -> Bool { false }

    func checkSender(_ path: String, session: SMTPSessionInfo) async -> SMTPReply? { nil }

    func checkRecipient(_ path: String, mailFrom: String, user: String?, session: SMTPSessionInfo) async -> SMTPReply? {
        await mail.checkInboundRecipient(path)?.reply
    }

    func deliver(_ envelope: SMTPEnvelope, message: [UInt8], session: SMTPSessionInfo) async -> SMTPReply {
        let inbound = InboundMessage(mailFrom: envelope.mailFrom, recipients: envelope.recipients.compactMap(DirectAddress.init), message: message,
                                     from: "session \(session.id) from \(session.remoteAddress)")
        switch await mail.accept(inbound) {
        case .accepted: return SMTPReply(250, "2.0.0", "delivered")
        case .refused(let refusal): return refusal.reply
        }
    }
}

extension Refusal {
    /// The reply to a user's mail client: what to do about it.
    var userReply: SMTPReply { SMTPReply(code, enhanced, text) }

    /// The reply to a peer HISP: a security or format refusal names its check (RFC 3463 5.7.x); the others say what to do.
    var reply: SMTPReply {
        switch check {
        case .format, .notEncrypted, .decryption, .signature, .trust, .senderBinding, .noKey:
            return SMTPReply(code, enhanced, description)
        default:
            return SMTPReply(code, enhanced, text)
        }
    }
}
