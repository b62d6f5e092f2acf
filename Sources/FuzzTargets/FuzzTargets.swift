import CryptographicMessageSyntax
import DNSCore
import IMAPCore
import InternetMessage
import LDAPCore
import PKCS12
import POP3Core
import SMTPCore

/// The parsers that face the network and files, each as one function from
/// arbitrary bytes to nothing: it must return (after a clean refusal or a
/// parse), never trap, loop or grow without bound. libFuzzer drives them in
/// `hisp-fuzz` (scripts/fuzz); the tests replay the corpus and every input a
/// run found (Tests/Fuzz).
public enum FuzzTarget: String, CaseIterable, Sendable {
    case mime, cms, dns, smtp, pop3, imap, ldap, pkcs12

    public func run(_ bytes: [UInt8]) {
        switch self {
        case .mime: Self.mime(bytes)
        case .cms: Self.cms(bytes)
        case .dns: Self.dns(bytes)
        case .smtp: Self.smtp(bytes)
        case .pop3: Self.pop3(bytes)
        case .imap: Self.imap(bytes)
        case .ldap: _ = try? LDAPMessage(parsing: bytes[...])
        case .pkcs12: _ = try? PKCS12.read(bytes, password: "fuzz")
        }
    }

    /// RFC 5322 / MIME: the entity tree, every header read the HISP reads, and the notification parser.
    static func mime(_ bytes: [UInt8]) {
        guard let entity = try? MIMEEntity(parsing: bytes) else { return }
        var stack = [entity]
        var visited = 0
        while let e = stack.popLast(), visited < 10_000 {
            visited += 1
            _ = e.contentType
            _ = e.headers.repeatedSingleOccurrenceField
            for f in e.headers { _ = f.decodedValue }
            if let from = e.headers["From"] { _ = AddressList.single(from) }
            stack.append(contentsOf: e.parts)
        }
        _ = Notifications.parse(entity)
    }

    /// RFC 5652: a ContentInfo and, by its type, the SignedData, EnvelopedData or AuthEnvelopedData inside.
    static func cms(_ bytes: [UInt8]) {
        guard let info = try? ContentInfo.parse(bytes) else { return }
        _ = try? info.unwrap(SignedData.self, expecting: CMSOID.signedData)
        _ = try? info.unwrap(EnvelopedData.self, expecting: CMSOID.envelopedData)
        _ = try? info.unwrap(AuthEnvelopedData.self, expecting: CMSOID.authEnvelopedData)
    }

    /// RFC 1035: the message parser, the answer-cache key, and the authoritative responder answering it.
    static func dns(_ bytes: [UInt8]) {
        _ = try? DNSMessage(parsing: bytes)
        // Made per input (a static one was reported by LeakSanitizer, which does not see every Swift global as a root).
        let responder = Self.responder()
        for transport in [AuthoritativeResponder.Transport.udp, .tcp] {
            if let key = QueryKey.read(bytes, transport: transport) { _ = key.key.query() }
            _ = responder.respond(to: bytes, over: transport)
        }
    }

    static func responder() -> AuthoritativeResponder {
        guard let origin = try? DNSName("direct.example.org"), let host = try? DNSName("hisp.direct.example.org"),
              let alice = try? DNSName("alice.direct.example.org"), let rname = try? DNSName("hostmaster.direct.example.org")
        else { return AuthoritativeResponder(zones: []) }
        let zone = Zone(origin: origin, soa: SOAData(mname: host, rname: rname, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 300),
                        ttl: 3600, records: [
                            DNSRecord(name: origin, ttl: 3600, data: .ns(host)),
                            DNSRecord(name: origin, ttl: 3600, data: .mx(preference: 10, exchange: host)),
                            DNSRecord(name: host, ttl: 3600, data: .a([192, 0, 2, 1])),
                            DNSRecord(name: alice, ttl: 3600, data: .cert(CERTData(certificateType: CERTData.pkix, certificate: [0x30, 0x00]))),
                        ])
        return AuthoritativeResponder(zones: [zone])
    }

