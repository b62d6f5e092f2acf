import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Open connections kept between deliveries to the same host (RFC 5321 3.3:
/// a client may send several transactions over one connection), so that a
/// stream of messages does not pay a TCP and TLS handshake, two EHLOs and
/// STARTTLS at every delivery pass. A connection that failed is never reused;
/// an idle one is closed (with QUIT) after `idleTime` or at `closeAll`.
public final class SMTPConnectionPool: Sendable {
    /// A connection is reused only for the same host and the same TLS settings: one opened
    /// without verifying the server must never carry mail for a route that verifies it.
    struct Key: Hashable, Sendable {
        let address: String
        let port: Int
        let serverName: String
        let heloName: String
        let tlsRequired: Bool
        /// The TLS settings' context memo, shared by copies of the same settings (kept alive here).
        let tls: TLSContextMemo

        static func == (a: Key, b: Key) -> Bool {
            a.address == b.address && a.port == b.port && a.serverName == b.serverName && a.heloName == b.heloName
                && a.tlsRequired == b.tlsRequired && a.tls === b.tls
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(address)
            hasher.combine(port)
            hasher.combine(serverName)
            hasher.combine(ObjectIdentifier(tls))
        }
    }

    public let idleTime: Duration
    public let maxIdlePerHost: Int
    private let idle = NIOLockedValueBox<[Key: [(holder: Holder, since: ContinuousClock.Instant)]]>([:])
    /// After `closeAll`, connections that finish their work close instead of waiting.
    private let closed = NIOLockedValueBox(false)
    private let group: any EventLoopGroup

    public init(idleTime: Duration = .seconds(5), maxIdlePerHost: Int = 8, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.idleTime = idleTime
        self.maxIdlePerHost = max(0, maxIdlePerHost)
        self.group = group
    }

    /// Runs `body` on an idle connection to the host when there is one that is
    /// still open, else on a new one (connected, greeted, TLS started as
    /// `configuration` says). The connection goes back to the pool when `body`
    /// returns, and is closed when it throws.
    public func withConnection<T: Sendable>(
        address: String, port: Int, serverName: String, configuration: SMTPClientConfiguration,
        _ body: @escaping @Sendable (SMTPClientConnection) async throws -> T
    ) async throws -> T {
        let key = Key(address: address, port: port, serverName: serverName, heloName: configuration.heloName,
                      tlsRequired: configuration.tls.required, tls: configuration.tls.memoIdentity)
        sweep()
        while let holder = takeIdle(key) {
            try Task.checkCancellation()
            if let result = try await holder.run(body) { return result }
            // Closed while it waited (the server's idle timeout): try the next, or a new one.
        }
        try Task.checkCancellation()
        return try await Holder.open(key: key, pool: self, configuration: configuration, group: group, body)
    }

    /// Closes the idle connections past their idle time.
    public func sweep() {
        let now = ContinuousClock.now
        let expired: [Holder] = idle.withLockedValue { idle in
            var out: [Holder] = []
            for (key, list) in idle {
                let (old, fresh) = (list.filter { now - $0.since >= idleTime }, list.filter { now - $0.since < idleTime })
                out += old.map(\.holder)
                idle[key] = fresh.isEmpty ? nil : fresh
            }
            return out
        }
        for h in expired { h.close() }
    }

    /// Closes every idle connection (at shutdown); connections in use close when their work ends.
    public func closeAll() {
        closed.withLockedValue { $0 = true }
        let all = idle.withLockedValue { idle in
            defer { idle = [:] }
            return idle.values.flatMap { $0.map(\.holder) }
        }
        for h in all { h.close() }
    }

    /// How many connections wait idle (for tests and operators).
    public var idleCount: Int { idle.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } }

    fileprivate func takeIdle(_ key: Key) -> Holder? {
        idle.withLockedValue { idle in
            // The most recently used first: the least likely to have been closed by the server.
            guard var list = idle[key], let last = list.popLast() else { return nil }
            idle[key] = list.isEmpty ? nil : list
            return last.holder
        }
    }

    fileprivate func putBack(_ holder: Holder) {
        let kept = idle.withLockedValue { idle in
            guard !closed.withLockedValue({ $0 }), idle[holder.key, default: []].count < maxIdlePerHost else { return false }
            idle[holder.key, default: []].append((holder, ContinuousClock.now))
            return true
        }
        if !kept { holder.close() }
    }
}

