import Foundation
import HISPTesting
import Testing

/// One `hisp serve` process for the tests: its own data directory, master key,
/// loopback address, DNS server, and a listener certificate from a test TLS CA.
struct Node {
    let name: String
    let ip: String
    let domain: String
    let user: String
    let password: String
    let ws: Workspace

    var data: String { ws.path(name) }
    var store: [String] { ["--data", data, "--key-file", ws.path("\(name).key")] }
    var config: String { ws.path("\(name).json") }
}

/// Two (or more) HISPs on loopback that find each other through their own DNS servers.
final class Gateways: @unchecked Sendable {
    let ws: Workspace
    private(set) var nodes: [String: Node] = [:]
    private var processes: [String: BackgroundProcess] = [:]

    init() throws {
        ws = try Workspace()
        // The listeners' certificates come from a TLS CA made here with OpenSSL; each HISP verifies the other's.
        try ws.mustRun("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tlsca.key",
                                   "-out", "tlsca.pem", "-days", "2", "-subj", "/CN=gateway test TLS CA",
                                   "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    @discardableResult
    func hisp(_ args: [String]) async throws -> ProcessResult {
        let r = try await ws.runDetached(Tools.hisp, args)
        guard r.status == 0 else { throw HarnessError(description: "hisp \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
        return r
    }

    /// `hisp init`, `domain add` (MX glue: the node's address), a mailbox with a password, and a listener certificate.
    @discardableResult
    func add(_ name: String, ip: String, domain: String, user: String) async throws -> Node {
        let node = Node(name: name, ip: ip, domain: domain, user: "\(user)@\(domain)", password: "pw-\(name)-\(UUID().uuidString.prefix(8))", ws: ws)
        try await hisp(["init"] + node.store)
        try await hisp(["domain", "add", domain, "--ipv4", ip] + node.store)
        _ = try ws.write("\(name).pw", node.password + "\n")
        try await hisp(["address", "add", node.user, "--password-file", ws.path("\(name).pw")] + node.store)
        _ = try ws.write("\(name)-tls.ext", "subjectAltName=DNS:hisp.\(domain)\nextendedKeyUsage=serverAuth\n")
        try await ws.mustRun("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name)-tls.key",
                                   "-out", "\(name)-tls.csr", "-subj", "/CN=hisp.\(domain)"])
        try await ws.mustRun("openssl", ["x509", "-req", "-in", "\(name)-tls.csr", "-CA", "tlsca.pem", "-CAkey", "tlsca.key", "-CAcreateserial",
                                   "-days", "2", "-out", "\(name)-tls.pem", "-extfile", "\(name)-tls.ext"])
        nodes[name] = node
        return node
    }

    /// Another hosted domain on an existing node (with its own CA and one mailbox).
    func addDomain(on name: String, domain: String, user: String) async throws -> String {
        guard let node = nodes[name] else { throw HarnessError(description: "no node \(name)") }
        try await hisp(["domain", "add", domain, "--ipv4", node.ip] + node.store)
        try await hisp(["address", "add", "\(user)@\(domain)", "--password-file", ws.path("\(name).pw")] + node.store)
        return "\(user)@\(domain)"
    }

    /// `truster` trusts the CA of `domain` (hosted by `owner`) for its own `forDomain`.
    func trust(_ truster: String, caOf domain: String, on owner: String, forDomain: String) async throws {
        guard let o = nodes[owner], let t = nodes[truster] else { throw HarnessError(description: "no such node") }
        let file = ws.path("\(domain)-ca.pem")
        try await hisp(["cert", "export", domain, "--ca", "--out", file] + o.store)
        try await hisp(["anchor", "add", file, "--domain", forDomain] + t.store)
    }

    /// The configuration: its own zones from its own DNS server, every other node's zones from that node's server.
    func configure(_ name: String, mxPort: Int = 2525, notificationSeconds: Int = 60, extraZones: [String: String] = [:],
                   routes: [String: [String: Any]] = [:], sections: [String: [String: Any]] = [:]) throws {
        guard let n = nodes[name] else { throw HarnessError(description: "no node \(name)") }
        var zones: [String: [String]] = [:]
        for other in nodes.values where other.name != name { zones[other.domain] = ["\(other.ip):5353"] }
        for (zone, server) in extraZones { zones[zone] = [server] }
        var config: [String: Any] = [
            "hostname": "hisp.\(n.domain)",
            "inbound": ["listen": "\(n.ip):2525"],
            "submission": ["listen": "\(n.ip):2587"],
            "dns": ["listen": "\(n.ip):5353", "rate_limit": 0],
            "tls": ["certificate": ws.path("\(name)-tls.pem"), "key": ws.path("\(name)-tls.key")],
            "resolver": ["servers": ["\(n.ip):5353"], "zones": zones, "timeout_seconds": 2],
            "delivery": ["mx_port": mxPort, "tls_verify": "full", "trust_roots": ws.path("tlsca.pem")],
            "timeouts": ["notification_seconds": notificationSeconds, "retry_seconds": [1], "queue_poll_seconds": 0.2],
            "log": ["format": "json", "level": "info"],
        ]
        if !routes.isEmpty { config["routes"] = routes }
        // Keys added to (or replacing those of) a section.
        for (name, keys) in sections {
            var section = config[name] as? [String: Any] ?? [:]
            section.merge(keys) { _, new in new }
            config[name] = section
        }
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: n.config))
    }

    func start(_ name: String) async throws {
        guard let n = nodes[name] else { throw HarnessError(description: "no node \(name)") }
        let ws = self.ws
        processes[name] = try await offThePool { try BackgroundProcess(ws, Tools.hisp, ["serve", "--config", n.config] + n.store, readyMarker: "hisp serve: ready", seconds: 120) }
    }

    func kill(_ name: String) { processes[name]?.stop() }
    func pid(_ name: String) -> Int32 { processes[name]?.process.processIdentifier ?? 0 }
    func log(_ name: String) -> String { processes[name]?.log ?? "" }

    /// A message through `from`'s submission port (STARTTLS, AUTH PLAIN), by Python's smtplib.
    @discardableResult
    func submit(from name: String, as sender: String? = nil, to: [String], subject: String, messageID: String, dispatched: Bool = false) async throws -> String {
        guard let n = nodes[name] else { throw HarnessError(description: "no node \(name)") }
        var args = [Tools.packageRoot.appendingPathComponent("Tests/Support/submit.py").path, n.ip, "2587", sender ?? n.user, n.password,
                    to.joined(separator: ","), "--subject", subject, "--message-id", messageID]
        if dispatched { args.append("--dispatched") }
        let r = try await ws.runDetached("python3", args)
        guard r.status == 0 else { throw HarnessError(description: "submission failed: \(r.stdoutText) \(r.stderr)") }
        return r.stdoutText
    }

    func trace(_ name: String, _ messageID: String) async throws -> String {
        guard let n = nodes[name] else { return "" }
        let r = try await ws.runDetached(Tools.hisp, ["message", "trace", messageID] + n.store)
        return r.stdoutText + r.stderr
    }

    /// Waits until the trace of `messageID` at `name` contains `text`; returns the trace.
    func waitForTrace(_ name: String, _ messageID: String, contains text: String, seconds: Double = 120) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        var last = ""
        while Date() < deadline {
            last = try await trace(name, messageID)
            if last.contains(text) { return last }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw HarnessError(description: "the trace of \(messageID) at \(name) never showed \"\(text)\":\n\(last)\nlog:\n\(log(name).suffix(3000))")
    }

    /// Waits until `name`'s log shows `text`, without holding a thread.
    func waitForLog(_ name: String, contains text: String, seconds: Double = 120) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if log(name).contains(text) { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw HarnessError(description: "the log of \(name) never showed \"\(text)\":\n\(log(name).suffix(3000))")
    }

    func mailbox(_ name: String, _ address: String) async throws -> [String] {
        guard let n = nodes[name] else { return [] }
        let r = try await hisp(["message", "list", "--mailbox", address] + n.store)
        return r.stdoutText.split(separator: "\n").map(String.init)
    }

    func waitForMailbox(_ name: String, _ address: String, seconds: Double = 120, until done: ([String]) -> Bool) async throws -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String] = []
        while Date() < deadline {
            last = try await mailbox(name, address)
            if done(last) { return last }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw HarnessError(description: "mailbox \(address) at \(name) never reached the expected state: \(last)")
    }

