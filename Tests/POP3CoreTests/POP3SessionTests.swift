import Testing
import SMTPCore
@testable import POP3Core

/// The POP3 session state machine, fed lines as a client sends them.
@Suite struct POP3SessionTests {
    let drop = [POP3Message(uid: "7.1", size: 120), POP3Message(uid: "7.2", size: 300), POP3Message(uid: "7.5", size: 45)]

    func signedIn() -> POP3Session {
        var s = POP3Session(policy: .init(hostname: "pop.example"), tls: true)
        _ = s.receive(Array("USER alice@example.org".utf8))
        #expect(s.receive(Array("PASS secret with spaces".utf8)) == [.authenticate(user: "alice@example.org", password: "secret with spaces")])
        #expect(s.authenticated(drop) == [.reply(.ok("3 message(s) (465 octets)"))])
        return s
    }

    func send(_ s: inout POP3Session, _ line: String) -> [POP3Session.Action] { s.receive(Array(line.utf8)) }

    @Test func passwordsAreRefusedBeforeTLSAndSTLSIsOffered() {
        var s = POP3Session(policy: .init(hostname: "pop.example"))
        guard case .reply(.lines(_, let caps)) = send(&s, "CAPA").first else { Issue.record("no CAPA listing"); return }
        #expect(caps.contains("STLS") && !caps.contains("USER") && !caps.contains("SASL PLAIN"))
        #expect(send(&s, "USER alice") == [.reply(.err("TLS is required first: use STLS", code: "SYS/PERM"))])
        #expect(send(&s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==") == [.reply(.err("TLS is required first: use STLS", code: "SYS/PERM"))])
        #expect(send(&s, "STLS") == [.reply(.ok("begin TLS negotiation")), .startTLS])
        s.tlsEstablished()
        guard case .reply(.lines(_, let after)) = send(&s, "capa").first else { Issue.record("no CAPA listing"); return }
        #expect(after.contains("USER") && after.contains("SASL PLAIN") && !after.contains("STLS"))
        #expect(send(&s, "STLS") == [.reply(.err("TLS is already active"))])
    }

    @Test func authPlainWithAndWithoutAnInitialResponse() {
        var s = POP3Session(policy: .init(hostname: "pop.example"), tls: true)
        // "\0alice\0secret"
        #expect(send(&s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==") == [.authenticate(user: "alice", password: "secret")])
        #expect(s.authenticated(nil) == [.reply(.err("the user name or password is wrong, or sign-in is locked for a while", code: "AUTH"))])
        #expect(send(&s, "AUTH PLAIN") == [.reply(.challenge)])
        #expect(s.isAwaitingSASL)
        #expect(send(&s, "AGFsaWNlAHNlY3JldA==") == [.authenticate(user: "alice", password: "secret")])
        #expect(s.isWaiting)
        #expect(send(&s, "STAT").isEmpty, "nothing is read while the sign-in is checked")
        #expect(s.authenticated([]) == [.reply(.ok("0 message(s) (0 octets)"))])
        #expect(s.state == .transaction)
    }

    @Test func threeFailedSignInsClose() {
        var s = POP3Session(policy: .init(hostname: "pop.example"), tls: true)
        for n in 1...3 {
            _ = send(&s, "USER alice")
            _ = send(&s, "PASS wrong")
            let actions = s.authenticated(nil)
            #expect(actions.contains(.close) == (n == 3))
        }
        #expect(s.state == .closed)
    }

    @Test func listingsCountOnlyMessagesNotDeleted() {
        var s = signedIn()
        #expect(send(&s, "STAT") == [.reply(.ok("3 465"))])
        #expect(send(&s, "LIST") == [.reply(.lines("listing follows", ["1 120", "2 300", "3 45"]))])
        #expect(send(&s, "UIDL 2") == [.reply(.ok("2 7.2"))])
        #expect(send(&s, "DELE 2") == [.reply(.ok("message 2 deleted"))])
        #expect(send(&s, "STAT") == [.reply(.ok("2 165"))])
        #expect(send(&s, "UIDL") == [.reply(.lines("listing follows", ["1 7.1", "3 7.5"]))])
        #expect(send(&s, "RETR 2") == [.reply(.err("message 2 is deleted"))])
        #expect(send(&s, "LIST 4") == [.reply(.err("no message 4 (there are 3)"))])
        #expect(send(&s, "LIST 99999999999") == [.reply(.err("\"99999999999\" is not a message number"))])
        #expect(send(&s, "RSET") == [.reply(.ok("3 message(s)"))])
        #expect(send(&s, "STAT") == [.reply(.ok("3 465"))])
    }

