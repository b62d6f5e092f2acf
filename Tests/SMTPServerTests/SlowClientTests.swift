import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore
@testable import SMTPServer
import Testing

/// What a slow or greedy client got: everything the server said, and whether
/// (and after how long) the server closed the connection.
struct TrickleResult {
    let transcript: String
    let closedAfter: Duration?
}

/// A client that sends `opening` at once, then one byte of `drip` every `every`
/// (over and over), until the server closes or `limit` passes. Real sockets.
///
/// The client lives on its event loop, not in a task: the drip is a scheduled task
/// and the close is timed in `channelInactive`. While the suite runs, other tests
/// block Swift's two cooperative threads on child processes, and a task-based client
/// was once starved for 80 s, which measured the starvation, not the server.
func trickle(port: Int, opening: [String], drip: String, every: Duration, limit: Duration) async throws -> TrickleResult {
    let group = MultiThreadedEventLoopGroup.singleton
    let loop = group.next()
    let done = loop.makePromise(of: TrickleResult.self)
    let handler = TrickleHandler(done: done)
    let channel = try await ClientBootstrap(group: loop)
        .channelInitializer { $0.pipeline.addHandler(handler) }
        .connect(host: "127.0.0.1", port: port).get()
    let bytes = Array(drip.utf8)
    let step = TimeAmount.nanoseconds(Int64(every.components.seconds) * 1_000_000_000 + every.components.attoseconds / 1_000_000_000)
    let end = NIODeadline.now() + .nanoseconds(Int64(limit.components.seconds) * 1_000_000_000)
    try await loop.submit {
        handler.start = .now()
        for line in opening { channel.writeAndFlush(ByteBuffer(string: line), promise: nil) }
        loop.scheduleRepeatedTask(initialDelay: step, delay: step) { task in
            guard !handler.closed else { task.cancel(); return }
            guard NIODeadline.now() < end else {
                task.cancel()
                // The time is up and the server has not closed: say so, then close.
                handler.finish(closed: false)
                channel.close(promise: nil)
                return
            }
            channel.writeAndFlush(ByteBuffer(bytes: [bytes[handler.dripped % bytes.count]]), promise: nil)
            handler.dripped += 1
        }
    }.get()
    return try await done.futureResult.get()
}

/// Collects what the server says and times its close, on the channel's event loop.
final class TrickleHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<TrickleResult>
    var transcript = ""
    var start = NIODeadline.now()
    var closed = false
    var dripped = 0
    init(done: EventLoopPromise<TrickleResult>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        transcript += String(buffer: unwrapInboundIn(data))
    }
    func channelInactive(context: ChannelHandlerContext) { finish(closed: true) }
    // A reset (the server closed while our last byte was in flight) ends the session as a close does.
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func finish(closed byServer: Bool) {
        guard !closed else { return }
        closed = true
        let elapsed = NIODeadline.now() - start
        done.succeed(TrickleResult(transcript: transcript, closedAfter: byServer ? .nanoseconds(elapsed.nanoseconds) : nil))
    }
}

struct WaitedTooLong: Error, CustomStringConvertible {
    let what: String
    var description: String { "waited 180 s for \(what)" }
}

/// Slow clients cannot hold sessions: each deadline measured through real sockets
/// (issue "Hold under attack", item 1). Each test's client keeps sending bytes, which
/// before the fix restarted the idle timer on every byte and kept the session open.
@Suite struct SlowClientTests {
    @Test func aCommandLineTrickledAByteAtATimeMeetsItsDeadline() async throws {
        let t = try await TestListener.start(role: .submission, commandTimeout: .seconds(2))
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        // "NOOP" repeated, one byte per 0.3 s, never a line end: 20 s of bytes on offer.
        let r = try await trickle(port: t.port, opening: [], drip: "NOOP", every: .milliseconds(300), limit: .seconds(20))
        #expect(r.transcript.contains("421 4.4.2 mx.test timeout exceeded"), "\(r.transcript)")
        let closed = try #require(r.closedAfter, "the session was still open after 20 s of trickled bytes")
        #expect(closed < .seconds(15), "closed after \(closed)")
    }

    @Test func dataBelowTheMinimumRateIsCutOff() async throws {
        let t = try await TestListener.start(role: .inbound, tls: false) { c in
            c.policy.requireTLS = false
            c.minDataRate = 1000
            c.dataGrace = .seconds(2)
        }
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        // 3 bytes per second inside DATA: far below 1,000 bytes per second.
        let r = try await trickle(port: t.port, opening: ["EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@mx.test>\r\nDATA\r\n"],
                                  drip: "Subject: slow\r\n", every: .milliseconds(300), limit: .seconds(30))
        #expect(r.transcript.contains("354 "), "\(r.transcript)")
        #expect(r.transcript.contains("421 4.4.2"), "\(r.transcript)")
        let closed = try #require(r.closedAfter, "DATA trickled for 30 s without being cut off")
        #expect(closed < .seconds(20), "closed after \(closed)")
        #expect(t.delegate.received.withLockedValue { $0.isEmpty })
    }

