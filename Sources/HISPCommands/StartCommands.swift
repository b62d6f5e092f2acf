import ArgumentParser
import DirectCore
import Foundation
import HISPApp
import HTTPFetch
import InternetMessage
import Logging
import NIOSSL
import SMTPClient
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct QuickstartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quickstart",
        abstract: "Set up a HISP on this machine in one step and start serving on local ports.",
        discussion: """
            Creates what is missing (the data directory and master key file, the domain with its CA and certificates, \
            a mailbox with a generated password), prints the DNS records to publish and how to send a first message, \
            then runs `hisp serve`. Run again, it reuses what exists. Defaults: inbound SMTP 127.0.0.1:2525, \
            submission 127.0.0.1:2587, IMAP 127.0.0.1:2143 (STARTTLS) and 2993 (TLS), POP3 127.0.0.1:2110 (STLS) and 2995 (TLS), DNS 127.0.0.1:5353.
            """)

    @Option(help: "The Direct domain to host.") var domain: String = "direct.practice.test"
    @Option(help: "The first mailbox's local part.") var user: String = "provider"
    @Option(help: "The configuration file (JSON, README \"Configuration\").") var config: String?
    @OptionGroup var listen: ListenOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let name = try CommandIO.domainName(domain)
        guard let address = DirectAddress("\(user)@\(name)") else { throw CLIFailure.usage("\(user)@\(name) is not a Direct address") }
        var c = AppConfiguration()
        if let config {
            do { c = try AppConfiguration.load(config) } catch let e as ConfigurationError { throw CLIFailure.usage(e.description) }
        }
        listen.apply(to: &c)
        // Quickstart serves IMAP and POP3 too, for a mail client or practice software to read the mailbox:
        // on the submission listener's address unless told otherwise, ports 2110 and 2995.
        let submissionHost = (try? parseHostPort(c.submission?.listen ?? AppConfiguration.defaultSubmission, what: "submission"))?.host ?? "127.0.0.1"
        let h = submissionHost.contains(":") ? "[\(submissionHost)]" : submissionHost
        if c.pop3 == nil { c.pop3 = AppConfiguration.MailAccess(listen: "\(h):2110", tlsListen: "\(h):2995") }
        if c.imap == nil { c.imap = AppConfiguration.MailAccess(listen: "\(h):2143", tlsListen: "\(h):2993") }
        // With neither key option, a key file beside (never inside) the data directory.
        var options = store
        if options.keyFile == nil && options.passphraseFile == nil && ProcessInfo.processInfo.environment["HISP_PASSPHRASE"] == nil {
            let parent = ((options.data as NSString).standardizingPath as NSString).deletingLastPathComponent
            options.keyFile = (parent as NSString).appendingPathComponent("hisp-master.key")
        }
        let step = "hisp quickstart:"
        if FileManager.default.fileExists(atPath: options.databasePath) {
            say("\(step) using the data directory \(options.data)")
        } else {
            let (material, keyExisted) = try await Provisioning.createStore(options)
            say("\(step) created the data directory \(options.data) (encrypted store, mode 0700)")
            if case .keyFile = material.kind {
                say("  master key: \(options.keyFile ?? "")\(keyExisted ? " (existing)" : " (new, mode 0600)"); back it up apart from the data")
            }
        }
        let inbound = try? parseHostPort(c.inbound?.listen ?? AppConfiguration.defaultInbound, what: "inbound")
        let inboundPort = inbound?.port ?? 2525
        // The MX glue: the inbound listener's IPv4 address when it is bound to one.
        let glue = inbound.map(\.host).flatMap { h in IPAddressBytes.parse(h).flatMap { $0.count == 4 && $0 != [0, 0, 0, 0] ? h : nil } } ?? "127.0.0.1"
        var submission = (try? parseHostPort(c.submission?.listen ?? AppConfiguration.defaultSubmission, what: "submission")) ?? ("127.0.0.1", 2587)
        // Listening on every address: a client on this machine connects to loopback (in the certificate).
        if submission.0 == "0.0.0.0" || submission.0 == "::" { submission.0 = "127.0.0.1" }
        var password: String? = nil
        let records: [String] = try await options.withStore { s in
            if try await s.domains().contains(where: { $0.name == name }) {
                say("  domain \(name): exists")
            } else {
                let published = DomainDNS(host: "hisp.\(name)", ipv4: glue, ipv6: nil)
                let (ca, _, _) = try await Provisioning.addDomain(name, published: published, ca: nil, in: s)
                say("  domain \(name): created, with its CA (\(ca.certificate.subject)), a domain-bound certificate, and the CA as its trust anchor")
            }
            if try await s.addresses().contains(where: { $0.address == address }) {
                say("  mailbox \(address): exists (its password is the one printed when it was created)")
            } else {
                let p = Provisioning.newPassword()
                _ = try await Provisioning.addAddress(address, passwordHash: try PasswordHash.make(p), in: s)
                password = p
                say("  mailbox \(address): created with its own key and address-bound certificate")
                say("  password: \(p)   (shown once; it is stored only as a salted scrypt hash)")
            }
            return try await DNSCommand.Records.lines(s, name)
        }
        say("")
        say("DNS: so that other HISPs find this one (not needed on this machine):")
        for line in records { say("  " + line) }
        say("")
        say("Send a first message (to yourself) through submission, with STARTTLS and AUTH:")
        let caFile = c.tls?.certificate ?? ((options.data as NSString).appendingPathComponent("tls") as NSString).appendingPathComponent("listener.pem")
        say("  swaks --server \(submission.0) --port \(submission.1) --tls --tls-verify --tls-ca-path \(caFile) \\")
        say("        --auth PLAIN --auth-user \(address) --auth-password '\(password ?? "PASSWORD")' \\")
        say("        --from \(address) --to \(address) --header 'Subject: first Direct message'")
        say("then: hisp message list --mailbox \(address) --data \(options.data)\(options.keyFile.map { " --key-file \($0)" } ?? "")")
        func local(_ listen: String?, _ fallback: String, _ what: String) -> (String, Int) {
            var hp = (try? parseHostPort(listen ?? fallback, what: what)) ?? ("127.0.0.1", 0)
            if hp.0 == "0.0.0.0" || hp.0 == "::" { hp.0 = "127.0.0.1" }
            return (hp.0, hp.1)
        }
        if c.imap?.enabled ?? true {
            let tls = local(c.imap?.tlsListen, AppConfiguration.defaultIMAPS, "imap.tls_listen")
            let plain = local(c.imap?.listen, AppConfiguration.defaultIMAP, "imap.listen")
            say("Read the mailbox in a mail client (docs/mail-clients.md), incoming mail server IMAP:")
            say("  server \(tls.0), port \(tls.1), SSL/TLS, normal password, user name \(address)   (or port \(plain.1) with STARTTLS)")
        }
        if c.pop3?.enabled ?? true {
            let tls = local(c.pop3?.tlsListen, AppConfiguration.defaultPOP3S, "pop3.tls_listen")
            let plain = local(c.pop3?.listen, AppConfiguration.defaultPOP3, "pop3.listen")
            say("Or in practice software that fetches by POP3:")
            say("  server \(tls.0), port \(tls.1), SSL/TLS, normal password, user name \(address)   (or port \(plain.1) with STARTTLS)")
        }
        if (c.imap?.enabled ?? true) || (c.pop3?.enabled ?? true) {
            say("  The server's TLS certificate (self-signed unless configured), for the client to trust: \(caFile)")
        }
        say("Other HISPs deliver to port \(inboundPort) here; in production that is port 25 (see README \"Configuration\").")
        say("")
        fflush(nil)
        try await Serving.run(c, store: options)
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Two HISPs on loopback in this process: one Direct message from one to the other, step by step.",
        discussion: """
            Each HISP gets its own encrypted store, CA, certificates, DNS server and SMTP listeners on free loopback ports. \
            The sending HISP finds the recipient's certificate and mail host in the receiving HISP's DNS, checks them \
            against its anchors, signs, encrypts and delivers over verified TLS; the receiver decrypts, verifies, stores \
            and answers with processed and dispatched MDNs.
            """)

    @Option(help: "Keep the two data directories here (default: a temporary directory, removed at the end).") var keep: String?
    @Option(help: "Give up after this many seconds.") var timeout: Int = 90

    struct Side {
        let label: String
        let domain: String
        let user: DirectAddress
        let options: StoreOptions
        let dataDirectory: String
        var ports: (inbound: Int, submission: Int, dns: Int)
        var certificatePath = ""
    }

    func run() async throws {
        let fm = FileManager.default
        let base: String
        if let keep {
            guard !fm.fileExists(atPath: keep) else { throw CLIFailure.usage("--keep \(keep) exists; give a new directory") }
            base = keep
        } else {
            base = (NSTemporaryDirectory() as NSString).appendingPathComponent("hisp-demo-\(UUID().uuidString.prefix(8))")
        }
        try fm.createDirectory(atPath: base, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { if keep == nil { try? fm.removeItem(atPath: base) } }

        let ports = try FreePorts.pick(6)
        var sides: [Side] = []
        for (i, (label, domain, user)) in [("A", "direct.dental-a.test", "alice"), ("B", "direct.clinic-b.test", "bob")].enumerated() {
            let data = (base as NSString).appendingPathComponent(label.lowercased())
            let options = try StoreOptions.parse(["--data", data, "--key-file", (base as NSString).appendingPathComponent("\(label.lowercased()).key")])
            guard let address = DirectAddress("\(user)@\(domain)") else { throw CLIFailure.usage("bad demo address") }
            sides.append(Side(label: label, domain: domain, user: address, options: options, dataDirectory: data,
                              ports: (ports[3 * i], ports[3 * i + 1], ports[3 * i + 2])))
        }
        let started = Date()
        func say(_ text: String) {
            FileHandle.standardOutput.write(Data((String(format: "[%6.2fs] ", Date().timeIntervalSince(started)) + text + "\n").utf8))
        }

        // 1. Two practices, each with its own HISP.
        var password = ""
        var cas: [[UInt8]] = []
        for i in sides.indices {
            let side = sides[i]
            _ = try await Provisioning.createStore(side.options)
            let p = Provisioning.newPassword()
            let ca: [UInt8] = try await side.options.withStore { s in
                let (ca, _, _) = try await Provisioning.addDomain(side.domain, published: DomainDNS(host: "hisp.\(side.domain)", ipv4: "127.0.0.1", ipv6: nil),
                                                                  ca: nil, in: s)
                _ = try await Provisioning.addAddress(side.user, passwordHash: try PasswordHash.make(p), in: s)
                return try StoredPKI.der(ca.certificate)
            }
            if i == 0 { password = p }
            cas.append(ca)
            sides[i].certificatePath = try ListenerTLS.context(
                certificate: nil, key: nil, selfSignedIn: (side.dataDirectory as NSString).appendingPathComponent("tls"), hostname: "hisp.\(side.domain)"
            ).certificatePath
            say("HISP \(side.label) hosts \(side.domain): encrypted store, its own CA, a domain certificate, mailbox \(side.user) with an address certificate")
        }
        // 2. Each trusts the other's CA for its own domain (what a trust bundle does between real HISPs).
        for (i, side) in sides.enumerated() {
            let peer = sides[1 - i]
            try await side.options.withStore { s in
                _ = try await s.addAnchor(domain: side.domain, direction: .both, certificate: cas[1 - i], subject: "\(peer.domain) Direct CA")
            }
            say("HISP \(side.label) trusts the CA of \(peer.domain) as an anchor for \(side.domain)")
        }

        // 3. Both serving: MX, submission, certificate DNS, the queue.
        let a = sides[0], b = sides[1]
        func configuration(_ me: Side, _ peer: Side) -> AppConfiguration {
            var c = AppConfiguration()
            c.hostname = "hisp.\(me.domain)"
            c.inbound = .init(listen: "127.0.0.1:\(me.ports.inbound)")
            c.submission = .init(listen: "127.0.0.1:\(me.ports.submission)")
            c.dns = .init(listen: "127.0.0.1:\(me.ports.dns)", rateLimit: 0)
            var r = AppConfiguration.Resolver()
            r.servers = ["127.0.0.1:\(me.ports.dns)"]
            // In the world, the DNS delegation does this.
            r.zones = [peer.domain: ["127.0.0.1:\(peer.ports.dns)"]]
            r.timeoutSeconds = 2
            c.resolver = r
            var d = AppConfiguration.Delivery()
            // The peer's MX listens on a high port here; its certificate is its own self-signed one.
            d.mxPort = peer.ports.inbound
            d.tlsVerify = "full"
            d.trustRoots = peer.certificatePath
            c.delivery = d
            var t = AppConfiguration.Timeouts()
            t.notificationSeconds = timeout
            t.retrySeconds = [1, 2, 5]
            c.timeouts = t
            var l = AppConfiguration.Log()
            l.format = "text"
            l.level = "warning"
            c.log = l
            return c
        }
        let logger = try Serving.logger(configuration(a, b))
        try await a.options.withStore(actor: "smtp") { storeA in
            try await b.options.withStore(actor: "smtp") { storeB in
                try await AsyncHTTPFetcher.withFetcher { fetcher in
                    let (serverA, _) = try await HISPServer.start(configuration: configuration(a, b), store: storeA, dataDirectory: a.dataDirectory,
                                                                  fetcher: fetcher, logger: logger)
                    let serverB: HISPServer
                    do {
                        (serverB, _) = try await HISPServer.start(configuration: configuration(b, a), store: storeB, dataDirectory: b.dataDirectory,
                                                                  fetcher: fetcher, logger: logger)
                    } catch {
                        await serverA.shutdown()
                        throw error
                    }
                    for side in sides {
                        say("HISP \(side.label) serving: MX 127.0.0.1:\(side.ports.inbound), submission 127.0.0.1:\(side.ports.submission), DNS 127.0.0.1:\(side.ports.dns)")
                    }
                    let outcome: Result<Void, Error>
                    do {
                        try await exchange(a: a, b: b, storeA: storeA, storeB: storeB, password: password, say: say)
                        outcome = .success(())
                    } catch {
                        outcome = .failure(error)
                    }
                    await serverA.shutdown(grace: .seconds(2))
                    await serverB.shutdown(grace: .seconds(2))
                    try outcome.get()
                }
            }
        }
        if let keep {
            say("The two data directories are in \(keep) (keys a.key and b.key beside them), for example:")
            say("  hisp message list --mailbox \(b.user) --data \(b.dataDirectory) --key-file \(keep)/b.key")
        }
    }

    /// Alice submits to A; the steps of both HISPs are printed as they happen.
    func exchange(a: Side, b: Side, storeA: HISPStore, storeB: HISPStore, password: String, say: (String) -> Void) async throws {
        let messageID = "<\(UUID().uuidString.lowercased())@\(a.domain)>"
        let text = """
            From: \(a.user)\r
            To: \(b.user)\r
            Subject: Referral for a demo patient\r
            Date: \(Notifications.rfc5322Date(Date()))\r
            Message-ID: \(messageID)\r
            Disposition-Notification-Options: \(Notifications.finalDestinationOption)=optional,true\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            Please see the attached referral (this is a demo; no patient data).\r

            """
        var tls = SMTPClientTLS(verification: .full)
        tls.trustRoots = try NIOSSLCertificate.fromPEMFile(a.certificatePath)
        let reply = try await SMTPClientConnection.withConnection(
            address: "127.0.0.1", port: a.ports.submission, serverName: "hisp.\(a.domain)",
            configuration: SMTPClientConfiguration(heloName: "demo-client", tls: tls)
        ) { c in
            try await c.authenticate(user: "\(a.user)", password: password)
            return try await c.send(from: "\(a.user)", to: ["\(b.user)"], message: Array(text.utf8)).replies["\(b.user)"]
        }
        guard let reply, reply.code == 250 else {
            throw CLIFailure(message: "submission refused the message: \(reply.map { "\($0)" } ?? "no reply")", exitCode: 1)
        }
        say("\(a.user) submitted \(messageID) to HISP A over TLS with AUTH PLAIN: \(reply)")

        var shown = [0, 0]
        let deadline = Date().addingTimeInterval(Double(timeout))
        while true {
            // One read of A's trace for both the steps shown and the state judged: `trace` reads
            // the queue rows before the events, so every state seen has its event shown.
            let (entries, events) = try await storeA.trace(messageID: messageID)
            for (i, (side, sideEvents)) in [(a, events), (b, try await storeB.trace(messageID: messageID).events)].enumerated() {
                for e in sideEvents.dropFirst(shown[i]) { say("HISP \(side.label)  \(e.step) \(e.outcome): \(e.detail)") }
                shown[i] = max(shown[i], sideEvents.count)
            }
            // Final, and (MDNs may cross) the processed one is in too when the dispatched one came first.
            let bothIn = !(entries.first?.wantsDispatched ?? false) || events.contains { $0.step == "notification" && $0.detail.hasPrefix("processed") }
            if let e = entries.first, entries.allSatisfy({ Self.isFinal($0) }), bothIn || e.state != .dispatched || Date() > deadline {
                switch e.state {
                case .dispatched, .processed:
                    let inbox = try await storeB.messages(mailbox: b.user)
                    say("done: \(b.user) has \(inbox.count) message(s), \"\(inbox.first?.metadata.subject ?? "")\", stored encrypted; \(a.user) has the processed and dispatched MDNs")
                    return
                default:
                    throw CLIFailure(message: "the message was not delivered: \(e.state.rawValue) \(e.lastError ?? "")", exitCode: 1)
                }
            }
            guard Date() < deadline else { throw CLIFailure(message: "no MDN within \(timeout) s; see the steps above", exitCode: 1) }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func isFinal(_ e: QueueEntry) -> Bool {
        switch e.state {
        case .dispatched, .failed, .timedout, .delivered, .deleted, .denied: return true
        case .processed: return !e.wantsDispatched
        default: return false
        }
    }
}

/// Free loopback TCP ports: all bound at once (so they differ), then released.
enum FreePorts {
    static func pick(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for s in sockets { close(s) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw CLIFailure.usage("cannot open a socket") }
            sockets.append(s)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, length) == 0 && getsockname(s, $0, &length) == 0 }
            }
            guard bound else { throw CLIFailure.usage("cannot find a free loopback port") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}
