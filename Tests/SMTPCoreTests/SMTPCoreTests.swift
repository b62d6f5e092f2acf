import SMTPCore
import Testing

/// Runs a session the way the network handler does: bytes in (in chunks of
/// any size), actions out, checks answered by a script.
struct ScriptedServer {
    var session: SMTPServerSession
    var input = SMTPInputBuffer()
    var reader: SMTPDataReader?
    var replies: [SMTPReply] = []
    var delivered: [(SMTPEnvelope, [UInt8])] = []
    var closed = false
    var tlsStarts = 0
    var acceptRecipient: (String) -> SMTPReply? = { _ in nil }
    var credentials: [String: String] = ["alice@a.example": "correct horse"]

    init(role: SMTPServerSession.Role, tls: Bool = true, maxMessageBytes: Int = 10_000, maxRecipients: Int = 3) {
        session = SMTPServerSession(
            policy: .init(hostname: "mx.test", role: role, maxMessageBytes: maxMessageBytes, maxRecipients: maxRecipients), tls: tls)
    }

    mutating func send(_ text: String, chunk: Int = .max) {
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count && !closed {
            let end = min(bytes.count, i + chunk)
            input.append(bytes[i..<end])
            i = end
            pump()
        }
    }

    mutating func pump() {
        while !closed {
            switch session.mode {
            case .closed, .waiting: return
            case .data:
                if reader == nil { reader = session.dataReader() }
                guard let outcome = input.read(into: &reader!) else { return }
                reader = nil
                run(session.dataFinished(outcome))
            case .command:
                guard let line = input.takeLine(limit: SMTPCommand.maxLineLength) else { return }
                run(session.receive(line))
            }
        }
    }

    mutating func run(_ actions: [SMTPServerSession.Action]) {
        for action in actions {
            switch action {
            case .reply(let r): replies.append(r)
            case .close: closed = true
            case .startTLS:
                tlsStarts += 1
                input.discardAll()
                session.tlsEstablished()
            case .checkSender: run(session.senderChecked(nil))
            case .checkRecipient(let rcpt, _, _): run(session.recipientChecked(acceptRecipient(rcpt)))
            case .authenticate(let user, let password): run(session.authenticated(credentials[user] == password))
            case .deliver(let env, let bytes):
                delivered.append((env, bytes))
                run(session.delivered(SMTPReply(250, "2.0.0", "queued")))
            }
        }
    }

    var codes: [Int] { replies.map(\.code) }
}

@Suite struct SMTPCoreTests {
    @Test func pipelinedTransactionDeliversUnstuffedData() {
        for chunk in [1, 2, 7, 64, Int.max] {
            var s = ScriptedServer(role: .inbound)
            s.send("EHLO peer.test\r\nMAIL FROM:<a@peer.test> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<bob@mx.test>\r\nDATA\r\n"
                   + "Subject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n", chunk: chunk)
            #expect(s.codes == [250, 250, 250, 354, 250, 221], "chunk \(chunk)")
            #expect(s.delivered.count == 1)
            #expect(s.delivered.first.map { String(decoding: $0.1, as: UTF8.self) } == "Subject: hi\r\n\r\n.leading dot\r\n")
            #expect(s.delivered.first?.0.recipients == ["bob@mx.test"])
            #expect(s.closed)
        }
    }

    @Test func ehloAdvertisesExtensionsAndAuthOnlyOverTLSOnSubmission() {
        var plain = ScriptedServer(role: .submission, tls: false)
        plain.send("EHLO c\r\n")
        let lines = plain.replies[0].lines
        #expect(lines.contains("PIPELINING") && lines.contains("8BITMIME") && lines.contains("ENHANCEDSTATUSCODES"))
        #expect(lines.contains("SIZE 10000") && lines.contains("STARTTLS") && !lines.contains { $0.hasPrefix("AUTH") })
        var tls = ScriptedServer(role: .submission, tls: true)
        tls.send("EHLO c\r\n")
        #expect(tls.replies[0].lines.contains("AUTH PLAIN LOGIN") && !tls.replies[0].lines.contains("STARTTLS"))
        var mx = ScriptedServer(role: .inbound, tls: true)
        mx.send("EHLO c\r\n")
        #expect(!mx.replies[0].lines.contains { $0.hasPrefix("AUTH") })
    }