    @Test func retrAndTopAskForTheMessage() {
        var s = signedIn()
        #expect(send(&s, "RETR 3") == [.retrieve(uid: "7.5", bodyLines: nil)])
        #expect(s.retrieved(Array("Subject: x\r\n\r\n.hidden\r\nbody\r\n".utf8)) == [.reply(.message("45 octets", Array("Subject: x\r\n\r\n.hidden\r\nbody\r\n".utf8)))])
        #expect(send(&s, "TOP 1 0") == [.retrieve(uid: "7.1", bodyLines: 0)])
        #expect(s.retrieved(nil) == [.reply(.err("message 1 is no longer there"))])
        #expect(send(&s, "TOP 1") == [.reply(.err("TOP takes a message number and a line count"))])
    }

    @Test func deletionsHappenOnlyAtQuitInTheTransactionState() {
        var s = signedIn()
        _ = send(&s, "DELE 1")
        _ = send(&s, "DELE 3")
        #expect(send(&s, "QUIT") == [.update(deleting: ["7.1", "7.5"])])
        #expect(s.state == .update)
        #expect(s.updated(true) == [.reply(.ok("pop.example signing off (2 message(s) deleted)")), .close])

        var timedOut = signedIn()
        _ = send(&timedOut, "DELE 1")
        #expect(timedOut.timedOut() == [.reply(.err("idle for too long; closing (nothing deleted)")), .close], "no UPDATE without QUIT")

        var nothing = signedIn()
        #expect(send(&nothing, "QUIT") == [.reply(.ok("pop.example signing off")), .close])
    }

    @Test func badInputGetsAReasonAndTheSessionGoesOnUntilTooManyErrors() {
        var s = signedIn()
        #expect(send(&s, "XYZZY") == [.reply(.err("unknown command"))])
        #expect(s.receive([0x52, 0x45, 0x54, 0x52, 0x20, 0x1B, 0x31]) == [.reply(.err("the command line holds a byte that is not printable ASCII"))])
        #expect(s.lineTooLong() == [.reply(.err("the command line is too long (at most 255 octets)"))])
        #expect(send(&s, "NOOP") == [.reply(.ok(""))])
        for _ in 0..<6 { _ = send(&s, "BAD") }
        #expect(send(&s, "BAD").contains(.close))
        #expect(s.state == .closed)
    }

    @Test func messagesAreDotStuffedWithCRLFLinesAndEndWithADot() {
        let encoded = POP3Reply.message("x", Array(".a\nb\r\n..c\rd".utf8)).encoded
        #expect(String(decoding: encoded, as: UTF8.self) == "+OK x\r\n..a\r\nb\r\n...c\r\nd\r\n.\r\n")
        #expect(String(decoding: POP3Reply.err("no", code: "AUTH").encoded, as: UTF8.self) == "-ERR [AUTH] no\r\n")
    }

    /// Fed byte by byte through the line input, a session answers as it does to whole lines.
    @Test func aSessionFedByteByByteAnswersTheSame() {
        var whole = signedIn()
        var bytewise = signedIn()
        let script = "STAT\r\nLIST\r\nDELE 1\r\nUIDL\r\nNOOP\r\nRSET\r\nLIST 2\r\n"
        var expected: [POP3Session.Action] = []
        for line in script.split(separator: "\r\n") { expected += whole.receive(Array(line.utf8)) }
        var input = SMTPInputBuffer()
        var got: [POP3Session.Action] = []
        for byte in script.utf8 {
            input.append([byte])
            while let line = input.takeLine(limit: POP3Session.maxCommandLine) {
                if case .line(let l) = line { got += bytewise.receive(l) } else { got += bytewise.lineTooLong() }
            }
        }
        #expect(got == expected)
    }
}
