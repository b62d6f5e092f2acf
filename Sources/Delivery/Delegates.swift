import DirectCore
import Foundation
import InternetMessage
import SMTPCore
import SecurityAgent
import Storage

/// Submission (RFC 6409): authenticated users of this HISP send as themselves.
struct SubmissionDelegate: SMTPServerDelegate {
    let gateway: DirectGateway

    func authenticate(user: String, password: String, session: SMTPSessionInfo) async -> Bool {
        await gateway.authenticator.authenticate(user: user, password: password, edge: "submission", client: session.remoteAddress,
                                                 session: session.id).address != nil
    }

    func checkSender(_ path: String, session: SMTPSessionInfo) async -> SMTPReply? {
        // Only set after AUTH, and MAIL needs AUTH on this port; the user is checked at RCPT and DATA.
        nil
    }

    func checkRecipient(_ path: String, mailFrom: String, user: String?, session: SMTPSessionInfo) async -> SMTPReply? {
        // A user sends only as an address they own (RFC 6409 6.1).
        guard let user, mailFrom.lowercased() == user.lowercased(), let sender = DirectAddress(mailFrom) else {
            return SMTPReply(553, "5.7.1", "you may send only as \(user ?? "your own address")")
        }
        guard let address = DirectAddress(path) else { return SMTPReply(553, "5.1.3", "\(path) is not a Direct address") }
        if gateway.configuration.rejectUntrustedAtRCPT {
            let found = await gateway.certificates.certificates(for: address, localDomain: sender.domain)
            if found.chosen.isEmpty {
                return SMTPReply(550, "5.7.1", "no trusted certificate for \(address): \(String(found.reason.prefix(300)))")
            }
        }
        return nil
    }

    func deliver(_ envelope: SMTPEnvelope, message: [UInt8], session: SMTPSessionInfo) async -> SMTPReply {
        guard let user = envelope.user, envelope.mailFrom.lowercased() == user.lowercased() else {
            return SMTPReply(553, "5.7.1", "you may send only as your own address")
        }
        let entity: MIMEEntity
        do {
            entity = try MIMEEntity(parsing: message)
        } catch {
            return SMTPReply(554, "5.6.0", "the message is not RFC 5322: \(error)")
        }
        // RFC 5322 3.6: one From (and To, Subject, ...); the checks below and the reader must see the same one.
        if let name = entity.headers.repeatedSingleOccurrenceField {
            return SMTPReply(554, "5.6.0", "the message has more than one \(name) header field (RFC 5322 3.6)")
        }
        // The header From is what the recipient sees and what the signature binds (Direct AS 1.2 4.0).
        guard let from = entity.headers["From"].flatMap(AddressList.single), from.lowercased() == user.lowercased() else {
            return SMTPReply(553, "5.7.1", "the From header must be \(user)")
        }
        var bytes = message
        var messageID = entity.headers["Message-ID"]?.trimmingWhitespace() ?? ""
        var added = ""
        // RFC 6409 8.3 / 8.1: the submission server may add a missing Message-ID and Date.
        if messageID.isEmpty {
            messageID = Notices.messageID(domain: DirectAddress(user)?.domain ?? "localhost")
            added += "Message-ID: \(messageID)\r\n"
        }
        if entity.headers["Date"] == nil { added += "Date: \(Notifications.rfc5322Date(Date()))\r\n" }
        if !added.isEmpty { bytes = Array(added.utf8) + bytes }
        let draft = await gateway.prepareAtOnce(OutboundDraft(
            kind: .message, sender: user, recipients: envelope.recipients, message: bytes, messageID: messageID,
            wantsDispatched: Notifications.requestsFinalDestinationDelivery(entity.headers)))
        do {
            let id = try await gateway.store.enqueue(draft, trace: "submitted by \(user) over \(envelope.tls ? "TLS" : "plain")")
            gateway.queued(draft)
            return SMTPReply(250, "2.0.0", "queued as \(id)")
        } catch {
            gateway.logger.error("queueing failed", metadata: ["error": .string("\(error)")])
            // RFC 5321 4.2.5: nothing is acknowledged that is not durable.
            return SMTPReply(451, "4.3.0", "cannot queue the message now; try again later")
        }
    }
}

/// The MX: other HISPs deliver Direct messages for our mailboxes.
struct InboundDelegate: SMTPServerDelegate {
    let gateway: DirectGateway

    func authenticate(user: String, password: String, session: SMTPSessionInfo) async -> Bool { false }

    func checkSender(_ path: String, session: SMTPSessionInfo) async -> SMTPReply? { nil }

    func checkRecipient(_ path: String, mailFrom: String, user: String?, session: SMTPSessionInfo) async -> SMTPReply? {
        guard let address = DirectAddress(path) else { return SMTPReply(501, "5.1.3", "\(path) is not an address") }
        do {
            switch try await gateway.store.lookupMailbox(address) {
            case .exists: return nil
            // Never an open relay: only our own domains.
            case .notHosted: return SMTPReply(550, "5.7.1", "relaying denied: \(address.domain) is not hosted here")
            case .noMailbox: return SMTPReply(550, "5.1.1", "no such mailbox: \(address)")
            }
        } catch {
            return SMTPReply(451, "4.3.0", "temporary failure looking up the mailbox")
        }
    }