    @Test func authBeforeTLSIsRefusedWith538() {
        var s = ScriptedServer(role: .submission, tls: false)
        s.send("EHLO c\r\nAUTH PLAIN AGFsaWNlQGEuZXhhbXBsZQBjb3JyZWN0IGhvcnNl\r\nMAIL FROM:<alice@a.example>\r\n")
        #expect(s.codes == [250, 538, 530])
        #expect(s.replies[1].enhanced == "5.7.11")
    }

    @Test func startTLSDiscardsPipelinedPlaintextAndResetsState() {
        var s = ScriptedServer(role: .submission, tls: false)
        // CVE-2011-0411: commands injected after STARTTLS in the same packet must not run.
        s.send("EHLO c\r\nSTARTTLS\r\nMAIL FROM:<alice@a.example>\r\n")
        #expect(s.codes == [250, 220])
        #expect(s.tlsStarts == 1 && s.session.tls)
        s.send("MAIL FROM:<alice@a.example>\r\n")
        #expect(s.replies.last?.code == 503)  // EHLO again after TLS (RFC 3207 4.2)
        s.send("STARTTLS\r\n")
        #expect(s.replies.last?.code == 503)
    }

    @Test func authPlainLoginAndFailures() {
        var s = ScriptedServer(role: .submission)
        // AGFsaWNlQGEuZXhhbXBsZQBjb3JyZWN0IGhvcnNl = \0alice@a.example\0correct horse
        s.send("EHLO c\r\nMAIL FROM:<alice@a.example>\r\nAUTH PLAIN AGFsaWNlQGEuZXhhbXBsZQBjb3JyZWN0IGhvcnNl\r\nAUTH PLAIN\r\n")
        #expect(s.codes == [250, 530, 235, 503])
        var login = ScriptedServer(role: .submission)
        // YWxpY2VAYS5leGFtcGxl = alice@a.example, Y29ycmVjdCBob3JzZQ== = correct horse
        login.send("EHLO c\r\nAUTH LOGIN\r\nYWxpY2VAYS5leGFtcGxl\r\nY29ycmVjdCBob3JzZQ==\r\n")
        #expect(login.codes == [250, 334, 334, 235])
        var bad = ScriptedServer(role: .submission)
        bad.send("EHLO c\r\nAUTH LOGIN YWxpY2VAYS5leGFtcGxl\r\nd3Jvbmc=\r\nAUTH PLAIN\r\n*\r\nAUTH CRAM-MD5\r\nAUTH PLAIN !!!\r\n")
        #expect(bad.codes == [250, 334, 535, 334, 501, 504, 501])
        #expect(bad.replies[2].enhanced == "5.7.8")
        var locked = ScriptedServer(role: .submission)
        locked.send("EHLO c\r\n" + String(repeating: "AUTH PLAIN AHgAeQ==\r\n", count: 5))
        #expect(locked.codes == [250, 535, 535, 535, 421])
        #expect(locked.closed)
    }

    @Test func inboundRefusesAuthAndRequiresTLS() {
        var s = ScriptedServer(role: .inbound, tls: false)
        s.send("EHLO c\r\nAUTH PLAIN AHgAeQ==\r\nMAIL FROM:<a@b.test>\r\n")
        #expect(s.codes == [250, 503, 530])
    }

    @Test func badSequencesAndCommands() {
        var s = ScriptedServer(role: .inbound)
        s.send("MAIL FROM:<a@b.test>\r\nEHLO c\r\nRCPT TO:<x@mx.test>\r\nDATA\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n"
               + "FROB\r\nMAIL FROM:a@b.test\r\nRSET\r\nRCPT TO:<x@mx.test>\r\nVRFY x\r\nNOOP\r\nMAIL FROM:<> FOO=1\r\nDATA extra\r\n")
        #expect(s.codes == [503, 250, 503, 503, 250, 503, 554, 500, 501, 250, 503, 252, 250, 555, 501])
        #expect(s.replies[7].enhanced == "5.5.2")
    }