/// One pooled connection: a task of its own holds it open (the channel lives
/// inside `SMTPClientConnection.withConnection`) and runs the jobs given to it,
/// one at a time; whoever took it from the pool is its only user. Every job
/// is answered exactly once: with its result, its error, or nil (a pooled
/// connection found closed before anything was sent).
final class Holder: Sendable {
    /// A job runs its work and returns whether the connection may be reused, and how to
    /// answer its caller: the answer is given after the connection is back in the pool,
    /// so that a caller's next delivery finds it there.
    typealias Job = @Sendable (SMTPClientConnection?, (any Error)?) async -> (reuse: Bool, answer: @Sendable () -> Void)
    let key: SMTPConnectionPool.Key
    private let jobs: AsyncStream<Job>.Continuation
    private let stream: AsyncStream<Job>
    private let pool: SMTPConnectionPool
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let connection = NIOLockedValueBox<SMTPClientConnection?>(nil)

    init(key: SMTPConnectionPool.Key, pool: SMTPConnectionPool) {
        self.key = key
        self.pool = pool
        (stream, jobs) = AsyncStream.makeStream(of: Job.self)
    }

    /// Opens the connection and runs `first` on it (or tells it why it could not be opened),
    /// then the jobs of those who take it from the pool.
    func start(address: String, port: Int, serverName: String, configuration: SMTPClientConfiguration, group: any EventLoopGroup,
               first: @escaping Job) {
        let stream = self.stream
        let task = Task {
            var queue = stream.makeAsyncIterator()
            var firstRan = false
            var failure: (any Error)? = nil
            do {
                try await SMTPClientConnection.withConnection(
                    address: address, port: port, serverName: serverName, configuration: configuration, group: group
                ) { connection in
                    self.connection.withLockedValue { $0 = connection }
                    firstRan = true
                    // After each job that went well on a connection still up: back to the pool.
                    var next: Job? = first
                    while let job = next {
                        let (reuse, answer) = await job(connection, nil)
                        guard reuse, connection.isOpen else {
                            answer()
                            return
                        }
                        self.pool.putBack(self)
                        answer()
                        next = await queue.next()
                    }
                }
            } catch {
                failure = error
            }
            if !firstRan { await first(nil, failure ?? SMTPClientError.closed(during: "the connection")).answer() }
            // Jobs given after the connection ended are told so (nothing was sent for them).
            self.jobs.finish()
            while let job = await queue.next() { await job(nil, nil).answer() }
        }
        self.task.withLockedValue { $0 = task }
    }

    /// A job running `body`, answering through `continuation`.
    static func job<T: Sendable>(_ body: @escaping @Sendable (SMTPClientConnection) async throws -> T,
                                 _ continuation: CheckedContinuation<T?, any Error>) -> Job {
        { connection, failure in
            guard let connection else {
                return (false, { if let failure { continuation.resume(throwing: failure) } else { continuation.resume(returning: nil) } })
            }
            guard connection.isOpen else { return (false, { continuation.resume(returning: nil) }) }
            do {
                let value = try await body(connection)
                return (true, { continuation.resume(returning: value) })
            } catch {
                return (false, { continuation.resume(throwing: error) })
            }
        }
    }

    /// Runs `body` on this pooled connection; nil when it turned out to be
    /// closed before `body` could start on it (nothing was sent).
    func run<T: Sendable>(_ body: @escaping @Sendable (SMTPClientConnection) async throws -> T) async throws -> T? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
                if case .terminated = jobs.yield(Self.job(body, continuation)) { continuation.resume(returning: nil) }
            }
        } onCancel: {
            abort()
        }
    }

    /// Opens a new connection and runs `body` on it first.
    static func open<T: Sendable>(
        key: SMTPConnectionPool.Key, pool: SMTPConnectionPool, configuration: SMTPClientConfiguration, group: any EventLoopGroup,
        _ body: @escaping @Sendable (SMTPClientConnection) async throws -> T
    ) async throws -> T {
        let holder = Holder(key: key, pool: pool)
        let result = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
                holder.start(address: key.address, port: key.port, serverName: key.serverName, configuration: configuration, group: group,
                             first: job(body, continuation))
            }
        } onCancel: {
            holder.abort()
        }
        guard let result else { throw SMTPClientError.closed(during: "the connection") }
        return result
    }

    /// A cancelled caller (shutdown): the connection is closed under the job, which then
    /// fails at once; before the connection is open, its task is cancelled.
    func abort() {
        jobs.finish()
        if let open = connection.withLockedValue({ $0 }) { open.abort() } else { task.withLockedValue { $0 }?.cancel() }
    }

    /// Ends the connection after its current job (QUIT, then close).
    func close() { jobs.finish() }
}