    deinit { for p in processes.values { p.stop() } }
}

/// The Direct gateway end to end: separate `hisp serve` processes on their own
/// loopback addresses, discovering each other's certificates and mail hosts in
/// each other's DNS servers (Direct AS 1.2; delivery notification as the Implementation Guide 1.0 says). Each test has its own
/// addresses, so they may run side by side.
@Suite struct GatewayTests {
    static let ack = "dispatched to the recipient's mailbox (final)"

    /// Two practices, anchors exchanged, both serving.
    func pair(_ ipA: String, _ ipB: String, tag: String, notificationSeconds: Int = 60) async throws -> Gateways {
        let g = try Gateways()
        try await g.add("a", ip: ipA, domain: "direct.a\(tag).test", user: "alice")
        try await g.add("b", ip: ipB, domain: "direct.b\(tag).test", user: "bob")
        try await g.trust("a", caOf: "direct.b\(tag).test", on: "b", forDomain: "direct.a\(tag).test")
        try await g.trust("b", caOf: "direct.a\(tag).test", on: "a", forDomain: "direct.b\(tag).test")
        return g
    }

    @Test func messagesGoBothWaysWithProcessedAndDispatchedMDNs() async throws {
        let g = try await pair("127.0.0.2", "127.0.0.3", tag: "1")
        try g.configure("a")
        try g.configure("b")
        try await g.start("a")
        try await g.start("b")
        let alice = g.nodes["a"]!.user, bob = g.nodes["b"]!.user

        // A -> B, asking for timely and reliable delivery: processed, then dispatched.
        let id1 = "<referral-1@\(g.nodes["a"]!.domain)>"
        try await g.submit(from: "a", to: [bob], subject: "Referral for Jane Roe", messageID: id1, dispatched: true)
        let t1 = try await g.waitForTrace("a", id1, contains: Self.ack)
        #expect(t1.contains("discovery  ok  \(bob): dns address-bound"))
        #expect(t1.contains("notification  ok  processed from \(bob)"))
        #expect(t1.contains("notification  ok  dispatched from \(bob)"))
        let bobBox = try await g.waitForMailbox("b", bob) { $0.contains { $0.contains("Referral for Jane Roe") } }
        #expect(bobBox.filter { $0.contains("Referral for Jane Roe") }.count == 1)
        #expect(try await g.trace("b", id1).contains("inbound  ok  stored in \(bob)"))
        let aliceBox = try await g.waitForMailbox("a", alice) { $0.count >= 2 }
        #expect(aliceBox.contains { $0.contains("Processed: Referral for Jane Roe") })
        #expect(aliceBox.contains { $0.contains("Dispatched: Referral for Jane Roe") })

        // B -> A, without the request: the processed MDN is final.
        let id2 = "<reply-1@\(g.nodes["b"]!.domain)>"
        try await g.submit(from: "b", to: [alice], subject: "Re: referral", messageID: id2)
        let t2 = try await g.waitForTrace("b", id2, contains: "processed by the recipient's HISP (final)")
        #expect(!t2.contains("dispatched from"))
        _ = try await g.waitForMailbox("a", alice) { $0.contains { $0.contains("Re: referral") } }
        _ = try await g.waitForMailbox("b", bob) { $0.contains { $0.contains("Processed: Re: referral") } }

        // The message in the mailbox is the decrypted original, and in the store only sealed.
        let show = try await g.hisp(["message", "show", bobBox.first { $0.contains("Referral") }!.split(separator: " ")[0].description] + g.nodes["b"]!.store)
        #expect(show.stdoutText.contains("Patient Jane Roe"))
        let raw = try await g.ws.run("grep", ["-rl", "Jane Roe", g.nodes["b"]!.data])
        #expect(raw.status == 1, "plain text found in the data directory: \(raw.stdoutText)")
        // The queue shows both messages and the MDNs it sent.
        let queue = try await g.hisp(["queue", "list"] + g.nodes["b"]!.store).stdoutText
        #expect(queue.contains("\(bob) -> \(alice)"))
        #expect(queue.contains("delivered (notification)"))
    }

