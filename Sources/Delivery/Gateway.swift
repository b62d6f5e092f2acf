import DirectCore
import DirectTrust
import Foundation
import InternetMessage
import Logging
import SecurityAgent
import Storage
import X509

public struct GatewayConfiguration: Sendable {
    /// The name in MDNs (Reporting-UA) and DSNs (Reporting-MTA).
    public var hostname: String
    /// How long to wait for a processed (or dispatched) MDN before a failure DSN (Implementation Guide for Delivery Notification in Direct 1.0: 1 hour).
    public var notificationTimeout: Duration
    /// How long a message may wait for delivery before it fails.
    public var maxQueueAge: Duration
    /// Waits between delivery attempts; the last repeats.
    public var retrySchedule: [Duration]
    /// How often the queue is looked at when nothing wakes it.
    public var pollInterval: Duration
    /// Messages signed and encrypted at the same time.
    public var preparers: Int
    /// Four per core: a preparer spends most of its time waiting for the sync of
    /// the commit that records its result, not signing, so one per core left the
    /// cores idle (measured: docs/benchmarks.md). At most a pass (20) at a time.
    public static let defaultPreparers = min(20, 4 * max(1, ProcessInfo.processInfo.activeProcessorCount))
    /// SMTP connections at the same time to one destination domain.
    public var connectionsPerDomain: Int
    /// The time the queue decides by (due attempts, retries, the MDN deadline,
    /// the queue age): a test clock in tests.
    public var clock: any Clock
    /// How long an SMTP session (a submission, or an inbound message and its
    /// MDNs) waits for discovery before it answers and leaves the message to the
    /// preparer: a recipient domain whose DNS or LDAP is slow or down then
    /// does not hold the sender's session for the resolver's timeouts.
    public var sessionDiscoveryLimit: Duration
    /// This node's name in the queue's leases: unique among the nodes that
    /// share a store (the hostname unless configured).
    public var node: String
    /// How long a node's claim on the rows it is sending lasts without renewal: the
    /// time its rows wait after it dies before another node sends them.
    public var leaseDuration: Duration
    public init(hostname: String, notificationTimeout: Duration = .seconds(3600), maxQueueAge: Duration = .seconds(86_400),
                retrySchedule: [Duration] = [.seconds(60), .seconds(300), .seconds(900), .seconds(1800), .seconds(3600)],
                pollInterval: Duration = .seconds(1),
                preparers: Int = GatewayConfiguration.defaultPreparers, connectionsPerDomain: Int = 4,
                sessionDiscoveryLimit: Duration = .seconds(2), node: String? = nil, leaseDuration: Duration = .seconds(300),
                clock: any Clock = SystemClock()) {
        self.clock = clock
        self.node = node ?? hostname
        self.leaseDuration = max(.seconds(3), leaseDuration)
        self.sessionDiscoveryLimit = sessionDiscoveryLimit
        self.preparers = max(1, preparers)
        self.connectionsPerDomain = max(1, connectionsPerDomain)
        self.hostname = hostname
        self.notificationTimeout = notificationTimeout
        self.maxQueueAge = maxQueueAge
        self.retrySchedule = retrySchedule
        self.pollInterval = pollInterval
    }
}

/// The queue: messages made durable for sending, and the workers that
/// prepare (discover, sign, encrypt), send and track them (README, "How a
/// message travels"). The mail service hands it what users submit and the
/// notifications it owes.
public final class DirectGateway: Sendable {
    public let configuration: GatewayConfiguration
    public let store: HISPStore
    public let agent: SecurityAgent
    public let certificates: any RecipientCertificates
    public let incomingTrust: any IncomingTrust
    let transport: any OutboundTransport
    public let logger: Logger
    public let notices: Notices
    let claims = DeliveryClaims()
    let prepareWake: AsyncStream<Void>.Continuation
    let prepareWakeups: AsyncStream<Void>
    let deliveryWake: AsyncStream<Void>.Continuation
    let deliveryWakeups: AsyncStream<Void>

