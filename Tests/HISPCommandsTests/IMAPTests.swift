import Foundation
import HISPTesting
import Storage
import Testing

/// IMAP with Python's imaplib as the client (a real peer), against a whole HISP in this process.
@Suite struct IMAPTests {
    static let script = #"""
import imaplib, json, re, socket, ssl, sys, time
host, plain, implicit, cafile, user, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
out = {}
def text(data):
    return [d.decode() if isinstance(d, bytes) else [x.decode() for x in d] for d in data if d is not None]
a = imaplib.IMAP4(host, plain)
out["caps_before"] = sorted(a.capabilities)
try:
    a.login(user, password)
    out["login_before_tls"] = "accepted"
except imaplib.IMAP4.error as e:
    out["login_before_tls"] = str(e)
a.starttls(ssl_context=ctx)
try:
    a.login(user, "wrong")
except imaplib.IMAP4.error as e:
    out["wrong_password"] = str(e)
a.login(user, password)
out["caps_after"] = sorted(a.capabilities)
out["list"] = text(a.list()[1])
typ, data = a.select("INBOX")
out["select"] = [typ, data[0].decode()]
out["uidvalidity"] = a.untagged_responses.get("UIDVALIDITY", [b""])[0].decode() if "UIDVALIDITY" in a.untagged_responses else None
typ, data = a.fetch("1:*", "(FLAGS RFC822.SIZE)")
out["fetch_flags"] = text(data)
bodies = []
for n in (1, 2, 3):
    typ, data = a.uid("FETCH", str(n), "(BODY.PEEK[])")
    bodies.append(data[0][1].decode())
out["bodies"] = bodies
typ, data = a.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out["header_fields"] = data[0][1].decode()
typ, data = a.fetch("2", "(ENVELOPE BODYSTRUCTURE)")
out["envelope"] = data[0].decode()
out["unseen"] = a.search(None, "UNSEEN")[1][0].decode()
a.fetch("1", "(BODY[])")
out["seen_after_fetch"] = a.search(None, "SEEN")[1][0].decode()
typ, data = a.store("2", "+FLAGS", "(\\Flagged $Referral)")
out["store"] = text(data)
out["flagged"] = a.search(None, "FLAGGED")[1][0].decode()
out["subject_search"] = a.uid("SEARCH", None, "SUBJECT", "two")[1][0].decode()
out["body_search"] = a.search(None, "BODY", "dot")[1][0].decode()
out["or_search"] = a.search(None, "OR", "KEYWORD", "$Referral", "LARGER", "150")[1][0].decode()
out["create"] = a.create("Referrals")[0]
out["create_utf7"] = a.create('"Patienten M&APw-ller"')[0]
out["list_after_create"] = text(a.list('""', "*")[1])
typ, data = a.uid("COPY", "1", "Referrals")
out["copy"] = [typ, text(a.response("COPYUID")[1])]
typ, data = a.uid("MOVE", "3", "Archive")
out["move"] = [typ, text(data)]
out["status"] = text(a.status("Archive", "(MESSAGES UIDNEXT UNSEEN)")[1])
out["append"] = [a.append("Drafts", "(\\Draft)", None, b"From: bob@direct.pop.test\r\nSubject: draft\r\n\r\nnot yet\r\n")[0],
                 text(a.untagged_responses.get("APPENDUID", []))]
out["append_inbox"] = None
try:
    out["append_inbox"] = str(a.append("INBOX", None, None, b"Subject: x\r\n\r\ny\r\n"))
except imaplib.IMAP4.error as e:
    out["append_inbox"] = str(e)
# A second session on INBOX, idling, sees the first's flag change and a new message.
b = imaplib.IMAP4_SSL(host, implicit, ssl_context=ctx, timeout=30)
b.login(user, password)
b.select("INBOX")
tag = b._new_tag().decode()
b.send(f"{tag} IDLE\r\n".encode())
out["idle_start"] = b.readline().decode().strip()
t0 = time.time()
a.store("1", "+FLAGS", "(\\Answered)")
seen = b.readline().decode().strip()
out["idle_flags"] = [seen, round(time.time() - t0, 3)]
t1 = time.time()
a.select("Referrals")
a.uid("COPY", "1", "INBOX")
out["idle_exists"] = [b.readline().decode().strip(), round(time.time() - t1, 3)]
b.send(b"DONE\r\n")
out["idle_done"] = b.readline().decode().strip()
# Expunge in A; B is told at its next command.
a.select("INBOX")
a.store("1", "+FLAGS", "(\\Deleted)")
out["expunge"] = text(a.expunge()[1])
# The change reaches B's session as soon as it is durable; a NOOP may come just before it does.
for attempt in range(40):
    b.noop()
    if "EXPUNGE" in b.untagged_responses: break
    time.sleep(0.05)
out["b_noop"] = text(b.untagged_responses.get("EXPUNGE", []))
out["bad"] = None
try:
    a.xatom("FROBNICATE")
except imaplib.IMAP4.error as e:
    out["bad"] = str(e)
out["still_alive"] = a.noop()[0]
a.logout()
b.logout()
print(json.dumps(out))
"""#

    @Test func imaplibUsesEveryCommandAndAnIdleSessionSeesChangesAtOnce() async throws {
        let r = try await POP3Tests.Running.start()
        let plain = try #require(r.server.imap?.port), implicit = try #require(r.server.imaps?.port)
        let uidValidity = try await r.store.folderStatus(mailbox: r.bob, folder: "INBOX").uidValidity
        let script = try r.ws.write("imap.py", Self.script)
        let run = try await r.ws.runDetached("python3", [script, "127.0.0.1", "\(plain)", "\(implicit)", r.summary.tlsCertificate, r.bob.description, r.password])
        #expect(run.status == 0, "\(run.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any], "\(run.stderr)")
        let before = out["caps_before"] as? [String] ?? [], after = out["caps_after"] as? [String] ?? []
        #expect(before.contains("STARTTLS") && before.contains("LOGINDISABLED") && !before.contains("AUTH=PLAIN"))
        for cap in ["IMAP4REV1", "IMAP4REV2", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "SPECIAL-USE", "LITERAL+", "NAMESPACE", "ENABLE"] {
            #expect(after.contains(cap), "\(cap) missing from \(after)")
        }
        #expect((out["login_before_tls"] as? String)?.contains("PRIVACYREQUIRED") == true, "\(out["login_before_tls"] ?? "")")
        #expect((out["wrong_password"] as? String)?.contains("AUTHENTICATIONFAILED") == true)
        let list = (out["list"] as? [String] ?? []).joined(separator: "\n")
        #expect(list.contains("\"/\" INBOX") && list.contains("\\Sent) \"/\" Sent") && list.contains("\\Trash) \"/\" Trash"), "\(list)")
        #expect((out["select"] as? [String])?.last == "3")
        #expect((out["fetch_flags"] as? [String])?.first == "1 (FLAGS () RFC822.SIZE \(r.bodies[0].utf8.count))")
        #expect(out["bodies"] as? [String] == r.bodies, "exact bytes")
        #expect(out["header_fields"] as? String == "Subject: two\r\n\r\n" || out["header_fields"] as? String == "Subject: one\r\n\r\n")
        let envelope = out["envelope"] as? String ?? ""
        #expect(envelope.contains("ENVELOPE (NIL \"two\" ((NIL NIL \"alice\" \"direct.a.test\"))"), "\(envelope)")
        #expect(envelope.contains("BODYSTRUCTURE (\"TEXT\" \"PLAIN\""), "\(envelope)")
        #expect(out["unseen"] as? String == "1 2 3")
        #expect(out["seen_after_fetch"] as? String == "1", "BODY[] without PEEK sets \\Seen")
        #expect((out["store"] as? [String])?.first?.contains("FLAGS (\\Flagged $Referral)") == true, "\(out["store"] ?? "")")
        #expect(out["flagged"] as? String == "2")
        #expect(out["subject_search"] as? String == "2")
        #expect(out["body_search"] as? String == "2")
        #expect(out["or_search"] as? String == "2")
        #expect(out["create"] as? String == "OK" && out["create_utf7"] as? String == "OK")
        let folders = (out["list_after_create"] as? [String] ?? []).joined(separator: "\n")
        #expect(folders.contains("\"Patienten M&APw-ller\""), "\(folders)")
        #expect(try await r.store.folders(mailbox: r.bob).map(\.name).contains("Patienten Müller"), "stored in UTF-8")
        let copy = (out["copy"] as? [Any])?.last as? [String] ?? []
        let referrals = try await r.store.folderStatus(mailbox: r.bob, folder: "Referrals").uidValidity
        #expect(copy == ["\(referrals) 1 1"], "RFC 4315 COPYUID: the new folder's UIDVALIDITY, the UID copied, its new UID")
        #expect(try await r.store.folderStatus(mailbox: r.bob, folder: "Archive").messages == 1)
        #expect((out["status"] as? [String])?.first == "Archive (MESSAGES 1 UIDNEXT 2 UNSEEN 1)")
        #expect((out["append"] as? [Any])?.first as? String == "OK")
        #expect((out["append_inbox"] as? String)?.contains("('NO', [b'[CANNOT] INBOX holds messages that arrived by Direct") == true, "\(out["append_inbox"] ?? "")")
        #expect(out["idle_start"] as? String == "+ idling")
        let idleFlags = out["idle_flags"] as? [Any] ?? []
        #expect((idleFlags.first as? String)?.contains("FLAGS (\\Seen \\Answered)") == true, "\(idleFlags)")
        let idleExists = out["idle_exists"] as? [Any] ?? []
        #expect(idleExists.first as? String == "* 3 EXISTS", "\(idleExists)")
        #expect((out["idle_done"] as? String)?.hasSuffix("OK IDLE terminated") == true)
        #expect(out["expunge"] as? [String] == ["1"])
        #expect(out["b_noop"] as? [String] == ["1"], "the other session hears of the expunge at its next command: \(out)")
        #expect((out["bad"] as? String)?.contains("unknown command FROBNICATE") == true, "\(out["bad"] ?? "")")
        #expect(out["still_alive"] as? String == "OK")
        #expect(uidValidity > 0)
        await r.store.flushReadEvents()
        let events = try await r.store.auditEvents(limit: 500)
        #expect(events.contains { $0.event.action == "auth" && $0.event.object == "imap" && $0.event.outcome == "failed" })
        #expect(events.contains { $0.event.action == "message.read" && $0.event.actor.contains("over IMAP") })
        try await r.stop()
    }

    static let largeScript = #"""
import imaplib, json, os, ssl, sys
host, port, cafile, user, password, sent = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
a = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=120)
a.login(user, password)
a.select("INBOX")
typ, data = a.uid("FETCH", "1:*", "(BODY.PEEK[])")
got = {}
for item in data:
    if isinstance(item, tuple):
        uid = item[0].decode().split("UID ")[1].split(" ")[0]
        path = os.path.join(sent, uid + ".eml")
        got[uid] = "same" if not os.path.exists(path) or open(path, "rb").read() == item[1] else "different"