    @Test func failuresReachTheSenderAndUntrustedMessagesAreRefused() async throws {
        let g = try await pair("127.0.0.4", "127.0.0.5", tag: "2")
        // B also hosts a domain A does not trust; that domain trusts A for sending.
        let carol = try await g.addDomain(on: "b", domain: "direct.other2.test", user: "carol")
        try await g.trust("b", caOf: "direct.a2.test", on: "a", forDomain: "direct.other2.test")
        // A asks B's DNS server about a domain nobody publishes certificates for.
        try g.configure("a", extraZones: ["direct.other2.test": "127.0.0.5:5353", "direct.nocert2.test": "127.0.0.5:5353"])
        try g.configure("b")
        try await g.start("a")
        try await g.start("b")
        let alice = g.nodes["a"]!.user
        let a = g.nodes["a"]!.domain

        // No certificate published: a failure DSN, before anything is sent.
        let id1 = "<nocert@\(a)>"
        try await g.submit(from: "a", to: ["dave@direct.nocert2.test"], subject: "to nowhere", messageID: id1)
        let t1 = try await g.waitForTrace("a", id1, contains: "failed:")
        #expect(t1.contains("no trusted certificate for dave@direct.nocert2.test"))
        #expect(!t1.contains("delivery  ok"))

        // An unknown mailbox at a trusted HISP: the domain certificate is found, B refuses at RCPT (5.1.1).
        let id2 = "<unknown@\(a)>"
        try await g.submit(from: "a", to: ["nobody@\(g.nodes["b"]!.domain)"], subject: "to a stranger", messageID: id2)
        let t2 = try await g.waitForTrace("a", id2, contains: "failed:")
        #expect(t2.contains("dns domain-bound"))
        #expect(t2.contains("5.1.1"))

        // An untrusted HISP: carol's certificate is published but chains to no anchor of A.
        let id3 = "<untrusted@\(a)>"
        try await g.submit(from: "a", to: [carol], subject: "to an untrusted HISP", messageID: id3)
        let t3 = try await g.waitForTrace("a", id3, contains: "failed:")
        #expect(t3.contains("no trusted certificate for \(carol)"))
        #expect(t3.contains("trust"))

        // Each failure reached alice as a DSN.
        let box = try await g.waitForMailbox("a", alice) { $0.filter { $0.contains("Undeliverable") }.count >= 3 }
        #expect(box.filter { $0.contains("Undeliverable") }.count == 3)

        // The other way: carol's HISP trusts A, but A does not trust carol: refused in the SMTP session with 5.7.1.
        let id4 = "<from-untrusted@direct.other2.test>"
        _ = try await g.ws.runDetached("python3", [Tools.packageRoot.appendingPathComponent("Tests/Support/submit.py").path, "127.0.0.5", "2587",
                                                  carol, g.nodes["b"]!.password, alice, "--subject", "from an untrusted HISP", "--message-id", id4])
        let t4 = try await g.waitForTrace("b", id4, contains: "failed:")
        #expect(t4.contains("5.7.1"))
        #expect(t4.contains("trust failed"))
        let audit = try await g.hisp(["audit", "list"] + g.nodes["a"]!.store).stdoutText
        #expect(audit.contains("message.refused") && audit.contains("trust failed"))
        #expect(!(try await g.mailbox("a", alice)).contains { $0.contains("from an untrusted HISP") })
        _ = try await g.waitForMailbox("b", carol) { $0.contains { $0.contains("Undeliverable") } }
    }

