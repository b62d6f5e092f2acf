import Delivery
import DirectCore
import Foundation
import InternetMessage
import SecurityAgent
import Storage

/// A message another HISP (or our own queue, in process) hands over.
public struct InboundMessage: Sendable {
    public var mailFrom: String
    public var recipients: [DirectAddress]
    public var message: [UInt8]
    /// Who handed it over, for the audit trail ("session 1f2e from 192.0.2.7", "in process").
    public var from: String

    public init(mailFrom: String, recipients: [DirectAddress], message: [UInt8], from: String) {
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.message = message
        self.from = from
    }
}

/// What became of a received message.
public enum AcceptResult: Sendable, Equatable {
    /// Stored for every recipient (a redelivery is stored once), with its MDNs queued;
    /// or, for a notification, applied to the queue and passed to the sender.
    case accepted
    case refused(Refusal)
}

extension MailService {
    /// Whether mail for `recipient` is taken here: its domain is hosted and the mailbox exists (never an open relay).
    public func checkInboundRecipient(_ recipient: String) async -> Refusal? {
        guard let address = DirectAddress(recipient) else {
            return Refusal(.recipient, code: 501, enhanced: "5.1.3", "\(recipient) is not an address")
        }
        do {
            switch try await store.lookupMailbox(address) {
            case .exists: return nil
            case .notHosted: return Refusal(.relay, code: 550, enhanced: "5.7.1", "relaying denied: \(address.domain) is not hosted here")
            case .noMailbox: return Refusal(.recipient, code: 550, enhanced: "5.1.1", "no such mailbox: \(address)")
            }
        } catch {
            return Refusal(.storage, code: 451, enhanced: "4.3.0", "temporary failure looking up the mailbox")
        }
    }

    /// Applies the Direct rules to a received message, once for every way in:
    /// decrypt with a recipient's (or its domain's) key, verify the signature,
    /// trust the signer for that domain, bind it to the From address; then
    /// store it with its processed (and, when asked, dispatched) MDNs queued
    /// in the same transaction, or, for an MDN or DSN, move the queue on.
    public func accept(_ m: InboundMessage) async -> AcceptResult {
        // The outer Message-ID, read only when needed (a refusal's trace, an inner message without one).
        let outerID = { (try? MIMEEntity(parsing: m.message))?.headers["Message-ID"]?.trimmingWhitespace() ?? "" }
        let incoming: SecurityAgent.Incoming
        do {
            let trust = queue.incomingTrust
            incoming = try await queue.agent.processIncoming(m.message, recipients: m.recipients, trust: { await trust.trust(localDomain: $0) })
        } catch {
            let refusal = (error as? AgentError)?.refusal ?? Refusal.security(.format, "\(error)")
            logger.notice("inbound message refused", metadata: ["check": .string(refusal.check.rawValue), "from": .string(m.from)])
            try? await store.recordEvent("message.refused", object: "inbound", outcome: "failed", detail: "\(m.from): \(refusal.check.rawValue) failed")
            try? await store.addTrace(outerID(), step: "inbound", outcome: "refused", detail: refusal.description)
            return .refused(refusal)
        }
        let metadata = MessageMetadata(
            sender: incoming.sender.description,
            recipients: m.recipients.map(\.description),
            subject: incoming.entity.headers.all("Subject").first?.decodedValue.trimmingWhitespace() ?? "",
            messageID: incoming.entity.headers["Message-ID"]?.trimmingWhitespace() ?? outerID())
        do {
            if let notification = incoming.notification {
                try await notificationArrived(notification, incoming: incoming, recipients: m.recipients, metadata: metadata)
                queue.poke()
            } else {
                for r in m.recipients { try await store(incoming, for: r, metadata: metadata) }
            }
        } catch {
            logger.error("storing an inbound message failed", metadata: ["error": .string("\(error)")])
            return .refused(.storage("cannot store the message now; try again later"))
        }
        return .accepted
    }

    /// The message as a mail client gets it: with our Authentication-Results field (RFC 8601) first.
    func stamped(_ incoming: SecurityAgent.Incoming) -> [UInt8] {
        AuthenticationResults.stamped(incoming.message, hostname: queue.configuration.hostname, sender: incoming.sender, evidence: incoming.evidence)
    }