out = {"fetch": [typ, got], "search": a.uid("SEARCH", None, "BODY", "needle-in-the-last")[1][0].decode()}
a.logout()
print(json.dumps(out))
"""#

    @Test func largeMessagesAreFetchedAndSearchedInPartsWhole() async throws {
        let r = try await POP3Tests.Running.start()
        let implicit = try #require(r.server.imaps?.port)
        // Five messages of 1.5 MB: 7.5 MB, more than one part (4 MiB) of a read.
        var large: [String] = []
        let sent = r.ws.path("sent")
        try FileManager.default.createDirectory(atPath: sent, withIntermediateDirectories: true)
        for n in 0..<5 {
            let line = String(repeating: "Lab result line \(n) for Jane Roe, all values within range. ", count: 1) + "\r\n"
            var body = "From: alice@direct.a.test\r\nTo: bob@direct.pop.test\r\nSubject: large \(n)\r\nMessage-ID: <large-\(n)@a>\r\n\r\n"
            body += String(repeating: line, count: 1_500_000 / line.utf8.count)
            if n == 4 { body += "needle-in-the-last\r\n" }
            let stored = try await r.store.append(mailbox: r.bob, folder: "INBOX", bytes: Array(body.utf8), metadata: MessageMetadata(
                sender: "alice@direct.a.test", recipients: [r.bob.description], subject: "large", messageID: "<large-\(n)@a>"))
            _ = try r.ws.write("sent/\(stored.uid).eml", body)
            large.append("\(stored.uid)")
        }
        let result = try await r.ws.runDetached("python3", ["-c", Self.largeScript, "127.0.0.1", "\(implicit)", r.summary.tlsCertificate,
                                                            r.bob.description, r.password, sent])
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "\(result.stderr)")
        let fetch = out["fetch"] as? [Any] ?? []
        #expect(fetch.first as? String == "OK")
        let got = fetch.last as? [String: String] ?? [:]
        for uid in large { #expect(got[uid] == "same", "message \(uid) came back whole: \(got)") }
        #expect(got.count == 8 && !got.values.contains("different"), "the three small messages and the five large ones: \(got)")
        #expect(out["search"] as? String == large.last)
        try await r.stop()
    }

    static let limitScript = #"""