    @Test func noMDNInTimeGivesAFailureDSNAndALateMDNIsSwallowed() async throws {
        let g = try await pair("127.0.0.6", "127.0.0.7", tag: "3")
        try g.configure("a", notificationSeconds: 4)
        // B cannot reach A's MX at first (a dead port), so its MDN waits in its queue.
        try g.configure("b", mxPort: 2599)
        try await g.start("a")
        try await g.start("b")
        let alice = g.nodes["a"]!.user, bob = g.nodes["b"]!.user
        let id = "<slow@\(g.nodes["a"]!.domain)>"
        try await g.submit(from: "a", to: [bob], subject: "waiting for an answer", messageID: id)
        _ = try await g.waitForTrace("a", id, contains: "no notification in time")
        _ = try await g.waitForMailbox("a", alice) { $0.contains { $0.contains("Undeliverable") } }

        // B comes back able to reach A: its processed MDN arrives late and is swallowed.
        g.kill("b")
        try g.configure("b")
        try await g.start("b")
        let t = try await g.waitForTrace("a", id, contains: "swallowed")
        #expect(t.contains("processed from \(bob) after the timeout"))
        try await Task.sleep(for: .seconds(1))
        let box = try await g.mailbox("a", alice)
        #expect(!box.contains { $0.contains("Processed:") }, "a late MDN reached the sender: \(box)")
    }