    @Test func aSessionThatKeepsSendingCommandsEndsAtItsDeadline() async throws {
        let t = try await TestListener.start(role: .inbound, tls: false) { c in
            c.policy.requireTLS = false
            // 60 s: with the whole suite running, this test's task once waited 30 s for a thread
            // between connecting and writing its first line (tests that block their threads on
            // child processes starve the cooperative pool of a 2-core machine).
            c.sessionTimeout = .seconds(60)
        }
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        // A whole NOOP every 0.5 s: each command is in time, the session as a whole is not.
        let r = try await trickle(port: t.port, opening: ["EHLO c\r\nNOOP\r\n"], drip: "NOOP\r\n", every: .milliseconds(80),
                                  limit: .seconds(150))
        #expect(r.transcript.contains("250 2.0.0 OK"), "no command was answered before the deadline: \(r.transcript)")
        #expect(r.transcript.contains("421 4.4.2"), "\(r.transcript)")
        let closed = try #require(r.closedAfter, "the session outlived its deadline")
        #expect(closed < .seconds(120), "closed after \(closed)")
    }

    @Test func submissionSessionsMustAuthenticateInTime() async throws {
        let t = try await TestListener.start(role: .submission) { c in c.authTimeout = .seconds(2) }
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let r = try await trickle(port: t.port, opening: ["EHLO c\r\n"], drip: "NOOP\r\n", every: .milliseconds(90), limit: .seconds(30))
        #expect(r.transcript.contains("421 4.4.2"), "\(r.transcript)")
        #expect(try #require(r.closedAfter) < .seconds(20))
    }

    @Test func slotsAreKeptForAuthenticatedSessions() async throws {
        // 5 slots, 2 kept for authenticated sessions: 3 unauthenticated clients fill the rest.
        let t = try await TestListener.start(role: .submission, maxConnections: 5, maxConnectionsPerAddress: 10) { c in
            c.reservedForAuthenticated = 2
        }
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        async let a = rawSession(port: t.port, send: [], readFor: 20)
        async let b = rawSession(port: t.port, send: [], readFor: 20)
        async let c = rawSession(port: t.port, send: [], readFor: 20)
        try await waitFor(t.listener, sessions: 3)
        let fourth = try await rawSession(port: t.port, send: [], readFor: 60)
        #expect(fourth.contains("421 4.7.0 too many connections"), "\(fourth)")
        _ = try await (a, b, c)
    }