    @Test func tooManyErrorsCloses() {
        var s = ScriptedServer(role: .inbound)
        s.send(String(repeating: "BOGUS\r\n", count: 12))
        #expect(s.codes.suffix(2) == [500, 421])
        #expect(s.closed && s.codes.count == 11)
    }

    @Test func recipientLimitAndRefusals() {
        var s = ScriptedServer(role: .inbound, maxRecipients: 2)
        s.acceptRecipient = { $0.hasSuffix("@mx.test") ? nil : SMTPReply(550, "5.7.1", "relaying denied") }
        s.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nRCPT TO:<c@mx.test>\r\n")
        #expect(s.codes == [250, 250, 550, 250, 250, 452])
        #expect(s.replies.last?.enhanced == "4.5.3")
    }

    @Test func sizeLimitsAtMailAndAfterData() {
        var s = ScriptedServer(role: .inbound, maxMessageBytes: 100)
        s.send("EHLO c\r\nMAIL FROM:<a@b.test> SIZE=101\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\n"
               + String(repeating: "0123456789\r\n", count: 20) + ".\r\nNOOP\r\n")
        #expect(s.codes == [250, 552, 250, 250, 354, 552, 250])
        #expect(s.delivered.isEmpty)
    }

    @Test func malformedDataIsRejected() {
        // Bare LF: the SMTP smuggling vector; the session ends.
        var lf = ScriptedServer(role: .inbound)
        lf.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\nSubject: x\n.\nMAIL FROM:<evil@b.test>\r\n")
        #expect(lf.codes == [250, 250, 250, 354, 554] && lf.closed && lf.delivered.isEmpty)
        // Bare CR inside a line, and a line over 998 characters: rejected, the session goes on.
        var cr = ScriptedServer(role: .inbound)
        cr.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\nA\r.\rB\r\n.\r\n"
                + "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\n" + String(repeating: "x", count: 999) + "\r\n.\r\nNOOP\r\n")
        #expect(cr.codes == [250, 250, 250, 354, 554, 250, 250, 354, 554, 250])
        #expect(cr.delivered.isEmpty && !cr.closed)
    }

    @Test func overlongCommandLine() {
        var s = ScriptedServer(role: .inbound)
        s.send("EHLO " + String(repeating: "a", count: 5000) + "\r\nNOOP\r\n", chunk: 100)
        #expect(s.codes == [500, 250])
    }

    @Test func commandParsing() async throws {
        #expect(try SMTPCommand.parse(Array("MAIL FROM:<@relay.test:a@b.test>".utf8)) == .mail(reversePath: "a@b.test", parameters: []))
        #expect(try SMTPCommand.parse(Array("mail from: <>".utf8)) == .mail(reversePath: "", parameters: []))
        #expect(try SMTPCommand.parse(Array("RCPT TO:<\"odd local\"@b.test>".utf8)) == .rcpt(forwardPath: "\"odd local\"@b.test", parameters: []))
        #expect(throws: SMTPCommandError.self) { try SMTPCommand.parse(Array("RCPT TO:<>".utf8)) }
        #expect(throws: SMTPCommandError.self) { try SMTPCommand.parse(Array("RCPT TO:<a..b@c.test>".utf8)) }
        #expect(throws: SMTPCommandError.self) { try SMTPCommand.parse(Array("RCPT TO:<a@b_c.test>".utf8)) }
        #expect(throws: SMTPCommandError.self) { try SMTPCommand.parse([0x4E, 0x4F, 0x4F, 0x50, 0x00]) }
    }

    @Test func replyEncodingAndParsing() async throws {
        let r = SMTPReply(250, nil, ["mx.test", "PIPELINING", "SIZE 10"])
        #expect(String(decoding: r.encoded, as: UTF8.self) == "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n")
        var p = SMTPReplyParser()
        #expect(try p.feed(Array("550-5.1.1 no such".utf8)) == nil)
        let parsed = try #require(try p.feed(Array("550 5.1.1 mailbox".utf8)))
        #expect(parsed == SMTPReply(550, "5.1.1", ["no such", "mailbox"]))
        #expect(throws: SMTPProtocolError.self) { try p.feed(Array("hello".utf8)) }
    }
}
