import Foundation
import HISPTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
@testable import SMTPClient
import SMTPCore
import SMTPServer
import Testing

/// A HISP-shaped delegate: mailboxes at mx.test, one submission user, messages kept in memory.
final class TestDelegate: SMTPServerDelegate {
    let received = NIOLockedValueBox<[(SMTPEnvelope, [UInt8])]>([])
    /// The session that carried each delivered message.
    let sessionIDs = NIOLockedValueBox<[String]>([])
    let password = "correct horse battery"

    func checkSender(_ path: String, session: SMTPSessionInfo) async -> SMTPReply? {
        if session.role == .submission && path != "alice@mx.test" {
            return SMTPReply(553, "5.7.1", "you may send only as alice@mx.test")
        }
        return nil
    }

    func checkRecipient(_ path: String, mailFrom: String, user: String?, session: SMTPSessionInfo) async -> SMTPReply? {
        if session.role == .submission { return nil }
        guard path.lowercased().hasSuffix("@mx.test") else { return SMTPReply(550, "5.7.1", "relaying denied") }
        guard path.lowercased().hasPrefix("bob@") || path.lowercased().hasPrefix("carol@") else {
            return SMTPReply(550, "5.1.1", "no such mailbox")
        }
        return nil
    }

    func authenticate(user: String, password: String, session: SMTPSessionInfo) async -> Bool {
        user == "alice@mx.test" && password == self.password
    }

    func deliver(_ envelope: SMTPEnvelope, message: [UInt8], session: SMTPSessionInfo) async -> SMTPReply {
        received.withLockedValue { $0.append((envelope, message)) }
        sessionIDs.withLockedValue { $0.append(session.id) }
        return SMTPReply(250, "2.0.0", "queued")
    }
}

/// A listener on a loopback port with a certificate made by OpenSSL for this test.
struct TestListener {
    let ws: Workspace
    let listener: SMTPListener
    let delegate: TestDelegate
    let certPath: String

    // Generous by default, as the client's: the whole suite runs at once on a small machine, and a
    // session of this process can wait tens of seconds for a thread while other tests wait for their tools.
    static func start(role: SMTPServerSession.Role, tls: Bool = true, commandTimeout: TimeAmount = .seconds(300),
                      maxConnections: Int = 50, maxConnectionsPerAddress: Int = 20, tls12Only ciphers: String? = nil,
                      configure: (inout SMTPListener.Configuration) -> Void = { _ in }) async throws -> TestListener {
        let ws = try Workspace()
        try await ws.mustRun("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                                   "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                   "-keyout", ws.path("tls.key"), "-out", ws.path("tls.crt")])
        var tlsContext: NIOSSLContext? = nil
        if tls {
            var c = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(ws.path("tls.crt")).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: ws.path("tls.key"), format: .pem)))
            c.minimumTLSVersion = .tlsv12
            if let ciphers {
                // A server of another time: TLS 1.2 with only these suites.
                c.maximumTLSVersion = .tlsv12
                c.cipherSuites = ciphers
            }
            tlsContext = try NIOSSLContext(configuration: c)
        }
        let delegate = TestDelegate()
        var config = SMTPListener.Configuration(
            host: "127.0.0.1", port: 0,
            policy: SMTPServerSession.Policy(hostname: "mx.test", role: role, maxMessageBytes: 200_000, maxRecipients: 5),
            commandTimeout: commandTimeout, maxConnections: maxConnections, maxConnectionsPerAddress: maxConnectionsPerAddress)
        configure(&config)
        var logger = Logger(label: "smtp-test")
        logger.logLevel = .warning
        let listener = try await SMTPListener.start(configuration: config, tls: tlsContext, delegate: delegate, logger: logger)
        return TestListener(ws: ws, listener: listener, delegate: delegate, certPath: ws.path("tls.crt"))
    }

    var port: Int { listener.port }

    /// One message to `to` over a pooled connection; the recipient's reply code.
    func send(_ to: String, through pool: SMTPConnectionPool, configuration: SMTPClientConfiguration) async throws -> Int {
        try await pool.withConnection(address: "127.0.0.1", port: port, serverName: "localhost", configuration: configuration) { c in
            try await c.send(from: "a@peer.test", to: [to], message: Array("Subject: pooled\r\n\r\nbody\r\n".utf8)).replies[to]?.code ?? 0
        }
    }

    func clientConfiguration(verification: SMTPClientTLS.Verification = .full) throws -> SMTPClientConfiguration {
        SMTPClientConfiguration(
            heloName: "client.test",
            tls: SMTPClientTLS(verification: verification, trustRoots: try NIOSSLCertificate.fromPEMFile(certPath)),
            // As the listener's command timeout: while other tests wait for their tools, this
            // process's few threads can be busy for two minutes, and the server answers late.
            replyTimeout: .seconds(300))
    }

    /// swaks against this listener; returns its transcript and exit status.
    func swaks(_ arguments: [String]) async throws -> ProcessResult {
        try await ws.runDetached("swaks", ["--server", "127.0.0.1:\(port)", "--timeout", "10", "--helo", "client.test"] + arguments)
    }
}

