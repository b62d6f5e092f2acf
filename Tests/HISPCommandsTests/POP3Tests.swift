import Crypto
import DirectCore
import Foundation
import HISPApp
import HISPTesting
import Logging
import SQLiteStore
import Storage
import Testing
@testable import HISPCommands

/// POP3 with Python's poplib as the client (a real peer), against a whole HISP
/// in this process: STLS and implicit TLS, the maildrop lock, deletion only at
/// QUIT, UIDs that stay the same, and sign-in refusals that all read alike.
@Suite struct POP3Tests {
    static let script = #"""
import json, poplib, ssl, sys
host, plain, implicit, cafile, user, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
out = {}
def err(f):
    try:
        f()
        return "no error"
    except poplib.error_proto as e:
        return e.args[0].decode()
p = poplib.POP3(host, plain, timeout=30)
out["greeting"] = p.getwelcome().decode()
out["capa_before"] = sorted(p.capa().keys())
out["user_before_tls"] = err(lambda: p.user(user))
p.stls(ctx)
out["capa_after"] = sorted(p.capa().keys())
out["wrong_password"] = err(lambda: (p.user(user), p.pass_("wrong")))
out["unknown_user"] = err(lambda: (p.user("nobody@" + user.split("@")[1]), p.pass_(password)))
p.user(user)
out["pass"] = p.pass_(password).decode()
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["retr"] = [b"\r\n".join(p.retr(n)[1]).decode() + "\r\n" for n in range(1, out["stat"][0] + 1)]
out["top"] = b"\r\n".join(p.top(1, 1)[1]).decode()
# A second session while this one holds the maildrop.
q = poplib.POP3_SSL(host, implicit, context=ctx, timeout=30)
q.user(user)
out["in_use"] = err(lambda: q.pass_(password))
q.quit()
p.dele(1)
out["retr_deleted"] = err(lambda: p.retr(1))
p.rset()
p.dele(2)
out["stat_after_dele"] = list(p.stat())
out["quit"] = p.quit().decode()
r = poplib.POP3_SSL(host, implicit, context=ctx, timeout=30)
r.user(user)
r.pass_(password)
out["uidl_after"] = [l.decode() for l in r.uidl()[1]]
r.dele(1)
# No QUIT: the session just ends, and nothing is deleted.
r.file.close(); r.sock.close()
# The server frees the maildrop when it sees the connection close; a client that comes back
# at once may find it still held (IN-USE) and tries again, as mail clients do.
import time
for attempt in range(50):
    s = poplib.POP3_SSL(host, implicit, context=ctx, timeout=30)
    s.user(user)
    try:
        s.pass_(password)
        break
    except poplib.error_proto as e:
        if b"IN-USE" not in e.args[0]: raise
        s.quit()
        time.sleep(0.1)
out["stat_after_drop"] = list(s.stat())
s.quit()
print(json.dumps(out))
"""#

    /// A whole HISP with POP3 and IMAP on ports 0, Bob's mailbox and three messages in his INBOX.
    struct Running {
        let ws: Workspace
        let store: HISPStore
        let server: HISPServer
        let summary: HISPServer.Summary
        let bob = DirectAddress("bob@direct.pop.test")!
        let password = "pop3 password with spaces"
        let bodies = [
            "From: alice@direct.a.test\r\nTo: bob@direct.pop.test\r\nSubject: one\r\nMessage-ID: <1@a>\r\n\r\nfirst line\r\nsecond line\r\n",
            "From: alice@direct.a.test\r\nTo: bob@direct.pop.test\r\nSubject: two\r\nMessage-ID: <2@a>\r\n\r\n.a line that starts with a dot\r\n..and two\r\n",
            "From: alice@direct.a.test\r\nTo: bob@direct.pop.test\r\nSubject: three\r\nMessage-ID: <3@a>\r\n\r\nthird\r\n",
        ]

        static func start(lockoutFailures: Int? = nil, imapSessionsPerUser: Int? = nil) async throws -> Running {
            let ws = try Workspace()
            let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: ws.path("hisp.sqlite"), create: true),
                                                   material: .keyFile(SymmetricKey(size: .bits256), origin: "test key"), actor: "test")
            let bob = DirectAddress("bob@direct.pop.test")!
            _ = try await Provisioning.addDomain("direct.pop.test", published: DomainDNS(host: "hisp.direct.pop.test", ipv4: "127.0.0.1"),
                                                 ca: nil, in: store)
            _ = try await Provisioning.addAddress(bob, passwordHash: try PasswordHash.make("pop3 password with spaces"), in: store)
            var c = AppConfiguration()
            c.inbound = .init(listen: "127.0.0.1:0")
            c.submission = .init(listen: "127.0.0.1:0")
            c.pop3 = .init(listen: "127.0.0.1:0", tlsListen: "127.0.0.1:0")
            c.imap = .init(listen: "127.0.0.1:0", tlsListen: "127.0.0.1:0", maxSessionsPerUser: imapSessionsPerUser)
            c.dns = .init(listen: "127.0.0.1:0")
            var resolver = AppConfiguration.Resolver()
            resolver.servers = ["127.0.0.1:9"]
            c.resolver = resolver
            if let lockoutFailures {
                var auth = AppConfiguration.Auth()
                auth.delayAfterFailures = lockoutFailures
                auth.lockoutFailures = lockoutFailures
                c.auth = auth
            }
            let (server, summary) = try await HISPServer.start(configuration: c, store: store, dataDirectory: ws.path("data"), fetcher: nil,
                                                               logger: Logger(label: "pop3-test"))
            let running = Running(ws: ws, store: store, server: server, summary: summary)
            for (n, body) in running.bodies.enumerated() {
                _ = try await store.addMessage(mailbox: bob, bytes: Array(body.utf8), metadata: MessageMetadata(
                    sender: "alice@direct.a.test", recipients: [bob.description], subject: "\(n)", messageID: "<\(n + 1)@a>"))
            }
            return running
        }

        func stop() async throws {
            await server.shutdown(grace: .seconds(1))
            try await store.close()
        }
    }

    @Test func poplibReadsAndDeletesOverSTLSAndImplicitTLS() async throws {
        let r = try await Running.start()
        let (ws, store, server, summary, bob, password, bodies) = (r.ws, r.store, r.server, r.summary, r.bob, r.password, r.bodies)
        let uidValidity = try await store.folderStatus(mailbox: bob, folder: "INBOX").uidValidity
        let plain = try #require(server.pop3?.port), implicit = try #require(server.pop3s?.port)
        #expect(summary.pop3 == "127.0.0.1:\(plain)")

        let script = try ws.write("pop.py", Self.script)
        let run = try await ws.runDetached("python3", [script, "127.0.0.1", "\(plain)", "\(implicit)", summary.tlsCertificate, bob.description, password])
        #expect(run.status == 0, "\(run.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any], "\(run.stderr)")
        #expect((out["greeting"] as? String)?.hasPrefix("+OK") == true)
        let before = out["capa_before"] as? [String] ?? [], after = out["capa_after"] as? [String] ?? []
        #expect(before.contains("STLS") && !before.contains("USER"))
        #expect(after.contains("USER") && after.contains("SASL") && after.contains("UIDL") && after.contains("TOP") && !after.contains("STLS"))
        #expect(out["user_before_tls"] as? String == "-ERR [SYS/PERM] TLS is required first: use STLS")
        // RFC 2449 8.1.2: one answer, whatever was wrong.
        #expect(out["wrong_password"] as? String == "-ERR [AUTH] the user name or password is wrong, or sign-in is locked for a while")
        #expect(out["unknown_user"] as? String == out["wrong_password"] as? String)
        let sizes = bodies.map(\.utf8.count)
        #expect(out["stat"] as? [Int] == [3, sizes.reduce(0, +)])
        #expect(out["list"] as? [String] == sizes.enumerated().map { "\($0.offset + 1) \($0.element)" })
        let uidl = (1...3).map { "\($0) \(uidValidity).\($0)" }
        #expect(out["uidl"] as? [String] == uidl)
        #expect(out["retr"] as? [String] == bodies, "exact bytes, dot-stuffing undone by the client")
        #expect(out["top"] as? String == "From: alice@direct.a.test\r\nTo: bob@direct.pop.test\r\nSubject: one\r\nMessage-ID: <1@a>\r\n\r\nfirst line")
        #expect(out["in_use"] as? String == "-ERR [IN-USE] the maildrop is open in another session")
        #expect(out["retr_deleted"] as? String == "-ERR message 1 is deleted")
        #expect(out["stat_after_dele"] as? [Int] == [2, sizes[0] + sizes[2]])
        #expect((out["quit"] as? String)?.contains("1 message(s) deleted") == true)
        #expect(out["uidl_after"] as? [String] == ["1 \(uidValidity).1", "2 \(uidValidity).3"], "the same UIDs in a new session")
        #expect(out["stat_after_drop"] as? [Int] == [2, sizes[0] + sizes[2]], "a session that ends without QUIT deletes nothing")

        #expect(try await store.folderStatus(mailbox: bob, folder: "INBOX").messages == 2)
        let events = try await store.auditEvents(limit: 200)
        #expect(events.filter { $0.event.action == "auth" && $0.event.object == "pop3" && $0.event.outcome == "ok" }.count == 4)
        #expect(events.contains { $0.event.action == "auth" && $0.event.object == "pop3" && $0.event.detail.contains("unknown account") })
        await store.flushReadEvents()
        #expect(try await store.auditEvents(limit: 500).filter { $0.event.action == "message.read" && $0.event.actor.contains("over POP3") }.count == 4)
        try await r.stop()
    }

    /// fetchmail as practice software runs it: with `keep` and UIDL it takes each
    /// message once and leaves it; without `keep` it takes what is new and deletes it all.
    @Test func fetchmailKeepsWithUIDLAndFetchesNothingTwiceThenDeletes() async throws {
        let r = try await Running.start()
        let port = try #require(r.server.pop3s?.port)
        let out = r.ws.path("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        func rc(keep: Bool) throws -> String {
            let path = try r.ws.write(keep ? "keep.rc" : "delete.rc", """
                set no syslog
                set idfile "\(r.ws.path("fetchids"))"
                poll 127.0.0.1 service \(port) protocol POP3 uidl
                  user "\(r.bob)" there with password "\(r.password)"
                  ssl sslcertck sslcertfile "\(r.summary.tlsCertificate)" sslcommonname "hisp.direct.pop.test" sslproto "TLS1.2+"
                  \(keep ? "keep" : "nokeep fetchall")
                  mda "/bin/sh -c 'cat > $(mktemp \(out)/msg-XXXXXX)'"

