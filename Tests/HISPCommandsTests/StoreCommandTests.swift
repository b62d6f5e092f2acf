import Foundation
import HISPTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The encrypted store through the `hisp` binary, checked with the real
/// sqlite3 tool, OpenSSL, and `kill -9`.
@Suite struct StoreCommandTests {
    let ws: Workspace
    let domain = "direct.example-dental.com"
    let mailbox = "qxmailboxmarker@direct.example-dental.com"
    var keyArgs: [String] { ["--data", "data", "--key-file", "master.key"] }

    init() throws {
        ws = try Workspace()
        try ws.mustRun(Tools.hisp, ["init"] + keyArgs)
        try ws.mustRun(Tools.hisp, ["domain", "add", domain] + keyArgs)
        try ws.mustRun(Tools.hisp, ["address", "add", mailbox] + keyArgs)
    }

    /// A message full of PHI markers.
    func phiMessage(_ n: Int = 0) -> [UInt8] {
        Array(("From: Dr Quentin Marker <quentin.marker@other.example>\r\nTo: \(mailbox)\r\n"
            + "Subject: Referral for Zelda Quixotemarker DOB 1957-03-14 #\(n)\r\nMessage-ID: <refmarker\(n)@other.example>\r\n\r\n"
            + "Patient: Zelda Quixotemarker\r\nBirth date: 1957-03-14\r\nMRN 99887766\r\nSequence \(n)\r\n").utf8)
    }

    let markers = ["Zelda", "Quixotemarker", "1957-03-14", "99887766", "qxmailboxmarker", "quentin.marker", "refmarker", "Referral for"]

    func importMessage(_ bytes: [UInt8], name: String, args: [String]? = nil) async throws -> String {
        _ = try ws.write(name, bytes)
        let r = try await ws.mustRun(Tools.hisp, ["message", "import", "--mailbox", mailbox, name] + (args ?? keyArgs))
        let id = r.stdoutText.trimmingCharacters(in: .newlines)
        #expect(id.count == 32 && !id.contains("\n"), "message import prints the ID alone: \(r.stdoutText)")
        return id
    }

    func sql(_ statement: String, db: String = "data/hisp.sqlite") async throws -> String {
        try await ws.mustRun("sqlite3", [db, statement]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every file under a directory, recursively.
    func allFiles(_ dir: String) -> [String] {
        let e = FileManager.default.enumerator(atPath: ws.path(dir))
        var out: [String] = []
        while let f = e?.nextObject() as? String { out.append("\(dir)/\(f)") }
        return out
    }

    func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count else { return false }
        for i in 0...(haystack.count - n.count) where haystack[i] == n[0] {
            if Array(haystack[i..<(i + n.count)]) == n { return true }
        }
        return false
    }

    @Test func noPlaintextAtRestInTheDataDirectoryOrABackup() async throws {
        let id = try await importMessage(phiMessage(), name: "phi.eml")
        #expect(try await ws.mustRun(Tools.hisp, ["message", "show", id] + keyArgs).stdout == phiMessage())
        try await ws.mustRun(Tools.hisp, ["backup", "create", "--out", "phi.bak"] + keyArgs)
        let files = allFiles("data").filter { !$0.hasSuffix("/") } + ["phi.bak"]
        #expect(files.contains("data/hisp.sqlite"))
        for file in files {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: ws.path(file), isDirectory: &isDir), !isDir.boolValue else { continue }
            let bytes = try ws.read(file)
            for marker in markers {
                #expect(!contains(bytes, marker), "\(marker) found in clear in \(file)")
            }
        }
        // The sqlite3 tool sees only ciphertext and blind indexes in the PHI columns.
        let subject = try await sql("SELECT hex(subject_enc) FROM messages")
        let plainHex = "Zelda Quixotemarker".utf8.map { String(format: "%02X", $0) }.joined()
        // Version, nonce and tag (29 octets) around a ciphertext as long as the subject.
        #expect(subject.count == 2 * (29 + "Referral for Zelda Quixotemarker DOB 1957-03-14 #0".utf8.count))
        #expect(!subject.contains(plainHex))
        // Data directory and database are the owner's only.
        let dirMode = try FileManager.default.attributesOfItem(atPath: ws.path("data"))[.posixPermissions] as? Int
        let dbMode = try FileManager.default.attributesOfItem(atPath: ws.path("data/hisp.sqlite"))[.posixPermissions] as? Int
        #expect(dirMode == 0o700 && dbMode == 0o600)
    }