    @Test func killDashNineDuringSubmissionsLosesAndDuplicatesNothing() async throws {
        let g = try await pair("127.0.0.8", "127.0.0.9", tag: "4")
        try g.configure("a")
        try g.configure("b")
        try await g.start("a")
        try await g.start("b")
        let bob = g.nodes["b"]!.user, a = g.nodes["a"]!
        let acks = g.ws.path("acks.txt")
        let r = try await g.ws.runDetached("python3", [Tools.packageRoot.appendingPathComponent("Tests/Support/submit.py").path, a.ip, "2587",
                                                       a.user, a.password, bob, "--count", "60", "--acks", acks, "--kill", "\(g.pid("a"))", "--after", "12"])
        #expect(r.stdoutText.contains("stopped at message"), "the kill did not interrupt the stream: \(r.stdoutText)")
        let acknowledged = ((try? String(contentsOfFile: acks, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        #expect(acknowledged.count >= 12)
        g.kill("a")
        try await g.start("a")
        // Every message that got a 250 reaches bob (or is reported), exactly once.
        for id in acknowledged {
            let t = try await g.waitForTrace("a", id, contains: "(final)", seconds: 60)
            #expect(t.contains(Self.ack), "\(id): \(t)")
        }
        let box = try await g.mailbox("b", bob)
        for id in acknowledged {
            let n = id.dropFirst("<stream-".count).prefix { $0 != "@" }
            #expect(box.filter { $0.hasSuffix("  stream \(n)") }.count == 1, "stream \(n) in bob's mailbox: \(box.filter { $0.hasSuffix("  stream \(n)") })")
        }
        #expect(Set(box.map { $0.split(separator: " ").last.map(String.init) ?? "" }).count == box.count, "a message was stored twice: \(box)")
    }

    /// Postfix between a mail client and our submission port (SASL PLAIN over
    /// STARTTLS, as a practice's existing mail server would relay), and between
    /// our SMTP client and the other HISP's MX (a gateway in front of a HISP).
    @Test func postfixRelaysIntoSubmissionAndReceivesFromOurClient() async throws {
        let g = try await pair("127.0.0.10", "127.0.0.11", tag: "5")
        let a = g.nodes["a"]!, b = g.nodes["b"]!
        _ = try g.ws.write("postfix-tls.ext", "subjectAltName=DNS:postfix.test,IP:127.0.0.12\nextendedKeyUsage=serverAuth\n")
        try await g.ws.mustRun("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "postfix-tls.key",
                                     "-out", "postfix-tls.csr", "-subj", "/CN=postfix.test"])
        try await g.ws.mustRun("openssl", ["x509", "-req", "-in", "postfix-tls.csr", "-CA", "tlsca.pem", "-CAkey", "tlsca.key", "-CAcreateserial",
                                     "-days", "2", "-out", "postfix-tls.pem", "-extfile", "postfix-tls.ext"])
        try await g.ws.mustRun("chmod", ["644", g.ws.path("postfix-tls.key")])
        let postfix = try await offThePool { try PostfixServer(g.ws, listen: "127.0.0.12:10025", settings: [
            // Outbound mail from the practice goes to HISP A's submission port, authenticated as alice.
            "relayhost": "[\(a.ip)]:2587",
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_password_maps": "inline:{ [\(a.ip)]:2587=\(a.user):\(a.password) }",
            "smtp_sasl_security_options": "noanonymous",
            "smtp_sasl_mechanism_filter": "plain",
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_CAfile": g.ws.path("tlsca.pem"),
            "smtp_tls_loglevel": "1",
            // Mail for A's domain (the MDNs from B) goes on to A's MX.
            "relay_domains": a.domain,
            "transport_maps": "inline:{ \(a.domain)=smtp:[\(a.ip)]:2525 }",
            "smtpd_tls_cert_file": g.ws.path("postfix-tls.pem"),
            "smtpd_tls_key_file": g.ws.path("postfix-tls.key"),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_loglevel": "1",
            // A deferred message is tried again within seconds, not minutes.
            "queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
        ]) }
        try g.configure("a")
        // B reaches A's domain through Postfix, verifying Postfix's certificate.
        try g.configure("b", routes: [a.domain: ["host": "127.0.0.12", "port": 10025, "tls_verify": "full", "trust_roots": g.ws.path("tlsca.pem")]])
        try await g.start("a")
        try await g.start("b")

        let id = "<via-postfix@\(a.domain)>"
        let message = """
            From: \(a.user)\r
            To: \(b.user)\r
            Subject: Relayed by the practice mail server\r
            Message-ID: \(id)\r
            Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r
            \r
            Patient Jane Roe, DOB 1970-01-01.\r

            """
        try postfix.sendmail(from: a.user, to: [b.user], message: Array(message.utf8))
        let t: String
        do {
            _ = try await g.waitForTrace("a", id, contains: Self.ack, seconds: 60)
            // Postfix relays B's two MDNs independently, so the processed one
            // may arrive after the dispatched one (it is then passed on all the same).
            t = try await g.waitForTrace("a", id, contains: "processed from \(b.user)", seconds: 60)
        } catch {
            Issue.record("\(error)\nPostfix log:\n\(postfix.log)\nB log:\n\(g.log("b").suffix(4000))")
            return
        }
        // Postfix authenticated over TLS as alice; A signed, encrypted and delivered to B.
        #expect(t.contains("submitted by \(a.user) over TLS"))
        _ = try await g.waitForMailbox("b", b.user) { $0.contains { $0.contains("Relayed by the practice mail server") } }
        // B's MDNs went through Postfix, which took them from our client over TLS and passed them to A's MX.
        let log = postfix.log
        #expect(log.contains("relay=\(a.ip)[\(a.ip)]:2587") && log.contains("status=sent"), "\(log)")
        #expect(log.contains("TLS connection established to \(a.ip)[\(a.ip)]:2587"))
        #expect(log.contains("TLS connection established from"))
        #expect(log.contains("relay=\(a.ip)[\(a.ip)]:2525"))
        _ = try await g.waitForMailbox("a", a.user) { $0.contains { $0.contains("Dispatched: Relayed by the practice mail server") } }
        postfix.stop()
    }

    /// The README's example configuration is accepted as written; a misspelt key is refused, not ignored.
    @Test func theREADMEConfigurationLoadsAndUnknownKeysAreRefused() async throws {
        let ws = try Workspace()
        let readme = try String(contentsOf: Tools.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let parts = readme.components(separatedBy: "```json\n")
        #expect(parts.count == 2, "one JSON example in the README")
        let example = String(parts.last?.components(separatedBy: "```").first ?? "")
        // The store is checked after the configuration: reaching it means the file was accepted.
        let good = try await ws.hisp(["serve", "--config", try ws.write("readme.json", example), "--data", ws.path("none")])
        #expect(good.status == 2)
        #expect(good.stderr.contains("no HISP data directory"), "\(good.stderr)")
        let bad = try await ws.hisp(["serve", "--config", try ws.write("bad.json", #"{"timeouts": {"notification_second": 5}}"#), "--data", ws.path("none")])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("unknown key timeouts.notification_second"), "\(bad.stderr)")
        let route = try await ws.hisp(["serve", "--config", try ws.write("route.json", #"{"routes": {"x.test": {"host": "h", "tls": "none"}}}"#), "--data", ws.path("none")])
        #expect(route.stderr.contains("unknown key routes.x.test.tls"), "\(route.stderr)")
        let range = try await ws.hisp(["serve", "--config", try ws.write("range.json", #"{"timeouts": {"session_discovery_seconds": 1e300}}"#), "--data", ws.path("none")])
        #expect(range.status == 2)
        #expect(range.stderr.contains("timeouts.session_discovery_seconds: 1e+300 is outside 0...600 seconds"), "\(range.stderr)")
        let provider = try await ws.hisp(["serve", "--config", try ws.write("crypto.json", #"{"crypto": {"provider": "hsm"}}"#), "--data", ws.path("none")])
        #expect(provider.status == 2)
        #expect(provider.stderr.contains("crypto.provider: hsm is not auto, builtin or openssl"), "\(provider.stderr)")
    }

    /// The README's first command: two HISPs in one process, one message, both MDNs.
    @Test func demoRunsEndToEnd() async throws {
        let ws = try Workspace()
        let r = try await ws.runDetached(Tools.hisp, ["demo", "--timeout", "60"])
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        let out = r.stdoutText
        for step in ["discovery ok: bob@direct.clinic-b.test: dns address-bound", "security ok: signed and encrypted",
                     "delivery ok: attempt 1: accepted", "inbound ok: stored in bob@direct.clinic-b.test",
                     "notification ok: processed from bob@", "notification ok: dispatched from bob@", "done: bob@direct.clinic-b.test has 1 message(s)"] {
            #expect(out.contains(step), "missing \"\(step)\" in:\n\(out)")
        }
    }

    /// `hisp quickstart` on an empty directory: everything created, served, and the printed swaks command delivers.
    @Test func quickstartSetsUpAndServes() async throws {
        let ws = try Workspace()
        let server = try await offThePool { try BackgroundProcess(ws, Tools.hisp, ["quickstart", "--domain", "direct.quick.test", "--data", ws.path("data"),
                                                            "--inbound", "127.0.0.13:2525", "--submission", "127.0.0.13:2587", "--dns", "127.0.0.13:5353"],
                                           readyMarker: "hisp serve: ready", seconds: 60) }
        let log = server.log
        #expect(log.contains("master key: \(ws.path("hisp-master.key")) (new, mode 0600)"))
        #expect(log.contains("provider.direct.quick.test.  CERT PKIX"))
        #expect(log.contains("hisp.direct.quick.test.  IN A     127.0.0.13"), "the MX glue is the inbound listener's address: \(log)")
        let password = log.split(separator: "\n").first { $0.contains("  password: ") }?.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        #expect(password.count == 20)
        // The command it printed, as printed.
        guard let swaks = log.split(separator: "\n").firstIndex(where: { $0.contains("swaks --server") }) else {
            Issue.record("no swaks line in \(log)")
            return
        }
        let lines = log.split(separator: "\n")
        let command = (lines[swaks...].prefix(3)).map { $0.replacingOccurrences(of: "\\", with: "") }.joined(separator: " ")
        let sent = try await ws.runDetached("bash", ["-c", command])
        #expect(sent.status == 0, "\(sent.stdoutText) \(sent.stderr)")
        let mailbox = ["message", "list", "--mailbox", "provider@direct.quick.test", "--data", ws.path("data"), "--key-file", ws.path("hisp-master.key")]
        var listing = ""
        for _ in 0..<40 {
            listing = try await ws.runDetached(Tools.hisp, mailbox).stdoutText
            if listing.contains("Processed: first Direct message") { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(listing.contains("  first Direct message"), "\(listing)")
        #expect(listing.contains("Processed: first Direct message"), "\(listing)")
        // The mailbox in a mail client, with the POP3 settings quickstart printed (curl, the certificate verified).
        #expect(log.contains("  server 127.0.0.13, port 2995, SSL/TLS, normal password, user name provider@direct.quick.test"), "\(log)")
        let fetched = try await ws.runDetached("curl", [
            "-sS", "--cacert", ws.path("data/tls/listener.pem"), "--resolve", "hisp.direct.quick.test:2995:127.0.0.13",
            "pop3s://hisp.direct.quick.test:2995/1", "-u", "provider@direct.quick.test:\(password)"])
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(fetched.stdoutText.hasPrefix("Authentication-Results: hisp.direct.quick.test; smime=pass"), "\(fetched.stdoutText)")
        #expect(fetched.stdoutText.contains("Subject: first Direct message"), "\(fetched.stdoutText)")
        // And over IMAP, as a mail client reads it with the settings printed: server 127.0.0.13 (curl imaps://,
        // the certificate verified for that address).
        #expect(log.contains("  server 127.0.0.13, port 2993, SSL/TLS, normal password, user name provider@direct.quick.test"), "\(log)")
        let viaIMAP = try await ws.runDetached("curl", [
            "-sS", "--cacert", ws.path("data/tls/listener.pem"),
            "imaps://127.0.0.13:2993/INBOX;UID=1", "-u", "provider@direct.quick.test:\(password)"])
        #expect(viaIMAP.status == 0, "\(viaIMAP.stderr)")
        #expect(viaIMAP.stdoutText == fetched.stdoutText, "the same bytes over IMAP as over POP3")
        server.stop()
        // Run again: it reuses what exists.
        let again = try await offThePool { try BackgroundProcess(ws, Tools.hisp, ["quickstart", "--domain", "direct.quick.test", "--data", ws.path("data"),
                                                           "--inbound", "127.0.0.13:2525", "--submission", "127.0.0.13:2587", "--dns", "127.0.0.13:5353"],
                                          readyMarker: "hisp serve: ready", seconds: 60) }
        #expect(again.log.contains("using the data directory"))
        #expect(again.log.contains("mailbox provider@direct.quick.test: exists"))
        again.stop()
    }

    /// Trust from a bundle subscription, added while `hisp serve` runs: before it, B's certificates are not
    /// trusted; a few seconds after `hisp bundle add`, the same message goes through with its MDN.
    @Test func aTrustBundleAddedWhileServingIsUsed() async throws {
        let g = try Gateways()
        let a = try await g.add("a", ip: "127.0.0.14", domain: "direct.a6.test", user: "alice")
        let b = try await g.add("b", ip: "127.0.0.15", domain: "direct.b6.test", user: "bob")
        try await g.trust("b", caOf: a.domain, on: "a", forDomain: b.domain)
        try g.configure("a")
        try g.configure("b")
        try await g.start("a")
        try await g.start("b")
        let before = "<before-bundle@\(a.domain)>"
        try await g.submit(from: "a", to: [b.user], subject: "before the bundle", messageID: before)
        let t1 = try await g.waitForTrace("a", before, contains: "failed:")
        #expect(t1.contains("no trusted certificate for \(b.user)"))

        let bundle = g.ws.path("bundle.pem")
        try await g.hisp(["cert", "export", b.domain, "--ca", "--out", bundle] + b.store)
        try await g.hisp(["bundle", "add", "--domain", a.domain, bundle] + a.store)
        // The server reads the store's bundles every few seconds.
        try await g.waitForLog("a", contains: "trust bundle loaded")
        let after = "<after-bundle@\(a.domain)>"
        try await g.submit(from: "a", to: [b.user], subject: "after the bundle", messageID: after)
        let t2 = try await g.waitForTrace("a", after, contains: "processed by the recipient's HISP (final)")
        #expect(t2.contains("discovery  ok  \(b.user)"))
    }
}

/// `hisp serve` as an operator signals it: SIGHUP rereads the trust anchors and
/// keeps serving; SIGTERM stops every service gracefully and exits 0.
@Suite struct ServeSignalTests {
    @Test func sighupKeepsServingAndSigtermStopsGracefully() async throws {
        let ws = try Workspace()
        // A child of a test thread inherits its blocked signals; the wrapper unblocks them, as a shell or systemd would have them.
        let unblocked = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])"
        let server = try await offThePool { try BackgroundProcess(ws, "python3", ["-c", unblocked, Tools.hisp, "quickstart", "--domain", "direct.sig42.test",
                                                           "--data", ws.path("data"), "--inbound", "127.0.0.42:2525",
                                                           "--submission", "127.0.0.42:2587", "--dns", "127.0.0.42:5353"],
                                           readyMarker: "") }
        // Waited for without blocking a thread of the cooperative pool (other tests need them).
        let ready = Date().addingTimeInterval(60)
        while !server.log.contains("hisp serve: ready") && Date() < ready { try await Task.sleep(for: .milliseconds(50)) }
        try #require(server.log.contains("hisp serve: ready"), "\(server.log)")
        let pid = server.process.processIdentifier
        kill(pid, SIGHUP)
        let deadline = Date().addingTimeInterval(30)
        while !server.log.contains("SIGHUP: trust anchors and bundles reread") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(server.log.contains("SIGHUP: trust anchors and bundles reread"), "\(server.log)")
        #expect(server.process.isRunning)
        // Still serving: the submission port answers.
        let probe = try await ws.runDetached("swaks", ["--server", "127.0.0.42:2587", "--quit-after", "EHLO", "--timeout", "20"])
        #expect(probe.stdoutText.contains("220 "), "\(probe.stdoutText)")

        kill(pid, SIGTERM)
        let stopBy = Date().addingTimeInterval(60)
        while server.process.isRunning && Date() < stopBy { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!server.process.isRunning)
        if !server.process.isRunning {
            #expect(server.process.terminationStatus == 0 && server.process.terminationReason == .exit, "\(server.log)")
        }
        #expect(server.log.contains("hisp serve: stopped"), "\(server.log)")
    }
}