    public init(configuration: GatewayConfiguration, store: HISPStore, agent: SecurityAgent, certificates: any RecipientCertificates,
                incomingTrust: any IncomingTrust, transport: any OutboundTransport, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.agent = agent
        self.certificates = certificates
        self.incomingTrust = incomingTrust
        self.transport = transport
        self.logger = logger
        self.notices = Notices(hostname: configuration.hostname)
        (prepareWakeups, prepareWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (deliveryWakeups, deliveryWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Runs the queue until the task is cancelled. Preparing (discovery, trust,
    /// signing, encryption) and delivery run side by side, so the next messages
    /// are signed while earlier ones are on the wire: each wakes at its own
    /// events (a submission; a prepared message or a finished connection) and
    /// at least every poll interval. Mail for a domain `inProcess` hosts is
    /// handed to it instead of the transport (local delivery, no SMTP).
    public func run(inProcess: (any InProcessDelivery)? = nil) async {
        let interval = configuration.pollInterval
        // What an earlier run of this node held when it stopped is free again at once.
        do {
            let released = try await store.releaseLeases(heldBy: configuration.node)
            if released > 0 { logger.notice("released the queue leases of this node's previous run", metadata: ["rows": .stringConvertible(released)]) }
        } catch {
            logger.error("releasing this node's earlier queue leases failed", metadata: ["error": .string("\(error)")])
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    self.prepareWake.yield()
                    self.deliveryWake.yield()
                }
            }
            group.addTask { await self.prepareLoop() }
            group.addTask { await self.deliveryLoop(inProcess: inProcess) }
        }
    }

    func prepareLoop() async {
        for await _ in prepareWakeups {
            if Task.isCancelled { break }
            // A full pass may have left more behind; a pass that could not record
            // everything (a failing store) waits for the next wake-up or poll instead.
            while !Task.isCancelled, await prepareSubmissions(now: now()) == Self.preparePassSize {}
        }
    }

    static let preparePassSize = 20

    /// Prepares what was submitted, `preparers` at a time; how many were prepared and recorded.
    func prepareSubmissions(now: Date) async -> Int {
        let pending: [PendingSubmission]
        do {
            pending = try await store.pendingSubmissions(limit: Self.preparePassSize)
        } catch {
            logger.error("reading submissions failed", metadata: ["error": .string("\(error)")])
            return 0
        }
        guard !pending.isEmpty else { return 0 }
        let width = configuration.preparers
        let recorded = await withTaskGroup(of: Bool.self) { group in
            var recorded = 0
            for (i, submission) in pending.enumerated() {
                if i >= width, await group.next() == true { recorded += 1 }
                group.addTask { await self.prepare(submission, now: now) }
            }
            for await ok in group where ok { recorded += 1 }
            return recorded
        }
        // Woken once per pass, so notifications queued together (a processed and a
        // dispatched MDN) are found ready together and leave on one connection in order.
        deliveryWake.yield()
        return recorded
    }

    func deliveryLoop(inProcess: (any InProcessDelivery)?) async {
        await withDiscardingTaskGroup { connections in
            for await _ in deliveryWakeups {
                if Task.isCancelled { break }
                let now = self.now()
                do {
                    try await dispatchDue(now: now, into: &connections, inProcess: inProcess)
                } catch {
                    if Task.isCancelled { break }
                    logger.error("delivering failed", metadata: ["error": .string("\(error)")])
                }
                await expireNotifications(now: now)
            }
        }
    }

    func expireNotifications(now: Date) async {
        do {
            let notices = self.notices
            let expired = try await store.expireNotifications(now: now) { entry in
                guard entry.kind == .message, let sender = DirectAddress(entry.sender) else { return nil }
                let missing = entry.state == .sent ? "processed" : "dispatched"
                return notices.dsn(to: sender, messageID: entry.messageID, failures: [(
                    entry.recipient, "4.4.7", "no \(missing) MDN from \(entry.recipient) within the notification timeout")], originalHeaders: nil)
            }
            for e in expired { logger.notice("notification timeout", metadata: ["queue": .string(e.id)]) }
        } catch {
            if Task.isCancelled { return }
            logger.error("expiring notifications failed", metadata: ["error": .string("\(error)")])
        }
    }

    /// The queue's time (`GatewayConfiguration.clock`).
    public func now() -> Date { configuration.clock.now() }

    /// Wakes the delivery loop (a test clock moved; something may be due).
    public func wakeDelivery() { deliveryWake.yield() }

    /// Wakes the preparer (a notification arrived; something may be due).
    public func poke() { prepareWake.yield() }

    /// What was queued: prepared at once, it is for the delivery loop; otherwise for the preparer.
    /// The delivery loop is woken only when a connection to one of the draft's domains can
    /// start: a pass reads every due row, and while the domain's connections are all busy the
    /// first of them to finish wakes the loop anyway (and the poll is the backstop).
    public func queued(_ draft: OutboundDraft) {
        guard draft.prepared != nil else {
            prepareWake.yield()
            return
        }
        let limit = configuration.connectionsPerDomain
        if draft.recipients.contains(where: { claims.openConnections(DirectAddress($0)?.domain ?? "") < limit }) {
            deliveryWake.yield()
        }
    }

    /// Discovery, trust, wrap, sign and encrypt before a draft is queued, when
    /// every recipient has a trusted certificate: the draft is then queued
    /// ready to send, in the transaction that makes it durable, and the
    /// preparer neither reads it back nor records it again. Otherwise (a
    /// recipient without a trusted certificate, a failure) it is returned as
    /// it was, and the preparer does the same work again and records the
    /// refusal and the DSN (`prepare`). Discovery that takes longer than
    /// `sessionDiscoveryLimit` is left to the preparer too, so that the session
    /// answers once the draft is durable, not when a slow peer's DNS times out.
    public func prepareAtOnce(_ draft: OutboundDraft) async -> OutboundDraft {
        guard let sender = DirectAddress(draft.sender) else { return draft }
        guard let found = await value(within: configuration.sessionDiscoveryLimit, of: {
            await self.discover(draft.recipients, from: sender)
        }) else {
            logger.info("discovery is slow; the preparer finishes it", metadata: ["message": .string(draft.messageID)])
            return draft
        }
        guard found.refused.isEmpty,
            let wire = try? await agent.processOutgoing(draft.message, sender: sender, recipients: found.chosen)
        else { return draft }
        var prepared = draft
        prepared.prepared = PreparedWire(wire: wire, discovered: found.discovered)
        return prepared
    }

    /// Discovery and trust for each recipient: the certificates to encrypt to
    /// (each once), what was found for each recipient that has one, and why
    /// each other one (by its position in `recipients`) has none.
    func discover(_ recipients: [String], from sender: DirectAddress) async
        -> (chosen: [Certificate], discovered: [String], refused: [(index: Int, reason: String)])
    {
        var chosen: [Certificate] = []
        var discovered: [String] = []
        var refused: [(index: Int, reason: String)] = []
        for (i, r) in recipients.enumerated() {
            guard let address = DirectAddress(r) else {
                refused.append((i, "\(r) is not a Direct address"))
                continue
            }
            let found = await certificates.certificates(for: address, localDomain: sender.domain)
            if found.chosen.isEmpty {
                refused.append((i, "no trusted certificate for \(address): \(found.reason)"))
            } else {
                discovered.append("\(address): \(found.reason)")
                for c in found.chosen where !chosen.contains(c) { chosen.append(c) }
            }
        }
        return (chosen, discovered, refused)
    }

    // MARK: preparing

    /// Discovery and trust per recipient, then wrap, sign and encrypt once for all the trusted ones.
    /// Whether the outcome was recorded.
    func prepare(_ s: PendingSubmission, now: Date) async -> Bool {
        guard let sender = DirectAddress(s.sender) else {
            return (try? await store.prepared(s.id, messageID: s.messageID, wire: nil,
                                              refused: s.recipients.map { ($0.queueID, "the sender \(s.sender) is not a Direct address") }, dsn: nil, now: now)) != nil
        }
        let (chosen, discovered, refusedAt) = await discover(s.recipients.map(\.address), from: sender)
        var refused = refusedAt.map { (queueID: s.recipients[$0.index].queueID, reason: $0.reason) }
        var wire: [UInt8]? = nil
        if refused.count < s.recipients.count {
            do {
                wire = try await agent.processOutgoing(s.message, sender: sender, recipients: chosen)
            } catch {
                logger.error("signing or encrypting failed", metadata: ["outbound": .string(s.id), "error": .string("\(error)")])
                let reason = "signing or encrypting failed: \(error)"
                refused = s.recipients.map { ($0.queueID, reason) }
            }
        }
        var dsn: LocalDelivery? = nil
        if !refused.isEmpty && s.kind == .message {
            let byID = Dictionary(s.recipients.map { ($0.queueID, $0.address) }, uniquingKeysWith: { a, _ in a })
            dsn = notices.dsn(to: sender, messageID: s.messageID,
                              failures: refused.map { (byID[$0.queueID] ?? "", "5.7.1", $0.reason) }, originalHeaders: Notices.headers(s.message))
        }
        do {
            try await store.prepared(s.id, messageID: s.messageID, wire: wire, refused: refused, dsn: dsn, discovered: discovered, now: now)
            logger.info("prepared", metadata: ["outbound": .string(s.id), "recipients": .stringConvertible(s.recipients.count),
                                               "refused": .stringConvertible(refused.count)])
            return true
        } catch {
            logger.error("recording a prepared message failed", metadata: ["outbound": .string(s.id), "error": .string("\(error)")])
            return false
        }
    }

    // MARK: sending

    /// Starts connections for what is due and not already being sent, up to
    /// `connectionsPerDomain` per domain, without waiting for them: a finished
    /// connection wakes the loop for what is left. The rows a connection
    /// takes are leased to this node in the store first (`claimDue`), so that
    /// another node (or a stale read) cannot send them too.
    func dispatchDue(now: Date, into connections: inout DiscardingTaskGroup, inProcess: (any InProcessDelivery)? = nil) async throws {
        let limit = configuration.connectionsPerDomain
        let snapshot = claims.snapshot()
        let lease = QueueLease(holder: configuration.node, until: now.addingTimeInterval(configuration.leaseDuration.seconds))
        let (_, plan) = try await store.claimDue(now: now, limit: 100, lease: lease) { due in
            let plan = Self.plan(due, snapshot: snapshot, limit: limit)
            return (plan.flatMap(\.ids), plan)
        }
        for share in plan {
            let (domain, ids) = (share.domain, share.ids)
            // The plan counted only free connections, and only this loop opens them.
            guard claims.claim(ids, domain: domain, limit: limit) else {
                try? await store.releaseLeases(ids, holder: lease.holder)
                continue
            }
            connections.addTask {
                do {
                    try await self.whileLeased(ids) {
                        try await self.deliver(ids, to: domain, now: self.now(), inProcess: inProcess)
                    }
                    self.claims.release(ids, domain: domain)
                    self.deliveryWake.yield()
                } catch {
                    // The rows stay due; the next poll tries them again (no wake-up now,
                    // which would retry a failing store at once, again and again).
                    try? await self.store.releaseLeases(ids, holder: lease.holder)
                    self.claims.release(ids, domain: domain)
                    if !Task.isCancelled {
                        self.logger.error("delivering failed", metadata: ["domain": .string(domain), "error": .string("\(error)")])
                    }
                }
            }
        }
    }

    /// Which due rows to send now, and on which connections: per domain, the
    /// rows of each message together, cut into shares (at most one per free
    /// connection), leaving out rows on the wire.
    static func plan(_ due: [DueDelivery], snapshot: DeliveryClaims.Snapshot, limit: Int) -> [(domain: String, ids: [String])] {
        // Per message, one SMTP transaction with all its recipients in that domain.
        var domains: [String] = []
        var byDomain: [String: [[DueDelivery]]] = [:]
        for e in due where !snapshot.inFlight.contains(e.id) {
            if byDomain[e.domain] == nil { domains.append(e.domain) }
            if let i = byDomain[e.domain]?.firstIndex(where: { $0.first?.outboundID == e.outboundID }) {
                byDomain[e.domain]?[i].append(e)
            } else {
                byDomain[e.domain, default: []].append([e])
            }
        }
        var out: [(domain: String, ids: [String])] = []
        for domain in domains {
            let groups = byDomain[domain] ?? []
            let free = limit - snapshot.connections[domain, default: 0]
            guard free > 0 else { continue }
            // A share of at most 1/limit of what is due, so one connection that frees up
            // does not take everything while the others finish.
            for share in shares(groups, size: (groups.count + limit - 1) / limit).prefix(free) {
                out.append((domain, share.flatMap { $0.map(\.id) }))
            }
        }
        return out
    }

    /// Runs `work` while renewing the lease on `ids` every third of its
    /// duration, so that a delivery slower than the lease keeps its rows.
    func whileLeased(_ ids: [String], _ work: @escaping @Sendable () async throws -> Void) async throws {
        let duration = configuration.leaseDuration
        let holder = configuration.node
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await work() }
            group.addTask {
                while true {
                    try await Task.sleep(for: duration / 3)
                    try await self.store.renewLeases(ids, holder: holder, until: self.now().addingTimeInterval(duration.seconds))
                }
            }
            // The first to finish is the work (the renewer only ends by failing or being cancelled).
            try await group.next()
            group.cancelAll()
        }
    }

