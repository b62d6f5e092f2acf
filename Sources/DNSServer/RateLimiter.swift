/// Response-rate limiting per source network, so the server cannot be used to
/// amplify traffic toward a spoofed address (the idea of BIND's RRL): each
/// /24 (IPv4) or /56 (IPv6) gets `rate` answers a second with a burst of the
/// same; beyond that every `slip`-th query gets an empty truncated answer
/// (a real client retries over TCP, which cannot be spoofed) and the rest none.
public struct RateLimiter: Sendable {
    public enum Decision: Sendable, Equatable { case answer, slip, drop }

    public let rate: Double
    public let slip: Int
    /// Bound on the number of tracked networks; the table is cleared when full.
    public let maxTracked: Int
    private var buckets: [[UInt8]: (tokens: Double, last: Double, limited: Int)] = [:]

    public init(rate: Double = 100, slip: Int = 2, maxTracked: Int = 65_536) {
        self.rate = rate
        self.slip = max(1, slip)
        self.maxTracked = maxTracked
    }

    /// `source` is the client's address octets; `now` in seconds.
    public mutating func decide(source: [UInt8], now: Double) -> Decision {
        guard rate > 0 else { return .answer }
        let key = source.count == 4 ? Array(source.prefix(3)) : Array(source.prefix(7))
        if buckets.count >= maxTracked && buckets[key] == nil { buckets.removeAll(keepingCapacity: true) }
        var b = buckets[key] ?? (tokens: rate, last: now, limited: 0)
        b.tokens = min(rate, b.tokens + (now - b.last) * rate)
        b.last = now
        let decision: Decision
        if b.tokens >= 1 {
            b.tokens -= 1
            decision = .answer
        } else {
            b.limited += 1
            decision = b.limited % slip == 0 ? .slip : .drop
        }
        buckets[key] = b
        return decision
    }
}
