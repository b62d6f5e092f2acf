import InternetMessage
import Storage
import Testing
@testable import Delivery

/// Every RFC 8098 disposition (and a DSN) has a typed effect on the queue; none is mistaken for a repeat.
@Suite struct NotificationPolicyTests {
    func effect(_ n: ReceivedNotice, _ s: QueueState, dispatched: Bool = false) -> NotificationEffect {
        NotificationPolicy.effect(of: n, state: s, wantsDispatched: dispatched)
    }

    @Test func eachDispositionMovesAWaitingRecipientOnOrPassesItOn() {
        #expect(effect(.mdn(.processed), .sent) == .advance(to: .processed, keepDeadline: false))
        // Dispatched was asked for: the deadline stays for it.
        #expect(effect(.mdn(.processed), .sent, dispatched: true) == .advance(to: .processed, keepDeadline: true))
        #expect(effect(.mdn(.dispatched), .processed, dispatched: true) == .advance(to: .dispatched, keepDeadline: false))
        #expect(effect(.mdn(.failed), .sent) == .advance(to: .failed, keepDeadline: false))
        #expect(effect(.dsnFailed, .processed, dispatched: true) == .advance(to: .failed, keepDeadline: false))
        #expect(effect(.mdn(.deleted), .sent) == .advance(to: .deleted, keepDeadline: false))
        #expect(effect(.mdn(.denied), .processed, dispatched: true) == .advance(to: .denied, keepDeadline: false))
        // Informational: the sender sees it, the wait goes on.
        #expect(effect(.mdn(.displayed), .processed, dispatched: true) == .passOn)
        #expect(effect(.dsnDelivered, .sent) == .passOn)
        // A notification can overtake the record of its delivery (the row is still queued).
        #expect(effect(.mdn(.processed), .queued) == .advance(to: .processed, keepDeadline: false))
    }

    @Test func repeatsAndLateOnesAreSwallowedButOutOfOrderOnesAreNot() {
        #expect(effect(.mdn(.processed), .processed) == .duplicate)
        #expect(effect(.mdn(.dispatched), .dispatched) == .duplicate)
        #expect(effect(.mdn(.failed), .failed) == .duplicate)
        #expect(effect(.mdn(.deleted), .deleted) == .duplicate)
        // The processed MDN after the dispatched one: passed on, the final state stays.
        #expect(effect(.mdn(.processed), .dispatched) == .passOn)
        for n in [ReceivedNotice.mdn(.processed), .mdn(.dispatched), .mdn(.displayed), .dsnFailed, .dsnDelivered] + MDNDisposition.allCases.map(ReceivedNotice.mdn) {
            #expect(effect(n, .timedout) == .late, "\(n)")
        }
    }
}
