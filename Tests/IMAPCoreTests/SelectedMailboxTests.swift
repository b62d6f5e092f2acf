import Testing
@testable import IMAPCore

/// What one session is told of another's changes, and when (RFC 9051 7.4.1, 7.5.1).
@Suite struct SelectedMailboxTests {
    func box(_ uids: [UInt32]) -> SelectedMailbox {
        SelectedMailbox(uidValidity: 7, uidNext: (uids.max() ?? 0) + 1, highestModSeq: 10,
                        messages: uids.map { .init(uid: $0, flags: [], modSeq: 1) }, readOnly: false)
    }

    @Test func setsResolveBySequenceAndByUID() {
        let b = box([3, 5, 9, 12])
        let star = SequenceSet(ranges: [.init(from: .number(2), to: .last)])
        #expect(b.resolve(star, byUID: false).map(\.sequence) == [2, 3, 4])
        #expect(b.resolve(star, byUID: true).map(\.message.uid) == [3, 5, 9, 12])
        #expect(b.resolve(SequenceSet(ranges: [.init(from: .number(6), to: .number(10))]), byUID: true).map(\.message.uid) == [9])
        #expect(b.resolve(SequenceSet(ranges: [.init(from: .number(100), to: .last)]), byUID: true).map(\.message.uid) == [12],
                "100:* names the largest UID even when it is below 100 (RFC 9051 6.4.8)")
        #expect(b.resolve(SequenceSet(ranges: [.init(from: .number(4), to: .number(1))]), byUID: false).map(\.sequence) == [1, 2, 3, 4])
        #expect(!b.isValid(SequenceSet(ranges: [.init(from: .number(5), to: .number(5))])))
    }

    @Test func anExpungeWaitsWhileSequenceNumbersAreInUseAndExistsStillCountsIt() {
        var b = box([1, 2, 3])
        b.apply(.expunged(uid: 2))
        b.apply(.added(.init(uid: 4, flags: [], modSeq: 11)))
        // During FETCH by sequence number: the new message is told, the expunge is not, and 2 keeps its number.
        #expect(b.updates(expungesAllowed: false) == [.exists(4)])
        #expect(b.resolve(SequenceSet(ranges: [.init(from: .number(2), to: .number(2))]), byUID: false).first?.message.uid == 2)
        // At the next NOOP: the expunge, and the count is right without another EXISTS.
        #expect(b.updates(expungesAllowed: true) == [.expunge(sequence: 2)])
        #expect(b.count == 3 && b.sequence(of: 4) == 3)
    }

    @Test func expungesAreToldHighestFirstSoEachNumberIsRightAtItsTurn() {
        var b = box([10, 20, 30, 40])
        b.apply(.expunged(uid: 20))
        b.apply(.expunged(uid: 40))
        #expect(b.updates(expungesAllowed: true) == [.expunge(sequence: 4), .expunge(sequence: 2)])
        #expect(b.messages.map(\.uid) == [10, 30])
    }

    @Test func anotherSessionsFlagsAreToldWithModSeqUnderCondstoreAndOwnStoresAreNot() {
        var b = box([1, 2])
        b.condStore = true
        b.apply(.flags(.init(uid: 2, flags: ["\\Seen"], modSeq: 12)))
        #expect(b.updates(expungesAllowed: false) == [.fetchFlags(sequence: 2, uid: 2, flags: ["\\Seen"], modSeq: 12)])
        #expect(b.highestModSeq == 12)
        b.stored(.init(uid: 1, flags: ["\\Flagged"], modSeq: 13))
        b.apply(.flags(.init(uid: 1, flags: ["\\Flagged"], modSeq: 13)))
        #expect(b.updates(expungesAllowed: true).isEmpty, "the session's own change, already answered, is not told again")
    }

    @Test func aMessageAddedAndRemovedBeforeItWasToldIsNeverMentioned() {
        var b = box([1])
        b.apply(.added(.init(uid: 2, flags: [], modSeq: 11)))
        b.apply(.expunged(uid: 2))
        #expect(b.updates(expungesAllowed: true).isEmpty)
        #expect(b.uidNext == 3, "its UID is used up all the same")
    }

    @Test func ownExpungesAreNumberedAsTheyAreSent() {
        var b = box([1, 2, 3, 4])
        #expect(b.expungedHere([2, 3]) == [3, 2])
        #expect(b.messages.map(\.uid) == [1, 4])
    }
}