    @Test func connectionsPerAddressAreCappedByDefault() {
        let policy = SMTPServerSession.Policy(hostname: "mx.test", role: .inbound)
        let config = SMTPListener.Configuration(host: "127.0.0.1", port: 0, policy: policy)
        #expect(config.maxConnectionsPerAddress == 10)
        #expect(SMTPListener.Configuration(host: "127.0.0.1", port: 0,
                                           policy: SMTPServerSession.Policy(hostname: "mx.test", role: .submission)).reservedForAuthenticated == 40)
    }

    /// The memory budget: sessions whose messages would pass it get 452 4.3.1 at the end
    /// of their data (the sender retries), the others are delivered, and the budget is
    /// given back afterwards.
    @Test func messagesPastTheMemoryBudgetAreRefusedWith452() async throws {
        let budget = SMTPMemoryBudget(limit: 600_000)
        let t = try await TestListener.start(role: .inbound, tls: false, maxConnectionsPerAddress: 50) { c in
            c.policy.requireTLS = false
            c.policy.maxMessageBytes = 400_000
            c.budget = budget
            // Received bytes only: the delegate here keeps the message and does no work on it.
            c.processingCharge = 1
        }
        defer { Task { await t.listener.shutdown(grace: .seconds(1)) } }
        let body = String(repeating: String(repeating: "x", count: 76) + "\r\n", count: 3_500)  // ~273 KB
        let message = "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@mx.test>\r\nDATA\r\n"
        func until(_ what: String, _ condition: () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(180)
            while !condition() {
                guard ContinuousClock.now < deadline else { throw WaitedTooLong(what: what) }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        // Each session stops before its end, so that all hold their bytes at once (until cancelled).
        let holders = (0..<4).map { _ in
            Task { try await rawSession(port: t.port, send: [message, "Subject: big\r\n\r\n" + body], readFor: 600) }
        }
        try await until("two refusals") { budget.refusals >= 2 }
        #expect(budget.inFlight <= budget.limit)
        for h in holders { h.cancel() }
        for h in holders { _ = try? await h.value }
        try await until("the budget given back") { budget.inFlight == 0 }
        // Now one at a time: each fits and is delivered, and what was refused is not.
        let ok = try await rawSession(port: t.port, send: [message, "Subject: big\r\n\r\n" + body + ".\r\nQUIT\r\n"], readFor: 30)
        #expect(ok.contains("250 2.0.0 queued"), "\(ok)")
        #expect(t.delegate.received.withLockedValue { $0.count } == 1)
        #expect(budget.inFlight == 0)
        // A message that fits while received but not while processed is deferred, not half-done.
        let small = SMTPMemoryBudget(limit: 300_000)
        let charged = try await TestListener.start(role: .inbound, tls: false) { c in
            c.policy.requireTLS = false
            c.budget = small
            c.processingCharge = 4
        }
        defer { Task { await charged.listener.shutdown(grace: .seconds(1)) } }
        let tenK = String(repeating: String(repeating: "y", count: 98) + "\r\n", count: 1000)
        let deferred = try await rawSession(port: charged.port, send: [message, "Subject: 100k\r\n\r\n" + tenK + ".\r\nQUIT\r\n"], readFor: 60)
        #expect(deferred.contains("452 4.3.1"), "\(deferred)")
        #expect(charged.delegate.received.withLockedValue { $0.isEmpty })
        #expect(small.inFlight == 0)
        // Ended properly while the budget is held by others: 452, not 250.
        let hogs = (0..<2).map { _ in
            Task { try await rawSession(port: t.port, send: [message, "Subject: big\r\n\r\n" + body], readFor: 600) }
        }
        // Until a hog's bytes are held (the other's may be refused already).
        try await until("a hog holding its bytes") { budget.inFlight >= 250_000 }
        let refused = try await rawSession(port: t.port, send: [message, "Subject: big\r\n\r\n" + body + ".\r\nQUIT\r\n"], readFor: 60)
        #expect(refused.contains("452 4.3.1 insufficient system storage"), "\(refused)")
        for h in hogs { h.cancel() }
        for h in hogs { _ = try? await h.value }
    }
}

/// The ClientHello reader that picks the certificate, on hellos Python's `ssl` writes.
@Suite struct ClientHelloTests {
    func hello(maxTLS12: Bool, ciphers: String) async throws -> [UInt8] {
        let script = """
            import ssl, sys
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
            if \(maxTLS12 ? "True" : "False"): c.maximum_version = ssl.TLSVersion.TLSv1_2
            c.set_ciphers("\(ciphers)")
            o = ssl.MemoryBIO(); i = ssl.MemoryBIO()
            s = c.wrap_bio(i, o, server_hostname="mx.test")
            try: s.do_handshake()
            except ssl.SSLWantReadError: pass
            sys.stdout.write(o.read().hex())
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let hex = Array(String(decoding: data, as: UTF8.self).utf8)
        return stride(from: 0, to: hex.count - 1, by: 2).compactMap { UInt8(String(decoding: hex[$0...$0 + 1], as: UTF8.self), radix: 16) }
    }

    @Test func aModernHelloTakesECDSAAndAnRSAOnlyOneDoesNot() async throws {
        let modern = try await hello(maxTLS12: false, ciphers: "ECDHE+AESGCM")
        guard case .hello(let m) = ClientHelloSummary.read(modern) else { Issue.record("unread: \(modern.count) bytes"); return }
        #expect(m.supportedVersions.contains(0x0304) && m.acceptsECDSA)
        let old = try await hello(maxTLS12: true, ciphers: "ECDHE-RSA-AES128-GCM-SHA256")
        guard case .hello(let o) = ClientHelloSummary.read(old) else { Issue.record("unread"); return }
        #expect(o.cipherSuites.contains(0xC02F) && !o.acceptsECDSA)
    }

    @Test func everyPrefixNeedsMoreAndGarbageIsUnreadable() async throws {
        let bytes = try await hello(maxTLS12: false, ciphers: "ECDHE+AESGCM")
        for n in 0..<bytes.count { #expect(ClientHelloSummary.read(bytes.prefix(n)) == .needMore, "prefix \(n)") }
        #expect(ClientHelloSummary.read(Array("EHLO x\r\n".utf8)) == .unreadable)
        // A record that says it is a hello but whose lengths run past its end.
        var broken = bytes
        let suites = 5 + 4 + 2 + 32 + 1 + Int(bytes[5 + 4 + 2 + 32])
        broken[suites] = 0xFF
        broken[suites + 1] = 0xFE
        #expect(ClientHelloSummary.read(broken) == .unreadable)
    }
}
