import DirectCore
import Foundation
import HISPTesting
import InternetMessage
import SecurityAgent
import Storage
import Testing
@testable import MailService

/// The mail core without sockets: submit and accept apply the Direct rules; mail between two
/// mailboxes of one HISP is signed, encrypted, decrypted, verified and acknowledged in process.
@Suite struct MailServiceTests {
    let alice = DirectAddress("alice@a.example")!
    let bob = DirectAddress("bob@a.example")!

    func message(from: String, to: String, subject: String = "Referral", body: String = "Patient Jane Roe, DOB 1970-01-01.") -> [UInt8] {
        Array("From: \(from)\r\nTo: \(to)\r\nSubject: \(subject)\r\nDisposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n\r\n\(body)\r\n".utf8)
    }

    /// IMAP's SELECT reads a view, then subscribes; what changed in between comes first, without a further signal.
    @Test(.timeLimit(.minutes(2))) func changesAfterAnEarlierViewAreNotLostBeforeTheSubscription() async throws {
        let f = try await MailFixture.make()
        let meta = MessageMetadata(sender: alice.description, recipients: [bob.description], subject: "x", messageID: "<gap-1@a>")
        _ = try await f.store.addMessage(mailbox: bob, bytes: message(from: alice.description, to: bob.description), metadata: meta)
        let view = try await f.store.folderStatus(mailbox: bob, folder: "INBOX")
        // Between the view and the subscription: a flag changes and a message arrives.
        _ = try await f.mail.setFlags(bob, folder: "INBOX", uids: [1...1], .add, flags: .flagged)
        let meta2 = MessageMetadata(sender: alice.description, recipients: [bob.description], subject: "y", messageID: "<gap-2@a>")
        _ = try await f.store.addMessage(mailbox: bob, bytes: message(from: alice.description, to: bob.description), metadata: meta2)
        let changes = try await f.mail.changes(bob, folder: "INBOX", since: (view.highestModSeq, view.uidNext))
        var iterator = changes.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.contains { if case .flags(let m) = $0 { m.uid == 1 && m.flags.contains(.flagged) } else { false } }, "\(first)")
        #expect(first.contains(.added(uid: 2)), "\(first)")
    }

    @Test func mailBetweenTwoLocalMailboxesIsSecuredAndAcknowledgedInProcess() async throws {
        let f = try await MailFixture.make()
        let running = Task { await f.mail.run() }
        defer { running.cancel() }
        let changes = try await f.mail.changes(bob, folder: "INBOX")
        let written = message(from: alice.description, to: bob.description)

        let result = await f.mail.submit(Submission(user: alice, recipients: [bob.description], message: written, via: "test"))
        guard case .queued(let messageID, _, let refused) = result else {
            Issue.record("not queued: \(result)")
            return
        }
        #expect(refused.isEmpty)
        // The sender's copy, as written (with the Message-ID and Date the service added), read.
        let sent = try await f.store.messages(mailbox: alice, folder: "Sent", uids: [1...UInt32.max])
        #expect(sent.count == 1 && sent.first?.flags == .seen)
        let sentBytes = try await f.store.message(mailbox: alice, folder: "Sent", uid: 1).1
        #expect(sentBytes.suffix(written.count) == written[...])

        // Bob's INBOX hears of it.
        var iterator = changes.makeAsyncIterator()
        let first = try await iterator.next()
        #expect(first == [.added(uid: 1)])
        let (summary, body) = try await f.store.message(mailbox: bob, folder: "INBOX", uid: 1)
        #expect(summary.metadata.sender == alice.description && summary.metadata.messageID == messageID)
        #expect(String(decoding: body, as: UTF8.self).contains("Patient Jane Roe"))
        // What a mail client shows first: the result of the checks (RFC 8601, RFC 7281), then the message as Alice signed it.
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.hasPrefix("Authentication-Results: hisp.a.example; smime=pass"), "\(text.prefix(300))")
        #expect(text.contains("body.smime-identifier=alice@a.example"))
        #expect(text.contains("anchor "))
        let entity = try MIMEEntity(parsing: body)
        #expect(entity.headers.all("Authentication-Results").count == 1)
        #expect(entity.headers["Subject"]?.trimmingWhitespace() == "Referral")

        // The processed and dispatched MDNs come back the same way and end the wait.
        try await f.until("the dispatched MDN") {
            try await f.mail.status(messageID: messageID).recipients.first?.state == .dispatched
        }
        let status = try await f.mail.status(messageID: messageID)
        #expect(status.trace.contains { $0.step == "security" })
        try await f.until("both MDNs in Alice's INBOX") { try await f.store.folderStatus(mailbox: alice, folder: "INBOX").messages == 2 }
        // Nothing went out over SMTP: both mailboxes are ours.
        #expect(f.transport.sentTo.isEmpty)
        await f.close()
    }

    @Test func submitRefusesWhatTheSenderMayNotSendAndSaysWhichCheck() async throws {
        let f = try await MailFixture.make()
        let other = await f.mail.submit(Submission(user: alice, envelopeFrom: bob.description, recipients: [bob.description],
                                                   message: message(from: alice.description, to: bob.description), via: "test"))
        #expect(other == .refused(Refusal(.sender, code: 553, enhanced: "5.7.1", "you may send only as \(alice)")))
        let forged = await f.mail.submit(Submission(user: alice, recipients: [bob.description], message: message(from: bob.description, to: bob.description), via: "test"))
        guard case .refused(let r) = forged else { Issue.record("\(forged)"); return }
        #expect(r.check == .sender && r.code == 553)
        let twice = Array("From: \(alice)\r\nFrom: \(bob)\r\nSubject: x\r\n\r\nx\r\n".utf8)
        guard case .refused(let format) = await f.mail.submit(Submission(user: alice, recipients: [bob.description], message: twice, via: "test")) else {
            Issue.record("a second From was queued"); return
        }
        #expect(format.check == .format && format.enhanced == "5.6.0")
        // A recipient that is not an address is refused alone; the others are queued.
        let mixed = await f.mail.submit(Submission(user: alice, recipients: ["not an address", bob.description],
                                                   message: message(from: alice.description, to: bob.description), via: "test"))
        guard case .queued(_, _, let refused) = mixed else { Issue.record("\(mixed)"); return }
        #expect(refused.map(\.recipient) == ["not an address"] && refused.first?.refusal.check == .recipient)
        // Nothing refused reached the Sent folder.
        #expect(try await f.store.folderStatus(mailbox: alice, folder: "Sent").messages == 1)
        await f.close()
    }

    @Test func acceptRefusesAPlainMessageNamingTheCheck() async throws {
        let f = try await MailFixture.make()
        let result = await f.mail.accept(InboundMessage(mailFrom: "x@b.example", recipients: [bob], message: message(from: "x@b.example", to: bob.description),
                                                        from: "test"))
        guard case .refused(let r) = result else { Issue.record("\(result)"); return }
        #expect(r.check == .notEncrypted && r.code == 554 && r.enhanced == "5.7.5")
        #expect(try await f.store.folderStatus(mailbox: bob, folder: "INBOX").messages == 0)
        #expect(await f.mail.checkInboundRecipient("carol@a.example")?.check == .recipient)
        #expect(await f.mail.checkInboundRecipient("carol@elsewhere.example")?.check == .relay)
        await f.close()
    }

    @Test func appendFilesDraftsButNotIntoInbox() async throws {
        let f = try await MailFixture.make()
        let draft = message(from: alice.description, to: bob.description, subject: "Draft")
        let (validity, uid) = try await f.mail.append(alice, folder: "Drafts", message: draft, flags: .draft)
        let drafts = try await f.mail.folderStatus(alice, folder: "Drafts")
        #expect(uid == 1 && validity == drafts.uidValidity)
        #expect(try await f.mail.body(alice, folder: "Drafts", uid: 1, reader: "alice over test").1 == draft)
        await #expect(throws: StoreError.self) { _ = try await f.mail.append(alice, folder: "INBOX", message: draft) }
        await f.close()
    }
}