    /// RFC 5321: the bytes as a client's side of a session, through the input framing, the
    /// command parser and the session state machine; every check the session asks for is
    /// answered yes, so that all states are reached.
    static func smtp(_ bytes: [UInt8]) {
        var session = SMTPServerSession(policy: SMTPServerSession.Policy(hostname: "mx.test", role: .submission, maxMessageBytes: 100_000,
                                                                          requireTLS: false), tls: true)
        var input = SMTPInputBuffer()
        var reader: SMTPDataReader?
        // The bytes arrive in pieces, as from a network.
        var offset = 0
        var steps = 0
        while offset < bytes.count && steps < 100_000 {
            let piece = min(bytes.count - offset, 1 + Int(bytes[offset] % 64))
            input.append(bytes[offset..<(offset + piece)])
            offset += piece
            var progressed = true
            while progressed && steps < 100_000 {
                steps += 1
                progressed = false
                switch session.mode {
                case .closed:
                    return
                case .waiting:
                    break
                case .data:
                    var current = reader ?? session.dataReader()
                    if let outcome = input.read(into: &current) {
                        reader = nil
                        answer(session.dataFinished(outcome), &session)
                        progressed = true
                    } else {
                        reader = current
                    }
                case .command:
                    if let line = input.takeLine(limit: SMTPCommand.maxLineLength) {
                        answer(session.receive(line), &session)
                        progressed = true
                    }
                }
            }
        }
    }

    /// Feeds a yes to every check the session asked for.
    static func answer(_ actions: [SMTPServerSession.Action], _ session: inout SMTPServerSession) {
        for action in actions {
            switch action {
            case .checkSender: answer(session.senderChecked(nil), &session)
            case .checkRecipient: answer(session.recipientChecked(nil), &session)
            case .authenticate: answer(session.authenticated(true), &session)
            case .deliver: answer(session.delivered(SMTPReply(250, "2.0.0", "ok")), &session)
            case .startTLS: session.tlsEstablished()
            case .reply, .close: break
            }
        }
    }

    /// A POP3 session fed in pieces; every sign-in succeeds into a maildrop of three
    /// messages, every retrieval returns a small message, and its reply is encoded.
    static func pop3(_ bytes: [UInt8]) {
        var session = POP3Session(policy: POP3Session.Policy(hostname: "pop.test"))
        var input = SMTPInputBuffer()
        var offset = 0
        var steps = 0
        while offset < bytes.count && steps < 100_000 {
            let piece = min(bytes.count - offset, 1 + Int(bytes[offset] % 64))
            input.append(bytes[offset..<(offset + piece)])
            offset += piece
            while steps < 100_000, session.state != .closed {
                steps += 1
                let limit = session.isAwaitingSASL ? POP3Session.maxSASLLine : POP3Session.maxCommandLine
                guard let line = input.takeLine(limit: limit) else { break }
                switch line {
                case .line(let l): answer(session.receive(l), &session)
                case .tooLong: answer(session.lineTooLong(), &session)
                }
            }
            if session.state == .closed { return }
        }
    }

    static func answer(_ actions: [POP3Session.Action], _ session: inout POP3Session) {
        for action in actions {
            switch action {
            case .authenticate:
                answer(session.authenticated([POP3Message(uid: "1.1", size: 20), POP3Message(uid: "1.2", size: 30), POP3Message(uid: "1.3", size: 0)]), &session)
            case .retrieve(_, let lines):
                let message = Array("Subject: x\r\n\r\n.line\r\nmore\r\n".utf8)
                answer(session.retrieved(lines.map { POP3Reply.top(of: message, lines: $0) } ?? message), &session)
            case .update: answer(session.updated(true), &session)
            case .startTLS: session.tlsEstablished()
            case .reply(let r): _ = r.encoded
            case .close: break
            }
        }
    }

    /// IMAP commands cut from bytes arriving in pieces (literals included) and parsed.
    static func imap(_ bytes: [UInt8]) {
        var input = IMAPCommandInput(limits: .init(maxLine: 8192, maxLiteral: 65_536, maxLiterals: 16))
        var offset = 0
        var steps = 0
        while offset < bytes.count && steps < 100_000 {
            let piece = min(bytes.count - offset, 1 + Int(bytes[offset] % 64))
            input.append(bytes[offset..<(offset + piece)])
            offset += piece
            while steps < 100_000, let event = input.next() {
                steps += 1
                switch event {
                case .command(let command): _ = IMAPParser.parse(command)
                case .fatal: return
                case .continueLiteral, .lineTooLong, .literalTooLarge: break
                }
            }
        }
    }
}