import imaplib, json, ssl, sys
host, port, cafile, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
def session():
    return imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=60)
out = {}
first, second, third = session(), session(), session()
first.login(user, password)
second.login(user, password)
try:
    third.login(user, password)
    out["third"] = "accepted"
except imaplib.IMAP4.error as e:
    out["third"] = str(e)
out["third_still_open"] = third.noop()[0]
first.logout()
# The server counts the first session's end once it has closed; a few tries at most.
import time
for attempt in range(100):
    try:
        third.login(user, password)
        out["third_after_logout"] = "accepted"
        break
    except imaplib.IMAP4.error as e:
        out["third_after_logout"] = str(e)
        time.sleep(0.1)
out["third_select"] = third.select("INBOX")[0]
second.logout()
third.logout()
print(json.dumps(out))
"""#

    @Test func aUserHoldsAtMostItsSessionLimitAndARefusalIsNotAFailedSignIn() async throws {
        // Two sessions per user; the lockout would come after three failed sign-ins.
        let r = try await POP3Tests.Running.start(lockoutFailures: 3, imapSessionsPerUser: 2)
        let implicit = try #require(r.server.imaps?.port)
        let result = try await r.ws.runDetached("python3", ["-c", Self.limitScript, "127.0.0.1", "\(implicit)", r.summary.tlsCertificate,
                                                            r.bob.description, r.password])
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: String], "\(result.stderr)")
        #expect(out["third"]?.contains("[LIMIT] 2 IMAP sessions are open for this user already") == true, "\(out)")
        #expect(out["third_still_open"] == "OK", "a refused sign-in leaves the session open")
        #expect(out["third_after_logout"] == "accepted", "\(out)")
        #expect(out["third_select"] == "OK")
        await r.store.flushReadEvents()
        let events = try await r.store.auditEvents(limit: 500)
        #expect(!events.contains { $0.event.action == "auth" && $0.event.outcome == "failed" }, "a refusal for the limit is no failed sign-in")
        try await r.stop()
    }
}

/// mbsync (isync) keeps a Maildir in step with the mailbox, both ways.
@Suite struct MbsyncTests {
    @Test func mbsyncSyncsFlagsAMoveAndADeleteBothWaysThenFindsNothingToDo() async throws {
        let r = try await POP3Tests.Running.start()
        let port = try #require(r.server.imaps?.port)
        let mail = r.ws.path("mail")
        try FileManager.default.createDirectory(atPath: mail, withIntermediateDirectories: true)
        let rc = try r.ws.write("mbsyncrc", """
            IMAPAccount hisp
            Host 127.0.0.1
            Port \(port)
            User \(r.bob)
            Pass "\(r.password)"
            SSLType IMAPS
            CertificateFile \(r.summary.tlsCertificate)
            AuthMechs PLAIN
            Timeout 120

            IMAPStore remote
            Account hisp

            MaildirStore local
            Path \(mail)/
            Inbox \(mail)/INBOX
            SubFolders Verbatim

            Channel sync
            Far :remote:
            Near :local:
            Patterns *
            Create Both
            Expunge Both
            SyncState *
            Sync All

            """)
        func sync() async throws -> ProcessResult {
            let result = try await r.ws.runDetached("mbsync", ["-c", rc, "-a", "-V"])
            #expect(result.status == 0, "\(result.stdoutText) \(result.stderr)")
            return result
        }
        func files(_ folder: String) throws -> [String] {
            var out: [String] = []
            for sub in ["cur", "new"] {
                let dir = "\(mail)/\(folder)/\(sub)"
                out += (try? FileManager.default.contentsOfDirectory(atPath: dir).map { "\(dir)/\($0)" }) ?? []
            }
            return out.sorted()
        }
        _ = try await sync()
        let inbox = try files("INBOX")
        #expect(inbox.count == 3)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: mail)).isSuperset(of: ["INBOX", "Sent", "Drafts", "Trash", "Archive"]))
        // Locally: one read, one deleted, one moved to Archive.
        // Maildir files have LF line ends (mbsync converts).
        let subject = { (path: String) in
            (try? String(contentsOfFile: path, encoding: .utf8))?.split(whereSeparator: \.isNewline).first { $0.hasPrefix("Subject:") }.map(String.init) ?? ""
        }
        let one = try #require(inbox.first { subject($0) == "Subject: one" })
        let two = try #require(inbox.first { subject($0) == "Subject: two" })
        let three = try #require(inbox.first { subject($0) == "Subject: three" })
        func renamed(_ path: String, flags: String) -> String {
            let name = (path as NSString).lastPathComponent.components(separatedBy: ":2,").first ?? ""
            return "\(mail)/INBOX/cur/\(name):2,\(flags)"
        }
        try FileManager.default.moveItem(atPath: one, toPath: renamed(one, flags: "S"))
        try FileManager.default.moveItem(atPath: two, toPath: renamed(two, flags: "T"))
        try FileManager.default.createDirectory(atPath: "\(mail)/Archive/cur", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: three, toPath: "\(mail)/Archive/cur/\(UUID().uuidString):2,S")
        _ = try await sync()
        let inboxNow = try await r.store.messages(mailbox: r.bob, folder: "INBOX", uids: [1...UInt32.max])
        #expect(inboxNow.map(\.metadata.subject) == ["0"], "two left INBOX: one deleted, one moved (\(inboxNow.map(\.metadata.subject)))")
        #expect(inboxNow.first?.flags == .seen)
        let archive = try await r.store.messages(mailbox: r.bob, folder: "Archive", uids: [1...UInt32.max])
        #expect(archive.count == 1 && archive.first?.flags.contains(.seen) == true)
        // Again: nothing to do either way.
        let before = try await r.store.folders(mailbox: r.bob).map { "\($0.name) \($0.messages) \($0.highestModSeq)" }
        let third = try await sync()
        #expect(try await r.store.folders(mailbox: r.bob).map { "\($0.name) \($0.messages) \($0.highestModSeq)" } == before, "\(third.stdoutText)")
        #expect(try files("INBOX").count == 1 && files("Archive").count == 1)
        try await r.stop()
    }
}

/// The shared sign-in over IMAP and POP3: after the configured failures the
/// account is locked, the right password is refused with the same answer
/// as a wrong one, and every attempt is audited with its protocol.
@Suite struct MailboxSignInTests {
    static let script = #"""
