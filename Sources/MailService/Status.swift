import DirectCore
import Foundation
import Storage

/// Where one recipient of a sent message stands.
public struct RecipientStatus: Sendable, Equatable {
    public let recipient: String
    public let state: QueueState
    public let attempts: Int
    /// When the state last changed.
    public let updated: Date
    /// Why it failed, or why the last attempt did not go through.
    public let reason: String?
}

/// A sent message's status: each recipient's state and the steps it went through.
public struct MessageStatus: Sendable {
    public let messageID: String
    public let recipients: [RecipientStatus]
    public let trace: [TraceEvent]
}

extension MailService {
    /// Each recipient's state (queued, sent, processed, dispatched, failed with the reason, ...) as the queue and MDN tracking record it.
    public func status(messageID: String) async throws -> MessageStatus {
        let (entries, events) = try await store.trace(messageID: messageID)
        return MessageStatus(
            messageID: messageID,
            recipients: entries.filter { $0.kind == .message }.map {
                RecipientStatus(recipient: $0.recipient, state: $0.state, attempts: $0.attempts, updated: $0.updated, reason: $0.lastError)
            },
            trace: events)
    }
}