    /// Cuts one domain's groups (one per message), in queue order, into contiguous
    /// shares of about `size` groups. A share is not cut between notifications queued
    /// together for one recipient (same time), so a processed MDN and the dispatched
    /// one leave in that order on one connection.
    static func shares(_ groups: [[DueDelivery]], size: Int) -> [[[DueDelivery]]] {
        let target = max(1, size)
        var out: [[[DueDelivery]]] = []
        var current: [[DueDelivery]] = []
        for g in groups {
            if current.count >= target, let last = current.last?.first, let next = g.first,
               !(last.kind == .notification && next.kind == .notification && last.created == next.created
                 && last.recipientIndex == next.recipientIndex) {
                out.append(current)
                current = []
            }
            current.append(g)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// One connection's share (queue rows, in order): the prepared messages, sent,
    /// and each recipient's outcome recorded.
    func deliver(_ ids: [String], to domain: String, now: Date, inProcess: (any InProcessDelivery)? = nil) async throws {
        // Per message, one SMTP transaction with all its recipients.
        var share: [[QueueEntry]] = []
        for e in try await store.entries(ids: ids) where e.state == .queued {
            if let i = share.firstIndex(where: { $0.first?.outboundID == e.outboundID }) { share[i].append(e) } else { share.append([e]) }
        }
        var groups: [[QueueEntry]] = []
        var messages: [OutboundMessage] = []
        var records: [(entry: QueueEntry, result: DeliveryResult, dsn: LocalDelivery?)] = []
        let wires = try await store.wires(share.compactMap { $0.first?.outboundID })
        for group in share {
            guard let first = group.first else { continue }
            switch wires[first.outboundID] ?? .failure(StoreError.notFound("the prepared message \(first.outboundID)")) {
            case .success(let wire):
                messages.append(OutboundMessage(from: first.sender, recipients: group.map(\.recipient), message: wire))
                groups.append(group)
            case .failure(let error):
                for e in group { records.append(record(e, .failed(Refusal(.storage, code: 554, enhanced: "5.3.0", "the prepared message is unreadable: \(error)")))) }
            }
        }
        if !messages.isEmpty {
            let results: [[String: RecipientOutcome]]
            if let inProcess, await inProcess.isLocal(domain: domain) {
                // Our own domain: the same security processing, in this process (no SMTP to our own MX).
                var local: [[String: RecipientOutcome]] = []
                for m in messages { local.append(await inProcess.deliverInProcess(m)) }
                results = local
            } else {
                results = await transport.send(domain: domain, messages: messages)
            }
            // The time of the outcome, so the MDN deadline counts from the hand-over.
            let sentAt = max(now, self.now())
            for (i, group) in groups.enumerated() {
                let outcomes = i < results.count ? results[i] : [:]
                for e in group { records.append(record(e, result(outcomes[e.recipient] ?? .transient(Refusal(.delivery, code: 451, enhanced: "4.4.0", "no outcome reported")), for: e, now: sentAt))) }
            }
        }
        // One transaction for the whole connection's outcomes.
        try await store.recordDeliveries(records, now: max(now, self.now()))
        for r in records { logger.info("delivery attempt", metadata: ["queue": .string(r.entry.id), "result": .string("\(r.result)")]) }
    }

    /// What an SMTP outcome means for the queue: sent (with the MDN deadline), retry later, or failed.
    func result(_ outcome: RecipientOutcome, for e: QueueEntry, now: Date) -> DeliveryResult {
        switch outcome {
        case .accepted:
            return .sent(deadline: e.kind == .message ? now.addingTimeInterval(configuration.notificationTimeout.seconds) : nil)
        case .permanent(let refusal):
            return .failed(refusal)
        case .transient(let refusal):
            let age = now.timeIntervalSince(e.created)
            if age >= configuration.maxQueueAge.seconds {
                // RFC 3463 4.4.7: the message expired in the queue.
                return .failed(Refusal(refusal.check, code: 554, enhanced: "5.4.7", "gave up after \(Int(age)) s: \(refusal.text)"))
            }
            let step = configuration.retrySchedule.isEmpty ? .seconds(60)
                : configuration.retrySchedule[min(e.attempts, configuration.retrySchedule.count - 1)]
            return .retry(at: now.addingTimeInterval(step.seconds), refusal)
        }
    }

    /// The result with the sender's failure DSN when it failed (RFC 3464; never for a notification).
    func record(_ e: QueueEntry, _ result: DeliveryResult) -> (entry: QueueEntry, result: DeliveryResult, dsn: LocalDelivery?) {
        var dsn: LocalDelivery? = nil
        if case .failed(let refusal) = result, e.kind == .message, let sender = DirectAddress(e.sender) {
            dsn = notices.dsn(to: sender, messageID: e.messageID, failures: [(e.recipient, refusal.enhanced, refusal.description)], originalHeaders: nil)
        }
        return (e, result, dsn)
    }
}

extension Duration {
    var seconds: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