    /// Stores a verified message for one recipient with its MDNs (Implementation Guide for Delivery Notification in Direct 1.0).
    func store(_ incoming: SecurityAgent.Incoming, for r: DirectAddress, metadata: MessageMetadata) async throws {
        var replies = [queue.notices.mdn(.processed, recipient: r, to: incoming.sender, original: incoming.entity, finalDestination: false)]
        if incoming.wantsFinalDeliveryNotice {
            // The mailbox is the final destination: dispatched at once (Implementation Guide 3.3).
            replies.append(queue.notices.mdn(.dispatched, recipient: r, to: incoming.sender, original: incoming.entity, finalDestination: true))
        }
        // Both ready or both for the preparer, so that the processed MDN leaves first:
        // once one is left to the preparer, the next is not prepared (nor waited for).
        var prepared: [OutboundDraft] = []
        for reply in replies {
            let draft = await queue.prepareAtOnce(reply)
            guard draft.prepared != nil else { prepared = replies; break }
            prepared.append(draft)
        }
        _ = try await store.storeIncoming(LocalDelivery(mailbox: r, bytes: stamped(incoming), metadata: metadata), replies: prepared, now: queue.now())
        for reply in prepared { queue.queued(reply) }
    }

    /// An MDN or DSN for a message we sent: it moves the queue on (`NotificationPolicy`),
    /// and reaches the sender unless it is late or a repeat.
    func notificationArrived(_ n: InternetMessage.Notification, incoming: SecurityAgent.Incoming, recipients: [DirectAddress],
                             metadata: MessageMetadata) async throws {
        let (originalID, reporter, notice): (String, String, ReceivedNotice)
        switch n {
        case .mdn(let mdn):
            originalID = mdn.originalMessageID
            reporter = mdn.finalRecipient.isEmpty ? incoming.sender.description : mdn.finalRecipient
            notice = .mdn(mdn.disposition)
        case .dsn(let d):
            originalID = d.originalMessageID ?? ""
            reporter = d.recipients.first?.finalRecipient ?? incoming.sender.description
            notice = d.recipients.contains { $0.action == "failed" } ? .dsnFailed : .dsnDelivered
        }
        for r in recipients {
            let delivery = LocalDelivery(mailbox: r, bytes: stamped(incoming), metadata: metadata)
            let match = try await store.applyNotification(originalMessageID: originalID, recipient: reporter, label: notice.label,
                                                          passOn: delivery, now: queue.now()) { state, wantsDispatched in
                NotificationPolicy.effect(of: notice, state: state, wantsDispatched: wantsDispatched)
            }
            if match == .unknown {
                // Not one of ours (or already forgotten): the user still sees it.
                _ = try await store.storeIncoming(delivery, replies: [], now: queue.now())
            }
        }
    }
}

extension MailService: InProcessDelivery {
    public func isLocal(domain: String) async -> Bool {
        (try? await store.hostsDomain(domain)) ?? false
    }

    /// Our own queue hands over a message for a domain we host: accepted as
    /// if it came from another HISP, recipient by recipient (each checked first).
    public func deliverInProcess(_ message: OutboundMessage) async -> [String: RecipientOutcome] {
        var outcomes: [String: RecipientOutcome] = [:]
        var recipients: [DirectAddress] = []
        for r in message.recipients {
            if let refusal = await checkInboundRecipient(r) {
                outcomes[r] = refusal.isTemporary ? .transient(refusal) : .permanent(refusal)
            } else if let a = DirectAddress(r) {
                recipients.append(a)
            }
        }
        guard !recipients.isEmpty else { return outcomes }
        let result = await accept(InboundMessage(mailFrom: message.from, recipients: recipients, message: message.message, from: "in process"))
        for r in recipients {
            switch result {
            case .accepted: outcomes[r.description] = .accepted
            case .refused(let refusal): outcomes[r.description] = refusal.isTemporary ? .transient(refusal) : .permanent(refusal)
            }
        }
        // The queue keys outcomes by the recipient as it was queued.
        for r in message.recipients where outcomes[r] == nil {
            outcomes[r] = outcomes.first { $0.key.lowercased() == r.lowercased() }?.value
        }
        return outcomes
    }
}