                """)
            chmod(path, 0o600)
            return path
        }
        func fetch(keep: Bool) async throws -> ProcessResult {
            try await r.ws.runDetached("env", ["HOME=\(r.ws.url.path)", "FETCHMAILHOME=\(r.ws.url.path)", "fetchmail", "-f", try rc(keep: keep), "--nodetach"])
        }
        func fetched() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: out).sorted().map { try String(contentsOfFile: "\(out)/\($0)", encoding: .utf8) }
        }
        let first = try await fetch(keep: true)
        #expect(first.status == 0, "\(first.stdoutText) \(first.stderr)")
        #expect(try fetched().count == 3)
        for body in r.bodies {
            let subject = body.split(separator: "\r\n").first { $0.hasPrefix("Subject:") }.map(String.init) ?? ""
            #expect(try fetched().contains { $0.contains(subject) && $0.contains(body.components(separatedBy: "\r\n\r\n")[1].replacingOccurrences(of: "\r\n", with: "\n").prefix(20)) },
                    "\(subject) not fetched")
        }
        // Again with keep: nothing new (fetchmail exits 1, "no mail").
        let second = try await fetch(keep: true)
        #expect(second.status == 1, "\(second.stdoutText) \(second.stderr)")
        #expect(try fetched().count == 3, "nothing fetched twice")
        #expect(try await r.store.folderStatus(mailbox: r.bob, folder: "INBOX").messages == 3)
        // A new message, then a run that deletes: everything is taken and removed from the HISP.
        _ = try await r.store.addMessage(mailbox: r.bob, bytes: Array("Subject: four\r\n\r\nfourth\r\n".utf8),
                                         metadata: MessageMetadata(sender: "alice@direct.a.test", recipients: [r.bob.description], subject: "4", messageID: "<4@a>"))
        let third = try await fetch(keep: false)
        #expect(third.status == 0, "\(third.stdoutText) \(third.stderr)")
        #expect(try fetched().count == 7)
        #expect(try await r.store.folderStatus(mailbox: r.bob, folder: "INBOX").messages == 0)
        try await r.stop()
    }
}