import imaplib, json, poplib, ssl, sys
host, imap_port, pop_port, cafile, user, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
out = {"imap": [], "pop3": []}
for attempt in ["wrong"] * 2:
    c = imaplib.IMAP4_SSL(host, imap_port, ssl_context=ctx, timeout=30)
    try:
        c.login(user, attempt); out["imap"].append("accepted")
    except imaplib.IMAP4.error as e:
        out["imap"].append(str(e))
    c.shutdown()
for attempt in ["wrong", password]:
    p = poplib.POP3_SSL(host, pop_port, context=ctx, timeout=30)
    p.user(user)
    try:
        p.pass_(attempt); out["pop3"].append("accepted")
    except poplib.error_proto as e:
        out["pop3"].append(e.args[0].decode())
    p.quit()
c = imaplib.IMAP4_SSL(host, imap_port, ssl_context=ctx, timeout=30)
try:
    c.login(user, password); out["imap_right_while_locked"] = "accepted"
except imaplib.IMAP4.error as e:
    out["imap_right_while_locked"] = str(e)
print(json.dumps(out))
"""#

    @Test func afterTheFailuresTheRightPasswordIsRefusedLikeAWrongOneOverBothProtocols() async throws {
        let r = try await POP3Tests.Running.start(lockoutFailures: 3)
        let imap = try #require(r.server.imaps?.port), pop = try #require(r.server.pop3s?.port)
        let script = try r.ws.write("signin.py", Self.script)
        let run = try await r.ws.runDetached("python3", [script, "127.0.0.1", "\(imap)", "\(pop)", r.summary.tlsCertificate, r.bob.description, r.password])
        #expect(run.status == 0, "\(run.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any], "\(run.stderr)")
        let imapAnswers = out["imap"] as? [String] ?? [], popAnswers = out["pop3"] as? [String] ?? []
        let wrongIMAP = "b'[AUTHENTICATIONFAILED] the user name or password is wrong, or sign-in is locked for a while'"
        #expect(imapAnswers == [wrongIMAP, wrongIMAP], "\(imapAnswers)")
        // The third failure (over POP3) locks the account; then the right password gets the same answer.
        let wrongPOP = "-ERR [AUTH] the user name or password is wrong, or sign-in is locked for a while"
        #expect(popAnswers == [wrongPOP, wrongPOP], "\(popAnswers)")
        #expect(out["imap_right_while_locked"] as? String == wrongIMAP)
        let events = try await r.store.auditEvents(limit: 200).filter { $0.event.action == "auth" }
        #expect(events.filter { $0.event.object == "imap" }.count == 3)
        #expect(events.filter { $0.event.object == "pop3" }.count == 2)
        #expect(events.contains { $0.event.object == "pop3" && $0.event.detail.hasSuffix("account throttled") }, "\(events.map(\.event.detail))")
        try await r.stop()
    }
}

/// Bad input over the wire: each command is answered with its reason, and the session goes on.
@Suite struct IMAPBadInputTests {
    static let script = #"""
