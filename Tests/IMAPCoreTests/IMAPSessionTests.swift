import Foundation
import Testing
@testable import IMAPCore

/// The session's side of operations: what it asks the mail store for and what it
/// answers, with the store's outcomes fed by the test (no sockets).
@Suite struct IMAPSessionTests {
    static let bodies: [UInt32: String] = [
        1: "Subject: one\r\n\r\nfirst referral\r\n",
        2: "Subject: two\r\n\r\nsecond, with the word cardiology\r\n",
        3: "Subject: three\r\n\r\nthird, cardiology again\r\n",
    ]

    /// A session signed in with INBOX (UIDs 1, 2, 3) selected; each part of a read holds at most `maxBytes`.
    func selected(maxBytes: Int) -> IMAPSession {
        var s = IMAPSession(policy: .init(hostname: "imap.test", maxBytesPerRead: maxBytes), tls: true)
        _ = s.receive(Array("a1 LOGIN bob secret".utf8))
        _ = s.authenticated("bob")
        _ = s.receive(Array("a2 SELECT INBOX".utf8))
        let messages = (1...3).map { SelectedMailbox.Message(uid: UInt32($0), flags: [], modSeq: 1) }
        _ = s.completed(.selected(IMAPFolderCounts(messages: 3, unseen: 3, uidNext: 4, uidValidity: 9, highestModSeq: 1, size: 0), messages))
        return s
    }

    func stored(_ uid: UInt32) -> IMAPStoredMessage {
        let bytes = Array(Self.bodies[uid]!.utf8)
        return IMAPStoredMessage(uid: uid, internalDate: Date(timeIntervalSince1970: 1_800_000_000), size: bytes.count, bytes: bytes)
    }

    func text(_ actions: [IMAPSession.Action]) -> String {
        actions.map { if case .send(let b) = $0 { String(decoding: b, as: UTF8.self) } else { "" } }.joined()
    }

    func asked(_ actions: [IMAPSession.Action]) -> IMAPOperation? {
        actions.lazy.compactMap { if case .perform(let op) = $0 { op } else { nil } }.first
    }

    @Test func aFetchOfBodiesIsReadAndSentInPartsOfTheByteBudget() throws {
        var s = selected(maxBytes: 40)
        let first = s.receive(Array("a3 FETCH 1:* (BODY.PEEK[])".utf8))
        #expect(asked(first) == .fetch(folder: "INBOX", uids: [1, 2, 3], bodies: true, markSeen: [], maxBytes: 40))
        // The store read the first message only (the next would pass 40 bytes).
        let second = s.completed(.fetched([stored(1)], changed: [], rest: [2, 3]))
        #expect(text(second).contains("* 1 FETCH (BODY[] {\(Self.bodies[1]!.utf8.count)}\r\n\(Self.bodies[1]!))"), "\(text(second))")
        #expect(!text(second).contains("a3 OK"), "not done after the first part")
        #expect(asked(second) == .fetch(folder: "INBOX", uids: [2, 3], bodies: true, markSeen: [], maxBytes: 40))
        #expect(s.isWaiting, "no other command runs between the parts")
        let last = s.completed(.fetched([stored(2), stored(3)], changed: [], rest: []))
        #expect(text(last).contains("* 2 FETCH") && text(last).contains("* 3 FETCH"))
        #expect(text(last).hasSuffix("a3 OK FETCH completed\r\n"), "\(text(last))")
        #expect(asked(last) == nil && !s.isWaiting)
    }

    @Test func seenSetByTheFirstPartIsToldWithEachMessageOfTheLaterParts() throws {
        var s = selected(maxBytes: 40)
        let first = s.receive(Array("a3 FETCH 1:3 (FLAGS BODY[])".utf8))
        #expect(asked(first) == .fetch(folder: "INBOX", uids: [1, 2, 3], bodies: true, markSeen: [1, 2, 3], maxBytes: 40))
        let seen = (1...3).map { SelectedMailbox.Message(uid: UInt32($0), flags: ["\\Seen"], modSeq: 2) }
        _ = s.completed(.fetched([stored(1)], changed: seen, rest: [2, 3]))
        let last = s.completed(.fetched([stored(2), stored(3)], changed: [], rest: []))
        // RFC 9051 6.4.5: FLAGS with \Seen for the messages of the later part too.
        #expect(text(last).contains("* 3 FETCH (FLAGS (\\Seen) BODY[]"), "\(text(last))")
    }

    @Test func aSearchOfContentsKeepsOnlyTheHitsOfEachPart() throws {
        var s = selected(maxBytes: 40)
        let first = s.receive(Array("a4 UID SEARCH BODY cardiology".utf8))
        #expect(asked(first) == .fetch(folder: "INBOX", uids: [1, 2, 3], bodies: true, markSeen: [], maxBytes: 40))
        let second = s.completed(.fetched([stored(1), stored(2)], changed: [], rest: [3]))
        #expect(text(second).isEmpty, "nothing is answered before the last part")
        #expect(asked(second) == .fetch(folder: "INBOX", uids: [3], bodies: true, markSeen: [], maxBytes: 40))
        let last = s.completed(.fetched([stored(3)], changed: [], rest: []))
        #expect(text(last) == "* SEARCH 2 3\r\na4 OK SEARCH completed\r\n", "\(text(last))")
    }
}
