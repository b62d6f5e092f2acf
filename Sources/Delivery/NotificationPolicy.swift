import DirectCore
import InternetMessage
import Storage

/// A notification that answers a message we sent, as the queue reads it.
public enum ReceivedNotice: Sendable, Equatable {
    case mdn(MDNDisposition)
    /// A DSN (RFC 3464) whose recipient failed.
    case dsnFailed
    /// A DSN reporting success (delivered, relayed, expanded).
    case dsnDelivered

    /// Its name in the trace.
    public var label: String {
        switch self {
        case .mdn(let d): return d.rawValue
        case .dsnFailed: return "failed"
        case .dsnDelivered: return "delivered (DSN)"
        }
    }
}

/// What each notification does to a recipient's place in the queue
/// (Implementation Guide for Delivery Notification in Direct 1.0, RFC 8098):
///
/// | notice | waiting (queued, sent) | processed | final |
/// |---|---|---|---|
/// | processed | processed (the wait for dispatched goes on if it was asked for) | duplicate | after dispatched: passed on |
/// | dispatched | dispatched | dispatched | duplicate |
/// | failed (MDN or DSN) | failed | failed | duplicate |
/// | deleted, denied | deleted, denied (final: nothing more will come) | the same | duplicate |
/// | displayed, a success DSN | passed on, the state stays | passed on | passed on |
///
/// After the notification timeout every notice is late and swallowed: the
/// sender already has the failure DSN.
public enum NotificationPolicy {
    public static func effect(of notice: ReceivedNotice, state: QueueState, wantsDispatched: Bool) -> NotificationEffect {
        if state == .timedout { return .late }
        let waiting = state == .queued || state == .sent
        switch notice {
        case .mdn(.processed):
            if waiting { return .advance(to: .processed, keepDeadline: wantsDispatched) }
            // Out of order, not a repeat: the sender still gets it.
            return state == .dispatched ? .passOn : .duplicate
        case .mdn(.dispatched):
            return waiting || state == .processed ? .advance(to: .dispatched, keepDeadline: false) : .duplicate
        case .mdn(.failed), .dsnFailed:
            return waiting || state == .processed ? .advance(to: .failed, keepDeadline: false) : .duplicate
        case .mdn(.deleted):
            return waiting || state == .processed ? .advance(to: .deleted, keepDeadline: false) : .duplicate
        case .mdn(.denied):
            return waiting || state == .processed ? .advance(to: .denied, keepDeadline: false) : .duplicate
        case .mdn(.displayed), .dsnDelivered:
            return .passOn
        }
    }
}