    func deliver(_ envelope: SMTPEnvelope, message: [UInt8], session: SMTPSessionInfo) async -> SMTPReply {
        let recipients = envelope.recipients.compactMap(DirectAddress.init)
        let outerID = (try? MIMEEntity(parsing: message))?.headers["Message-ID"]?.trimmingWhitespace() ?? ""
        let incoming: SecurityAgent.Incoming
        do {
            let trust = gateway.incomingTrust
            incoming = try await gateway.agent.processIncoming(message, recipients: recipients, trust: { await trust.trust(localDomain: $0) })
        } catch {
            let refusal = (error as? AgentError)?.refusal ?? Refusal.security(.format, "\(error)")
            gateway.logger.notice("inbound message refused", metadata: ["check": .string(refusal.check.rawValue), "session": .string(session.id)])
            try? await gateway.store.recordEvent("message.refused", object: "inbound", outcome: "failed",
                                                 detail: "session \(session.id) from \(session.remoteAddress): \(refusal.check.rawValue) failed")
            try? await gateway.store.addTrace(outerID, step: "inbound", outcome: "refused", detail: refusal.description)
            // RFC 3463 5.7.x: a security or policy refusal, naming the check.
            return SMTPReply(refusal.code, refusal.enhanced, refusal.description)
        }
        let metadata = MessageMetadata(
            sender: incoming.sender.description,
            recipients: recipients.map(\.description),
            subject: incoming.entity.headers.all("Subject").first?.decodedValue.trimmingWhitespace() ?? "",
            messageID: incoming.entity.headers["Message-ID"]?.trimmingWhitespace() ?? outerID)
        do {
            if let notification = incoming.notification {
                try await notificationArrived(notification, incoming: incoming, recipients: recipients, metadata: metadata)
            } else {
                for r in recipients {
                    var replies = [gateway.notices.mdn(.processed, recipient: r, to: incoming.sender, original: incoming.entity,
                                                       finalDestination: false)]
                    if incoming.wantsFinalDeliveryNotice {
                        // The mailbox is the final destination: dispatched at once (Implementation Guide 3.3).
                        replies.append(gateway.notices.mdn(.dispatched, recipient: r, to: incoming.sender, original: incoming.entity,
                                                           finalDestination: true))
                    }
                    // Both ready or both for the preparer, so that the processed MDN leaves first:
                    // once one is left to the preparer, the next is not prepared (nor waited for).
                    var prepared: [OutboundDraft] = []
                    for reply in replies {
                        let draft = await gateway.prepareAtOnce(reply)
                        guard draft.prepared != nil else { prepared = replies; break }
                        prepared.append(draft)
                    }
                    _ = try await gateway.store.storeIncoming(
                        LocalDelivery(mailbox: r, bytes: incoming.message, metadata: metadata), replies: prepared)
                    for reply in prepared { gateway.queued(reply) }
                }
            }
        } catch {
            gateway.logger.error("storing an inbound message failed", metadata: ["error": .string("\(error)")])
            return SMTPReply(451, "4.3.0", "cannot store the message now; try again later")
        }
        if incoming.notification != nil { gateway.poke() }
        return SMTPReply(250, "2.0.0", "delivered")
    }

    /// An MDN or DSN for a message we sent: it moves the queue on, and reaches
    /// the sender unless it is late or a duplicate (Implementation Guide for Delivery Notification in Direct 1.0).
    func notificationArrived(_ n: InternetMessage.Notification, incoming: SecurityAgent.Incoming, recipients: [DirectAddress],
                             metadata: MessageMetadata) async throws {
        let (originalID, reporter, notice): (String, String, ReceivedNotice)
        switch n {
        case .mdn(let m):
            originalID = m.originalMessageID
            reporter = m.finalRecipient.isEmpty ? incoming.sender.description : m.finalRecipient
            notice = .mdn(m.disposition)
        case .dsn(let d):
            originalID = d.originalMessageID ?? ""
            reporter = d.recipients.first?.finalRecipient ?? incoming.sender.description
            notice = d.recipients.contains { $0.action == "failed" } ? .dsnFailed : .dsnDelivered
        }
        for r in recipients {
            let match = try await gateway.store.applyNotification(
                originalMessageID: originalID, recipient: reporter, label: notice.label,
                passOn: LocalDelivery(mailbox: r, bytes: incoming.message, metadata: metadata)) { state, wantsDispatched in
                NotificationPolicy.effect(of: notice, state: state, wantsDispatched: wantsDispatched)
            }
            if match == .unknown {
                // Not one of ours (or already forgotten): the user still sees it.
                _ = try await gateway.store.storeIncoming(LocalDelivery(mailbox: r, bytes: incoming.message, metadata: metadata), replies: [])
            }
        }
    }
}