/// The queue decides by its clock: retries and the notification timeout happen when the test clock says so, not after real waits.
@Suite struct QueueClockTests {
    let alice = DirectAddress("alice@a.example")!
    let carol = DirectAddress("carol@c.example")!

    func submit(_ f: MailFixture) async throws -> String {
        let bytes = Array("From: \(alice)\r\nTo: \(carol)\r\nSubject: Referral\r\n\r\nPatient Jane Roe.\r\n".utf8)
        guard case .queued(let id, _, _) = await f.mail.submit(Submission(user: alice, recipients: [carol.description], message: bytes, via: "test")) else {
            throw FixtureTimeout(what: "the submission to be queued")
        }
        return id
    }

    func state(_ f: MailFixture, _ id: String) async throws -> RecipientStatus? {
        try await f.mail.status(messageID: id).recipients.first
    }

    @Test func aDeferredDeliveryIsRetriedWhenItsTimeComes() async throws {
        let clock = ManualClock()
        let f = try await MailFixture.make(clock: clock, remote: [carol], transientFailures: 1)
        let running = Task { await f.mail.run() }
        defer { running.cancel() }
        let id = try await submit(f)
        try await f.until("the first attempt") { try await state(f, id)?.attempts == 1 }
        let first = try #require(try await state(f, id))
        #expect(first.state == .queued && first.reason?.contains("try later") == true)
        // The retry is due 60 s later by the queue's clock.
        clock.advance(61)
        f.mail.queue.wakeDelivery()
        try await f.until("the second attempt") { try await state(f, id)?.state == .sent }
        #expect(try await state(f, id)?.attempts == 2)
        #expect(f.transport.sentTo == ["c.example", "c.example"])
        await f.close()
    }