    /// Flips one bit of a column with the sqlite3 tool.
    func flip(table: String, column: String, id: String, at offset: Int = 20) async throws {
        let hex = try await sql("SELECT hex(\(column)) FROM \(table) WHERE id = '\(id)'")
        var bytes = Array(hex.utf8)
        let i = offset * 2 + 1
        bytes[i] = bytes[i] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        _ = try await sql("UPDATE \(table) SET \(column) = X'\(String(decoding: bytes, as: UTF8.self))' WHERE id = '\(id)'")
    }

    @Test(arguments: ["body_enc", "subject_enc", "sender_enc", "dek"])
    func aFlippedByteInAnyCiphertextIsAnIntegrityError(column: String) async throws {
        let id = try await importMessage(phiMessage(), name: "m.eml")
        try await flip(table: "messages", column: column, id: id)
        let r = try await ws.hisp(["message", "show", id] + keyArgs)
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty, "nothing of the message is written")
        #expect(r.stderr.contains("integrity check failed: messages \(id)"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func aCiphertextMovedToAnotherRowDoesNotOpen() async throws {
        let a = try await importMessage(phiMessage(1), name: "a.eml")
        let b = try await importMessage(phiMessage(2), name: "b.eml")
        _ = try await sql("UPDATE messages SET subject_enc = (SELECT subject_enc FROM messages WHERE id = '\(a)') WHERE id = '\(b)'")
        let r = try await ws.hisp(["message", "list", "--mailbox", mailbox] + keyArgs)
        #expect(r.status == 1)
        #expect(r.stderr.contains("messages \(b) subject_enc: the ciphertext does not authenticate"), "\(r.stderr)")
    }

    @Test func aFlippedByteInAPrivateKeyIsAnIntegrityError() async throws {
        let id = try await sql("SELECT id FROM addresses")
        try await flip(table: "addresses", column: "key_enc", id: id)
        _ = try ws.write("pw", "a long export password\n")
        let r = try await ws.hisp(["cert", "export", mailbox, "--pkcs12", "x.p12", "--password-file", "pw"] + keyArgs)
        #expect(r.status == 1)
        #expect(r.stderr.contains("integrity check failed: addresses \(id) key_enc"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.path("x.p12")))
    }

    @Test func wrongMissingOrExposedKeyGivesOneClearLine() async throws {
        _ = try await importMessage(phiMessage(), name: "m.eml")
        // A different key file.
        try await ws.mustRun(Tools.hisp, ["init", "--data", "other", "--key-file", "other.key"])
        let wrong = try await ws.hisp(["message", "list", "--mailbox", mailbox, "--data", "data", "--key-file", "other.key"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr == "error: wrong key: key file other.key does not open this store\n", "\(wrong.stderr)")
        // No key file there.
        let missing = try await ws.hisp(["message", "list", "--mailbox", mailbox, "--data", "data", "--key-file", "nowhere.key"])
        #expect(missing.status == 2)
        #expect(missing.stderr == "error: key file nowhere.key: no such file\n")
        // A passphrase for a store locked by a key file.
        _ = try ws.write("pass", "a passphrase that is long\n")
        let kind = try await ws.hisp(["message", "list", "--mailbox", mailbox, "--data", "data", "--passphrase-file", "pass"])
        #expect(kind.status == 1)
        #expect(kind.stderr.contains("locked with a key-file"), "\(kind.stderr)")
        // A key file others can read is refused.
        chmod(ws.path("master.key"), 0o644)
        let exposed = try await ws.hisp(["message", "list", "--mailbox", mailbox] + keyArgs)
        #expect(exposed.status == 2)
        #expect(exposed.stderr.contains("can be read by other users (mode 644)"))
        chmod(ws.path("master.key"), 0o600)
        // A key file inside the data directory is refused at init.
        let inside = try await ws.hisp(["init", "--data", "d3", "--key-file", "d3/master.key"])
        #expect(inside.status == 2 && inside.stderr.contains("inside the data directory"))
        for r in [wrong, missing, kind, exposed, inside] { #expect(r.stderr.split(separator: "\n").count == 1) }
    }

    @Test func passphraseStoreAndWrongPassphrase() async throws {
        _ = try ws.write("pass", "correct horse battery staple\n")
        _ = try ws.write("bad", "incorrect horse battery staple\n")
        let args = ["--data", "pdata", "--passphrase-file", "pass"]
        let created = try await ws.mustRun(Tools.hisp, ["init"] + args)
        #expect(created.stdoutText.contains("scrypt (N=2^17, r=8, p=1)"))
        try await ws.mustRun(Tools.hisp, ["domain", "add", domain] + args)
        try await ws.mustRun(Tools.hisp, ["address", "add", mailbox] + args)
        let id = try await importMessage(phiMessage(), name: "m.eml", args: args)
        let bad = try await ws.hisp(["message", "show", id, "--data", "pdata", "--passphrase-file", "bad"])
        #expect(bad.status == 1)
        #expect(bad.stderr == "error: wrong key: the passphrase in bad does not open this store\n", "\(bad.stderr)")
        // HISP_PASSPHRASE works as well as the file. Set for that one command only: set in this
        // process, it reached the commands of tests running alongside (quickstart then chose a passphrase).
        #expect(try await ws.mustRun("/usr/bin/env", ["HISP_PASSPHRASE=correct horse battery staple", Tools.hisp, "message", "show", id, "--data", "pdata"])
            .stdout == phiMessage())
    }

    @Test func initUsesAnExistingKeyFileAndCreatesAMissingOne() async throws {
        let key = try ws.read("master.key")
        let mode = try FileManager.default.attributesOfItem(atPath: ws.path("master.key"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(String(decoding: key, as: UTF8.self).contains("hisp-master-key-v1 "))
        let second = try await ws.mustRun(Tools.hisp, ["init", "--data", "data2", "--key-file", "master.key"])
        #expect(second.stdoutText.contains("existing key file"))
        #expect(try ws.read("master.key") == key)
        let again = try await ws.hisp(["init"] + keyArgs)
        #expect(again.status == 2 && again.stderr.contains("already holds a HISP store"))
    }

    @Test func backupRestoresTheSameMessagesAndKeysByteForByte() async throws {
        var ids: [String: [UInt8]] = [:]
        for n in 0..<3 { await ids[try importMessage(phiMessage(n), name: "m\(n).eml")] = phiMessage(n) }
        try await ws.mustRun(Tools.hisp, ["backup", "create", "--out", "full.bak"] + keyArgs)
        let verify = try await ws.mustRun(Tools.hisp, ["backup", "verify", "--in", "full.bak", "--key-file", "master.key"])
        #expect(verify.stdoutText.contains("messages 3"))
        let restored = ["--data", "restored", "--key-file", "master.key"]
        try await ws.mustRun(Tools.hisp, ["backup", "restore", "--in", "full.bak"] + restored)
        for (id, bytes) in ids {
            #expect(try await ws.mustRun(Tools.hisp, ["message", "show", id] + restored).stdout == bytes)
        }
        _ = try ws.write("pw", "a long export password\n")
        for (name, args) in [("orig", keyArgs), ("rest", restored)] {
            try await ws.mustRun(Tools.hisp, ["cert", "export", mailbox, "--pkcs12", "\(name).p12", "--password-file", "pw"] + args)
            try await ws.mustRun("openssl", ["pkcs12", "-in", "\(name).p12", "-passin", "file:pw", "-nodes", "-out", "\(name).pem"])
            try await ws.mustRun("openssl", ["pkey", "-in", "\(name).pem", "-out", "\(name).key"])
        }
        #expect(try ws.read("orig.key") == ws.read("rest.key"))
        #expect(try await ws.mustRun(Tools.hisp, ["cert", "export", domain, "--ca"] + keyArgs).stdout
                == ws.mustRun(Tools.hisp, ["cert", "export", domain, "--ca"] + restored).stdout)
        try await ws.mustRun(Tools.hisp, ["audit", "verify"] + restored)
        // A backup with the wrong key, a flipped byte, or cut short is refused.
        try await ws.mustRun(Tools.hisp, ["init", "--data", "other", "--key-file", "other.key"])
        let wrong = try await ws.hisp(["backup", "verify", "--in", "full.bak", "--key-file", "other.key"])
        #expect(wrong.status == 1 && wrong.stderr == "error: wrong key: key file other.key does not open this backup\n", "\(wrong.stderr)")
        var bytes = try ws.read("full.bak")
        let cut = Array(bytes.dropLast(100))
        _ = try ws.write("cut.bak", cut)
        let truncated = try await ws.hisp(["backup", "verify", "--in", "cut.bak", "--key-file", "master.key"])
        #expect(truncated.status == 1 && truncated.stderr.contains("truncated"), "\(truncated.stderr)")
        bytes[bytes.count / 2] ^= 0x01
        _ = try ws.write("flipped.bak", bytes)
        let flipped = try await ws.hisp(["backup", "restore", "--in", "flipped.bak", "--data", "r2", "--key-file", "master.key"])
        #expect(flipped.status == 1 && flipped.stderr.contains("integrity check failed: backup chunk"), "\(flipped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.path("r2/hisp.sqlite")), "a failed restore leaves no database behind")
    }

    /// Starts `hisp message import` of `files` in the background, its acknowledgements going to `ackFile`.
    func startImport(_ files: [String], ackFile: String) async throws -> (Process, FileHandle) {
        _ = FileManager.default.createFile(atPath: ws.path(ackFile), contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: ws.path(ackFile)))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Tools.hisp)
        p.arguments = ["message", "import", "--mailbox", mailbox] + files + keyArgs
        p.currentDirectoryURL = ws.url
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        return (p, out)
    }

    /// The IDs a background import has acknowledged (whole lines only).
    func acknowledged(_ ackFile: String) throws -> [String] {
        let text = String(decoding: try ws.read(ackFile), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    @Test func aBackupTakenDuringWritesRestoresConsistently() async throws {
        let files = try (0..<500).map { n in try ws.write("c\(n).eml", phiMessage(n)) }
        let (writer, out) = try await startImport(files, ackFile: "ack")
        // Start the backup once the writer is well under way.
        let deadline = Date() + 60
        while try acknowledged("ack").count < 20 && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let before = try acknowledged("ack")
        try await ws.mustRun(Tools.hisp, ["backup", "create", "--out", "during.bak"] + keyArgs)
        let stillWriting = writer.isRunning
        try await offThePool { writer.waitUntilExit() }
        try out.close()
        #expect(writer.terminationStatus == 0)
        let restored = ["--data", "restored", "--key-file", "master.key"]
        let r = try await ws.mustRun(Tools.hisp, ["backup", "restore", "--in", "during.bak"] + restored)
        #expect(r.stdoutText.contains("audit chain of"))
        try await ws.mustRun(Tools.hisp, ["audit", "verify"] + restored)
        let listed = try await ws.mustRun(Tools.hisp, ["message", "list", "--mailbox", mailbox] + restored).stdoutText
            .split(separator: "\n").map { String($0.prefix(32)) }
        // Everything acknowledged before the backup started is in it.
        #expect(Set(before).isSubset(of: Set(listed)))
        if stillWriting { #expect(listed.count < files.count, "the snapshot was taken mid-batch") }
        // Each message in the snapshot is whole, and its audit event is in the same snapshot.
        let events = try await ws.mustRun(Tools.hisp, ["audit", "list", "--limit", "1000"] + restored).stdoutText
        for id in listed.suffix(20) {
            let bytes = try await ws.mustRun(Tools.hisp, ["message", "show", id] + restored).stdout
            #expect(contains(bytes, "Quixotemarker"))
        }
        for id in listed { #expect(events.contains("message.store  message \(id)")) }
    }

    @Test func rotationKeepsEverythingReadableAndRefusesTheOldKey() async throws {
        let id = try await importMessage(phiMessage(), name: "m.eml")
        let before = try await ws.mustRun(Tools.hisp, ["message", "list", "--mailbox", mailbox] + keyArgs).stdoutText
        let dekBefore = try await sql("SELECT hex(dek) FROM messages")
        let bodyBefore = try await sql("SELECT hex(body_enc) FROM messages")
        let r = try await ws.mustRun(Tools.hisp, ["key", "rotate", "--new-key-file", "new.key"] + keyArgs)
        #expect(r.stdoutText.contains("3 data keys re-wrapped"), "\(r.stdoutText)")
        let newArgs = ["--data", "data", "--key-file", "new.key"]
        #expect(try await ws.mustRun(Tools.hisp, ["message", "list", "--mailbox", mailbox] + newArgs).stdoutText == before)
        #expect(try await ws.mustRun(Tools.hisp, ["message", "show", id] + newArgs).stdout == phiMessage())
        // Data keys re-wrapped; the message itself not re-encrypted.
        #expect(try await sql("SELECT hex(dek) FROM messages") != dekBefore)
        #expect(try await sql("SELECT hex(body_enc) FROM messages") == bodyBefore)
        let old = try await ws.hisp(["message", "list", "--mailbox", mailbox] + keyArgs)
        #expect(old.status == 1 && old.stderr.contains("wrong key"))
        // And on to a passphrase.
        _ = try ws.write("pass", "a new passphrase for the store\n")
        try await ws.mustRun(Tools.hisp, ["key", "rotate", "--new-passphrase-file", "pass"] + newArgs)
        let passArgs = ["--data", "data", "--passphrase-file", "pass"]
        #expect(try await ws.mustRun(Tools.hisp, ["message", "show", id] + passArgs).stdout == phiMessage())
        #expect(try await ws.hisp(["message", "show", id] + newArgs).status == 1)
        let audit = try await ws.mustRun(Tools.hisp, ["audit", "verify"] + passArgs)
        #expect(audit.stdoutText.contains("audit trail intact"))
    }

    @Test(arguments: [
        ("UPDATE audit SET actor = 'cli:mallory' WHERE seq = 3", "event 3"),
        ("DELETE FROM audit WHERE seq = 2", "event 2 is missing"),
        ("UPDATE audit SET at = (SELECT at FROM audit WHERE seq = 2) WHERE seq = 3", "event 3"),
        ("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)", "removed from the end"),
    ])
    func anEditedRemovedOrReorderedAuditEventIsFound(statement: String, finding: String) async throws {
        _ = try await importMessage(phiMessage(), name: "m.eml")
        try await ws.mustRun(Tools.hisp, ["audit", "verify"] + keyArgs)
        _ = try await sql(statement)
        let r = try await ws.hisp(["audit", "verify"] + keyArgs)
        #expect(r.status == 1)
        #expect(r.stderr.contains("audit trail broken: ") && r.stderr.contains(finding), "\(r.stderr)")
    }

    @Test func killedMidBatchTheStoreOpensVerifiesAndKeepsEveryAcknowledgedWrite() async throws {
        let files = try (0..<300).map { n in try ws.write("k\(n).eml", phiMessage(n)) }
        var acknowledged: [String] = []
        var interrupted = 0
        var generator = SystemRandomNumberGenerator()
        for round in 0..<10 {
            let (p, out) = try await startImport(files, ackFile: "ack\(round)")
            // Killed once it has acknowledged a random number of messages, whatever this machine's speed
            // (a fixed pause once ended every round before the first acknowledgement on a busy machine).
            let after = Int.random(in: 1...200, using: &generator)
            let ackFile = ws.path("ack\(round)")
            try await offThePool {
                let deadline = Date() + 120
                while p.isRunning && Date() < deadline,
                      ((try? String(contentsOfFile: ackFile, encoding: .utf8))?.split(separator: "\n").count ?? 0) < after {
                    usleep(2_000)
                }
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
            try out.close()
            let acks = try self.acknowledged("ack\(round)")
            if p.terminationReason == .uncaughtSignal && acks.count < files.count { interrupted += 1 }
            acknowledged += acks
        }
        #expect(interrupted >= 5, "most rounds were killed mid-batch (\(interrupted) of 10)")
        #expect(!acknowledged.isEmpty, "some writes were acknowledged before the kills")
        try await ws.mustRun(Tools.hisp, ["audit", "verify"] + keyArgs)
        #expect(try await sql("PRAGMA integrity_check") == "ok")
        let listed = Set(try await ws.mustRun(Tools.hisp, ["message", "list", "--mailbox", mailbox] + keyArgs).stdoutText
            .split(separator: "\n").map { String($0.prefix(32)) })
        for id in acknowledged {
            #expect(listed.contains(id), "acknowledged message \(id) is in the store")
        }
        // Every stored message is whole.
        let backup = try await ws.mustRun(Tools.hisp, ["backup", "create", "--out", "after.bak"] + keyArgs)
        #expect(backup.status == 0)
        let verify = try await ws.mustRun(Tools.hisp, ["backup", "verify", "--in", "after.bak", "--key-file", "master.key"])
        #expect(verify.stdoutText.contains("sealed values open"))
    }

    @Test func operatorCommandsPrintWhatTheyDid() async throws {
        let ca = try await ws.mustRun(Tools.hisp, ["cert", "export", domain, "--ca", "--out", "ca.pem"] + keyArgs)
        #expect(ca.stdoutText.contains("wrote ca.pem"))
        // The domain's CA is its anchor; a peer's CA can be added per direction, listed and removed.
        try await ws.mustRun(Tools.hisp, ["ca", "create", "--subject", "CN=Peer CA", "--out-cert", "peer.pem", "--out-key", "peer.key"])
        let add = try await ws.mustRun(Tools.hisp, ["anchor", "add", "--domain", domain, "--direction", "incoming", "peer.pem"] + keyArgs)
        #expect(add.stdoutText.contains("added anchor for \(domain) (incoming): CN=Peer CA"))
        let list = try await ws.mustRun(Tools.hisp, ["anchor", "list", "--domain", domain] + keyArgs).stdoutText
        #expect(list.contains("incoming  CN=Peer CA") && list.contains("both  O=\(domain),CN=\(domain) Direct CA"), "\(list)")
        let fp = try await ws.mustRun("openssl", ["x509", "-in", "peer.pem", "-noout", "-fingerprint", "-sha256"]).stdoutText
            .split(separator: "=").last.map { $0.replacingOccurrences(of: ":", with: "").lowercased().trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        #expect(list.contains(String(fp.prefix(16))))
        try await ws.mustRun(Tools.hisp, ["anchor", "remove", "--domain", domain, String(fp.prefix(12))] + keyArgs)
        await #expect(!(try ws.mustRun(Tools.hisp, ["anchor", "list"] + keyArgs).stdoutText.contains("Peer CA")))
        // A bundle file is read now and subscribed.
        let bundle = try await ws.mustRun(Tools.hisp, ["bundle", "add", "--domain", domain, "peer.pem"] + keyArgs)
        #expect(bundle.stdoutText.contains("1 anchor(s) now"), "\(bundle.stdoutText)")
        #expect(try await ws.mustRun(Tools.hisp, ["bundle", "list"] + keyArgs).stdoutText.contains("peer.pem"))
        // The address certificate chains to the domain CA, per OpenSSL.
        try await ws.mustRun(Tools.hisp, ["cert", "export", mailbox, "--out", "addr.pem"] + keyArgs)
        let verified = try await ws.mustRun("openssl", ["verify", "-CAfile", "ca.pem", "addr.pem"])
        #expect(verified.stdoutText.contains("addr.pem: OK"))
        // A mailbox with messages is not removed by accident; a domain with addresses neither.
        _ = try await importMessage(phiMessage(), name: "m.eml")
        let refuse = try await ws.hisp(["address", "remove", mailbox] + keyArgs)
        #expect(refuse.status == 2 && refuse.stderr.contains("holds 1 message(s)"))
        let refuseDomain = try await ws.hisp(["domain", "remove", domain] + keyArgs)
        #expect(refuseDomain.status == 2 && refuseDomain.stderr.contains("still has 1 address(es)"))
        try await ws.mustRun(Tools.hisp, ["address", "remove", mailbox, "--delete-messages"] + keyArgs)
        try await ws.mustRun(Tools.hisp, ["domain", "remove", domain] + keyArgs)
        #expect(try await ws.mustRun(Tools.hisp, ["domain", "list"] + keyArgs).stdoutText.isEmpty)
        try await ws.mustRun(Tools.hisp, ["audit", "verify"] + keyArgs)
    }

    @Test func certImportReplacesTheKeyFromAP12BoundToTheAddress() async throws {
        try await ws.mustRun(Tools.hisp, ["ca", "create", "--subject", "CN=Outside CA", "--out-cert", "o.pem", "--out-key", "o.key"])
        try await ws.mustRun(Tools.hisp, ["cert", "issue", "--issuer-cert", "o.pem", "--issuer-key", "o.key", "--address", mailbox,
                                    "--out-cert", "leaf.pem", "--out-key", "leaf.key"])
        try await ws.mustRun(Tools.hisp, ["cert", "issue", "--issuer-cert", "o.pem", "--issuer-key", "o.key", "--address", "someone@else.example",
                                    "--out-cert", "other.pem", "--out-key", "other.key"])
        _ = try ws.write("pw", "a long export password\n")
        for name in ["leaf", "other"] {
            try await ws.mustRun("openssl", ["pkcs12", "-export", "-in", "\(name).pem", "-inkey", "\(name).key", "-passout", "file:pw", "-out", "\(name).p12"])
        }
        let wrong = try await ws.hisp(["cert", "import", mailbox, "--pkcs12", "other.p12", "--password-file", "pw"] + keyArgs)
        #expect(wrong.status == 2 && wrong.stderr.contains("is not bound to \(mailbox)"))
        try await ws.mustRun(Tools.hisp, ["cert", "import", mailbox, "--pkcs12", "leaf.p12", "--password-file", "pw"] + keyArgs)
        let exported = try await ws.mustRun(Tools.hisp, ["cert", "export", mailbox] + keyArgs).stdoutText
        let leaf = String(decoding: try ws.read("leaf.pem"), as: UTF8.self)
        #expect(exported.hasPrefix(leaf.trimmingCharacters(in: .newlines)))
    }
}