/// A raw TCP conversation, for what neither swaks nor our client will send.
func rawSession(port: Int, send: [String], readFor seconds: Double) async throws -> String {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { ch in
            ch.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch) }
        }
    return try await channel.executeThenClose { inbound, outbound in
        for line in send {
            // The server may already have closed (a timeout under test): what it said is still read.
            do { try await outbound.write(ByteBuffer(string: line)) } catch { break }
        }
        let collected = NIOLockedValueBox("")
        let closed = NIOLockedValueBox(false)
        let reader = Task {
            // A reset (the server closed while our last bytes were in flight) ends the session as a close does.
            do { for try await chunk in inbound { collected.withLockedValue { $0 += String(buffer: chunk) } } } catch {}
            closed.withLockedValue { $0 = true }
        }
        // Until the server closes the connection, or the time is up.
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline && !closed.withLockedValue({ $0 }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        reader.cancel()
        return collected.withLockedValue { $0 }
    }
}

/// Waits until the listener has `sessions` sessions open: on a busy machine a client's
/// connection can take seconds to be made, and a fixed pause is then too short.
func waitFor(_ listener: SMTPListener, sessions: Int) async throws {
    // Long: while the other tests wait for their tools, this process's few threads can be busy for minutes.
    let deadline = ContinuousClock.now + .seconds(240)
    while listener.activeSessions < sessions {
        guard ContinuousClock.now < deadline else { throw SessionsNotOpen(wanted: sessions, open: listener.activeSessions) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

struct SessionsNotOpen: Error, CustomStringConvertible {
    let wanted: Int, open: Int
    var description: String { "\(open) session(s) open after 240 s, waiting for \(wanted)" }
}

@Suite struct SMTPServerTests {
    @Test func ourClientDeliversOverVerifiedSTARTTLSAndReusesTheConnection() async throws {
        let t = try await TestListener.start(role: .inbound)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let message = Array("From: a@peer.test\r\nTo: bob@mx.test\r\nSubject: s\r\n\r\n.starts with a dot\r\n..two\r\nend\n".utf8)
        let results = try await SMTPClientConnection.withConnection(
            address: "127.0.0.1", port: t.port, serverName: "localhost", configuration: try t.clientConfiguration()
        ) { c in
            #expect(c.tlsActive && c.supportsPipelining)
            let first = try await c.send(from: "a@peer.test", to: ["bob@mx.test", "nobody@mx.test", "x@elsewhere.test"], message: message)
            let second = try await c.send(from: "", to: ["carol@mx.test"], message: message)
            return (first, second)
        }
        #expect(results.0.replies["bob@mx.test"]?.code == 250)
        #expect(results.0.replies["nobody@mx.test"] == SMTPReply(550, "5.1.1", "no such mailbox"))
        #expect(results.0.replies["x@elsewhere.test"]?.enhanced == "5.7.1")
        #expect(results.1.replies["carol@mx.test"]?.code == 250)
        let received = t.delegate.received.withLockedValue { $0 }
        #expect(received.count == 2)
        // Dot-stuffing both ways gives back the message, with the bare LF made CRLF.
        #expect(received.first?.1 == Array("From: a@peer.test\r\nTo: bob@mx.test\r\nSubject: s\r\n\r\n.starts with a dot\r\n..two\r\nend\r\n".utf8))
        #expect(received.first?.0.recipients == ["bob@mx.test"] && received.first?.0.tls == true)
        #expect(received.last?.0.mailFrom == "")
    }

    @Test func thePoolKeepsAConnectionBetweenDeliveriesAndOnePerSettings() async throws {
        // The server keeps idle sessions for its default 300 s: nothing below waits that long.
        let t = try await TestListener.start(role: .inbound)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let pool = SMTPConnectionPool(idleTime: .seconds(600))
        let config = try t.clientConfiguration()
        @Sendable func send(_ to: String) async throws -> Int { try await t.send(to, through: pool, configuration: config) }
        #expect(try await send("bob@mx.test") == 250)
        #expect(pool.idleCount == 1)
        #expect(try await send("carol@mx.test") == 250)
        var sessions = t.delegate.sessionIDs.withLockedValue { $0 }
        #expect(sessions.count == 2 && Set(sessions).count == 1, "one connection carried both: \(sessions)")

        // A connection opened without verifying the server is not reused for settings that verify it.
        let unverified = try t.clientConfiguration(verification: .none)
        for to in ["bob@mx.test", "carol@mx.test"] {
            let code = try await pool.withConnection(address: "127.0.0.1", port: t.port, serverName: "localhost", configuration: unverified) { c in
                try await c.send(from: "a@peer.test", to: [to], message: Array("Subject: other settings\r\n\r\nbody\r\n".utf8)).replies[to]?.code
            }
            #expect(code == 250)
        }
        #expect(try await send("carol@mx.test") == 250)
        sessions = t.delegate.sessionIDs.withLockedValue { $0 }
        #expect(sessions.count == 5 && Set(sessions).count == 2, "one connection per settings: \(sessions)")
        #expect(sessions[4] == sessions[0] && sessions[2] == sessions[3] && sessions[2] != sessions[0])
        #expect(pool.idleCount == 2)

        // Once closed (shutdown), the pool keeps nothing: a connection in use ends with its work.
        pool.closeAll()
        #expect(pool.idleCount == 0)
        #expect(try await send("bob@mx.test") == 250)
        #expect(pool.idleCount == 0)
        let end = ContinuousClock.now + .seconds(120)
        while t.listener.activeSessions > 0 && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(50)) }
        #expect(t.listener.activeSessions == 0)
    }

    @Test func aConnectionTheServerClosedIsReplaced() async throws {
        // A server that closes a session after 20 s without a command: short enough to wait
        // for, long enough for each command of the first delivery with the whole suite running (3 s was not).
        let t = try await TestListener.start(role: .inbound, commandTimeout: .seconds(20))
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let pool = SMTPConnectionPool(idleTime: .seconds(600))
        let config = try t.clientConfiguration()
        @Sendable func send(_ to: String) async throws -> Int { try await t.send(to, through: pool, configuration: config) }
        #expect(try await send("bob@mx.test") == 250)
        #expect(pool.idleCount == 1)
        // The server drops the idle connection; the next delivery notices before sending and opens another.
        let deadline = ContinuousClock.now + .seconds(120)
        while t.listener.activeSessions > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(t.listener.activeSessions == 0)
        #expect(try await send("bob@mx.test") == 250)
        let sessions = t.delegate.sessionIDs.withLockedValue { $0 }
        #expect(sessions.count == 2 && Set(sessions).count == 2, "\(sessions)")
        #expect(pool.idleCount == 1)
    }

    @Test func anIdleConnectionIsClosedAfterItsTimeAndAHostThatRefusesIsAnError() async throws {
        let t = try await TestListener.start(role: .inbound)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let pool = SMTPConnectionPool(idleTime: .milliseconds(200))
        let config = try t.clientConfiguration()
        let code = try await pool.withConnection(address: "127.0.0.1", port: t.port, serverName: "localhost", configuration: config) { c in
            try await c.send(from: "a@peer.test", to: ["bob@mx.test"], message: Array("Subject: once\r\n\r\nbody\r\n".utf8)).replies["bob@mx.test"]?.code
        }
        #expect(code == 250)
        #expect(t.listener.activeSessions == 1 && pool.idleCount == 1)
        try await Task.sleep(for: .milliseconds(300))
        pool.sweep()
        #expect(pool.idleCount == 0)
        // The connection says QUIT and closes.
        let deadline = ContinuousClock.now + .seconds(120)
        while t.listener.activeSessions > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(t.listener.activeSessions == 0)

        // Nothing listens on the port any more: the error comes back, nothing hangs.
        let port = t.port
        await t.listener.shutdown(grace: .zero)
        await #expect(throws: SMTPClientError.self) {
            try await pool.withConnection(address: "127.0.0.1", port: port, serverName: "localhost", configuration: config) { _ in 0 }
        }
        #expect(pool.idleCount == 0)
    }

    @Test func aCancelledDeliveryEndsAtOnceEvenWhenTheServerNeverAnswers() async throws {
        // A server that accepts and never says a word (a tarpit).
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let port = try #require(silent.localAddress?.port)
        let pool = SMTPConnectionPool()
        let config = SMTPClientConfiguration(heloName: "client.test", replyTimeout: .seconds(600))
        let delivery = Task {
            try await pool.withConnection(address: "127.0.0.1", port: port, serverName: "localhost", configuration: config) { _ in 1 }
        }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        delivery.cancel()
        let result = await delivery.result
        #expect(throws: (any Error).self) { try result.get() }
        #expect(ContinuousClock.now - cancelled < .seconds(60), "shutdown does not wait for the reply timeout")
        #expect(pool.idleCount == 0)
    }

    @Test func theClientMakesItsTLSContextOnceAndAnewWhenItsSettingsChange() async throws {
        var tls = SMTPClientTLS(verification: .full)
        let first = try tls.context()
        let copy = tls
        #expect(try tls.context() === first, "every connection shares the context")
        #expect(try copy.context() === first, "and so do copies of the settings")
        // Changed settings never get a context made for others.
        tls.verification = .none
        let second = try tls.context()
        #expect(second !== first)
        tls.trustRoots = []
        #expect(try tls.context() !== second)
        #expect(try copy.context() === first, "the copy keeps its own")
    }

    @Test func clientRefusesAServerWithoutTLSOrWithAnUntrustedCertificate() async throws {
        let plain = try await TestListener.start(role: .inbound, tls: false)
        defer { Task { await plain.listener.shutdown(grace: .seconds(1)) } }
        await #expect(throws: SMTPClientError.self) {
            try await SMTPClientConnection.withConnection(
                address: "127.0.0.1", port: plain.port, serverName: "localhost", configuration: try plain.clientConfiguration()) { _ in }
        }
        let t = try await TestListener.start(role: .inbound)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        // Trusting another certificate than the server's: the handshake fails.
        var config = try plain.clientConfiguration()
        config.tls.trustRoots = try NIOSSLCertificate.fromPEMFile(plain.certPath)
        do {
            try await SMTPClientConnection.withConnection(address: "127.0.0.1", port: t.port, serverName: "localhost", configuration: config) { c in
                _ = try await c.send(from: "a@peer.test", to: ["bob@mx.test"], message: Array("Subject: x\r\n\r\nx\r\n".utf8))
            }
            Issue.record("an untrusted certificate was accepted")
        } catch let error as SMTPClientError {
            guard case .tls = error else { Issue.record("expected a TLS error, got \(error)"); return }
        }
        #expect(t.delegate.received.withLockedValue { $0.isEmpty })
    }

    /// NIST SP 800-52r2 3.3.1 on our side as a client too: a server that offers only
    /// CBC suites with SHA-1 or SHA-256 gets no handshake, one with AES-GCM does.
    @Test func ourClientNegotiatesOnlyAEADSuites() async throws {
        for (ciphers, works) in [("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA", false), ("ECDHE-ECDSA-AES128-SHA256", false),
                                 ("ECDHE-ECDSA-AES256-GCM-SHA384", true)] {
            let t = try await TestListener.start(role: .inbound, tls12Only: ciphers)
            defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
            do {
                try await SMTPClientConnection.withConnection(address: "127.0.0.1", port: t.port, serverName: "localhost",
                                                              configuration: try t.clientConfiguration()) { c in
                    _ = try await c.send(from: "a@peer.test", to: ["bob@mx.test"], message: Array("Subject: x\r\n\r\nx\r\n".utf8))
                }
                #expect(works, "a server offering only \(ciphers) got a message")
            } catch let error as SMTPClientError {
                guard case .tls = error else { Issue.record("expected a TLS error, got \(error)"); continue }
                #expect(!works, "no handshake with \(ciphers): \(error)")
            }
            #expect(t.delegate.received.withLockedValue { $0.count } == (works ? 1 : 0))
        }
    }

    @Test func swaksOpenRelayAttemptIsRefused() async throws {
        let t = try await TestListener.start(role: .inbound)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let r = try await t.swaks(["--tls", "--to", "victim@elsewhere.test", "--from", "spammer@bad.test"])
        #expect(r.status != 0)
        #expect(r.stdoutText.contains("550 5.7.1 relaying denied"))
        let ok = try await t.swaks(["--tls", "--to", "bob@mx.test", "--from", "a@peer.test"])
        #expect(ok.status == 0, "\(ok.stdoutText)")
        #expect(t.delegate.received.withLockedValue { $0.count } == 1)
    }

    @Test func swaksSubmissionAuthRules() async throws {
        let t = try await TestListener.start(role: .submission)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let auth = ["--auth", "PLAIN", "--auth-user", "alice@mx.test", "--auth-password", t.delegate.password]
        // AUTH before TLS: not even offered, and refused when forced.
        let noTLS = try await t.swaks(["--to", "x@peer.test", "--from", "alice@mx.test", "--auth-plaintext"] + auth)
        #expect(noTLS.status != 0)
        #expect(!noTLS.stdoutText.contains("250-AUTH"))
        // QUIT ends the session once all is answered (a fixed half second was too short with the whole suite running).
        let forced = try await rawSession(port: t.port, send: ["EHLO c\r\n", "AUTH PLAIN AGFsaWNlQG14LnRlc3QAeA==\r\nQUIT\r\n"], readFor: 120)
        #expect(forced.contains("538 5.7.11"))
        // Bad credentials.
        let bad = try await t.swaks(["--tls", "--to", "x@peer.test", "--from", "alice@mx.test", "--auth", "LOGIN",
                                     "--auth-user", "alice@mx.test", "--auth-password", "wrong"])
        #expect(bad.status != 0 && bad.stdoutText.contains("535 5.7.8"))
        // No AUTH at all: MAIL refused.
        let anon = try await t.swaks(["--tls", "--to", "x@peer.test", "--from", "alice@mx.test"])
        #expect(anon.stdoutText.contains("530 5.7.0 authentication required"))
        // Sending as someone else.
        let spoof = try await t.swaks(["--tls", "--to", "x@peer.test", "--from", "mallory@mx.test"] + auth)
        #expect(spoof.stdoutText.contains("553 5.7.1"))
        // The right way.
        let good = try await t.swaks(["--tls", "--to", "x@peer.test", "--from", "alice@mx.test"] + auth)
        #expect(good.status == 0, "\(good.stdoutText)")
        let received = t.delegate.received.withLockedValue { $0 }
        #expect(received.count == 1 && received.first?.0.user == "alice@mx.test")
    }

    @Test func swaksMalformedDataAndBadCommands() async throws {
        let t = try await TestListener.start(role: .inbound)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        // Bare LF line endings, sent as they are.
        let path = try t.ws.write("bare-lf.eml", "From: a@peer.test\nTo: bob@mx.test\nSubject: x\n\nbody\n.\n")
        let lf = try await t.swaks(["--tls", "--to", "bob@mx.test", "--from", "a@peer.test", "--data", path, "--no-data-fixup", "--timeout", "3"])
        #expect(lf.stdoutText.contains("554 5.5.2 bare LF"), "\(lf.stdoutText)")
        // An over-long line.
        let long = try t.ws.write("long.eml", "Subject: x\r\n\r\n" + String(repeating: "y", count: 1200) + "\r\n")
        let lr = try await t.swaks(["--tls", "--to", "bob@mx.test", "--from", "a@peer.test", "--data", long])
        #expect(lr.stdoutText.contains("554 5.6.0"))
        // Commands swaks will not send.
        let raw = try await rawSession(port: t.port, send: ["EHLO c\r\nFROB\r\nRCPT TO:<bob@mx.test>\r\nMAIL FROM:a@b\r\nDATA\r\nQUIT\r\n"],
                                       readFor: 120)
        #expect(raw.contains("500 5.5.2 command not recognized"))
        #expect(raw.contains("503 5.5.1 need MAIL before RCPT"))
        #expect(raw.contains("501 5.1.3"))
        #expect(raw.contains("503 5.5.1 need MAIL before DATA"))
        #expect(t.delegate.received.withLockedValue { $0.isEmpty })
    }

    @Test func commandTimeoutAndConnectionLimits() async throws {
        let t = try await TestListener.start(role: .inbound, commandTimeout: .seconds(1), maxConnectionsPerAddress: 2)
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        // An idle client is told so and dropped (the read ends when the server closes).
        let idle = try await rawSession(port: t.port, send: ["EHLO c\r\n"], readFor: 180)
        #expect(idle.contains("421 4.4.2 mx.test timeout exceeded"))
        // A third connection from the same address is refused while two are open (a listener
        // without the short timeout, so that the two stay open however slowly this test runs).
        let limited = try await TestListener.start(role: .inbound, maxConnectionsPerAddress: 2)
        defer { Task { await limited.listener.shutdown(grace: .seconds(1)) } }
        async let a = rawSession(port: limited.port, send: [], readFor: 20)
        async let b = rawSession(port: limited.port, send: [], readFor: 20)
        try await waitFor(limited.listener, sessions: 2)
        let c = try await rawSession(port: limited.port, send: [], readFor: 60)
        #expect(c.contains("421 4.7.0 too many connections"))
        _ = try await (a, b)
    }

    @Test func shutdownTellsIdleSessions() async throws {
        let t = try await TestListener.start(role: .inbound)
        async let session = rawSession(port: t.port, send: ["EHLO c\r\n"], readFor: 180)
        try await waitFor(t.listener, sessions: 1)
        await t.listener.shutdown(grace: .seconds(1))
        #expect(try await session.contains("421 4.3.2 mx.test shutting down"))
        #expect(t.listener.activeSessions == 0)
    }
}