    @Test func noProcessedMDNByTheDeadlineGivesTheSenderAFailureDSN() async throws {
        let clock = ManualClock()
        let f = try await MailFixture.make(clock: clock, remote: [carol])
        let running = Task { await f.mail.run() }
        defer { running.cancel() }
        let id = try await submit(f)
        try await f.until("the message to be sent") { try await state(f, id)?.state == .sent }
        // An hour (the default notification timeout) passes on the queue's clock.
        clock.advance(3601)
        f.mail.queue.wakeDelivery()
        try await f.until("the timeout") { try await state(f, id)?.state == .timedout }
        let inbox = try await f.store.messages(mailbox: alice, folder: "INBOX", uids: [1...UInt32.max])
        #expect(inbox.count == 1 && inbox.first?.metadata.subject == "Undeliverable: your Direct message")
        await f.close()
    }

    /// A field that claims to be ours is removed before ours is added (RFC 8601 5);
    /// another server's is kept; the body is never touched.
    @Test func aForgedAuthenticationResultsFieldIsRemoved() {
        let evidence = SecurityAgent.SignatureEvidence(issuer: "CN=Example \"CA\", O=Ex", serial: "0a1b", anchor: "CN=Root (test)", localDomain: "a.example")
        let message = Array((
            "Authentication-Results: HISP.a.example; smime=pass\r\n\tbody.smime-identifier=mallory@x.example\r\n"
            + "Authentication-Results: mx.other.example; spf=pass\r\n"
            + "Authentication-Results: hisp.a.example.evil; dkim=pass\r\n"
            + "Subject: hi\r\n\r\nAuthentication-Results: hisp.a.example; in the body stays\r\n").utf8)
        let out = String(decoding: AuthenticationResults.stamped(message, hostname: "hisp.a.example", sender: alice, evidence: evidence), as: UTF8.self)
        #expect(!out.contains("mallory"))
        #expect(out.contains("Authentication-Results: mx.other.example; spf=pass\r\n"))
        #expect(out.contains("Authentication-Results: hisp.a.example.evil; dkim=pass\r\n"))
        #expect(out.hasSuffix("Subject: hi\r\n\r\nAuthentication-Results: hisp.a.example; in the body stays\r\n"))
        #expect(out.contains("body.smime-issuer=\"CN=Example \\\"CA\\\", O=Ex\""))
        #expect(out.contains("anchor CN=Root \\(test\\))"))
        for line in out.split(separator: "\r\n") where line.hasPrefix("Authentication-Results: hisp") || line.hasPrefix("\t") {
            #expect(line.count <= 78, "\(line)")
        }
    }
}