import json, socket, ssl, sys
host, port, cafile, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=30))
f = s.makefile("rb")
f.readline()
def run(raw, tag):
    s.sendall(raw)
    lines = []
    while True:
        line = f.readline().decode(errors="replace").rstrip("\r\n")
        lines.append(line)
        if line.startswith(tag + " ") or line.startswith("* BYE"):
            return lines
out = {}
out["login"] = run(f'l1 LOGIN "{user}" "{password}"\r\n'.encode(), "l1")[-1]
out["unselected_fetch"] = run(b"a1 FETCH 1 FLAGS\r\n", "a1")[-1]
out["deep"] = run(b"a2 SEARCH " + b"(" * 100000 + b"ALL" + b")" * 100000 + b"\r\na3 NOOP\r\n", "a3")
out["nosuch"] = run(b"a4 SELECT nosuch\r\n", "a4")[-1]
out["bad_utf7"] = run(b'a5 SELECT "&Jjo!-"\r\n', "a5")[-1]
out["select"] = run(b"a6 SELECT INBOX\r\n", "a6")[-1]
out["huge_set"] = run(b"a7 FETCH 1:4294967295 FLAGS\r\n", "a7")[-1]
out["huge_uid_set"] = run(b"a8 UID FETCH 1:4294967295 FLAGS\r\n", "a8")
out["garbage"] = run(b"garbage\r\n\x00\x01\x02\r\n* x\r\na9 NOOP\r\n", "a9")
out["toobig"] = run(b"b1 APPEND Drafts {999999999}\r\n", "b1")[-1]
out["wrong_state"] = run(b"b2 STARTTLS\r\n", "b2")[-1]
out["alive"] = run(b"b3 NOOP\r\n", "b3")[-1]
out["logout"] = run(b"b4 LOGOUT\r\n", "b4")
print(json.dumps(out))
"""#

    @Test func everyBadCommandGetsItsReasonAndTheSessionGoesOn() async throws {
        let r = try await POP3Tests.Running.start()
        let port = try #require(r.server.imaps?.port)
        let script = try r.ws.write("bad.py", Self.script)
        let run = try await r.ws.runDetached("python3", [script, "127.0.0.1", "\(port)", r.summary.tlsCertificate, r.bob.description, r.password])
        #expect(run.status == 0, "\(run.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any], "\(run.stderr)")
        #expect((out["login"] as? String)?.hasPrefix("l1 OK") == true)
        #expect(out["unselected_fetch"] as? String == "a1 BAD select a mailbox first")
        #expect(out["deep"] as? [String] == ["* BAD the command line is too long", "a3 OK NOOP completed"], "\(out["deep"] ?? "")")
        #expect(out["nosuch"] as? String == "a4 NO [NONEXISTENT] no such folder or message")
        #expect(out["bad_utf7"] as? String == "a5 NO [CANNOT] &Jjo!- is not valid modified UTF-7")
        #expect((out["select"] as? String)?.hasPrefix("a6 OK [READ-WRITE]") == true)
        #expect(out["huge_set"] as? String == "a7 BAD no such message number")
        #expect((out["huge_uid_set"] as? [String])?.filter { $0.contains(" FETCH (") }.count == 3, "\(out["huge_uid_set"] ?? "")")
        let garbage = out["garbage"] as? [String] ?? []
        #expect(garbage.count == 4 && garbage.prefix(3).allSatisfy { $0.hasPrefix("* BAD") || $0.hasPrefix("garbage BAD") } && garbage.last == "a9 OK NOOP completed",
                "\(garbage)")
        #expect(out["toobig"] as? String == "b1 NO [TOOBIG] a literal of 999999999 octets is larger than this server takes")
        #expect(out["wrong_state"] as? String == "b2 BAD STARTTLS is only for a session not yet signed in")
        #expect(out["alive"] as? String == "b3 OK NOOP completed")
        #expect((out["logout"] as? [String])?.first?.hasPrefix("* BYE") == true)
        try await r.stop()
    }
}
