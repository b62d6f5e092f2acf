import DirectCore

/// A configured route: mail for a domain goes to this host instead of its MX.
public struct Route: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// The DNS the router needs (MX and address records), behind a port.
public protocol MailExchangerLookup: Sendable {
    /// The MX records of `domain` as (preference, exchange); empty when it has none.
    func mailExchangers(of domain: String) async throws -> [(preference: UInt16, exchange: String)]
    /// The IPv4 and IPv6 addresses of `host` (an IP address is its own).
    func addresses(of host: String) async throws -> [String]
}

/// One mail host to try: its name (for TLS and logs), one of its addresses, and the port.
public struct MailHost: Sendable, Equatable {
    public let name: String
    public let address: String
    public let port: Int

    public init(name: String, address: String, port: Int) {
        self.name = name
        self.address = address
        self.port = port
    }
}

/// Why one host did not take the messages.
public struct HostFailure: Error, Sendable {
    /// The outcomes of the messages it did take before it failed (in order).
    public let outcomes: [[String: RecipientOutcome]]
    /// Why it stopped: permanent (5xx to the session: the next host would say the same) or not.
    public let refusal: Refusal

    public init(outcomes: [[String: RecipientOutcome]], refusal: Refusal) {
        self.outcomes = outcomes
        self.refusal = refusal
    }
}

/// Sends messages over one connection to one host (the SMTP client behind a port):
/// an outcome per recipient of each message, or a `HostFailure`.
public protocol HostSender: Sendable {
    func send(_ messages: [OutboundMessage], to host: MailHost, domain: String, routed: Bool) async throws(HostFailure) -> [[String: RecipientOutcome]]
}

/// Where mail for a domain goes, and trying its hosts in turn.
public struct Router: OutboundTransport {
    public let routes: [String: Route]
    public let mxPort: Int
    public let dns: any MailExchangerLookup
    public let sender: any HostSender
    /// RFC 5321 5.1: a client tries at least two addresses; we try the first five exchanges' addresses.
    public static let maxExchanges = 5

    public init(routes: [String: Route], mxPort: Int, dns: any MailExchangerLookup, sender: any HostSender) {
        self.routes = routes
        self.mxPort = mxPort
        self.dns = dns
        self.sender = sender
    }

    /// The hosts to try for `domain`, in order: a configured route's addresses, else the MX
    /// hosts by preference (RFC 5321 5.1), the domain itself when it has no MX ("implicit MX").
    public func hosts(for domain: String) async throws(Refusal) -> [MailHost] {
        if let route = routes[domain] {
            let addresses = (try? await dns.addresses(of: route.host)) ?? []
            guard !addresses.isEmpty else { throw Refusal(.delivery, code: 451, enhanced: "4.4.3", "no address for the route's host \(route.host)") }
            return addresses.map { MailHost(name: route.host, address: $0, port: route.port) }
        }
        var exchanges: [(preference: UInt16, exchange: String)]
        do {
            exchanges = try await dns.mailExchangers(of: domain)
        } catch {
            throw Refusal(.delivery, code: 451, enhanced: "4.4.3", "finding the mail host of \(domain): \(error)")
        }
        // RFC 7505 3: a single MX of "." (a null MX) means the domain accepts no mail; fail at once.
        if exchanges.count == 1, ["", "."].contains(exchanges[0].exchange) {
            throw Refusal(.delivery, code: 556, enhanced: "5.1.10", "\(domain) accepts no mail (null MX, RFC 7505)")
        }
        if exchanges.isEmpty { exchanges = [(0, domain)] }
        var hosts: [MailHost] = []
        // A stable sort: equal preferences keep the order DNS gave.
        for (_, exchange) in exchanges.enumerated().sorted(by: { ($0.element.preference, $0.offset) < ($1.element.preference, $1.offset) })
            .map(\.element).prefix(Self.maxExchanges) {
            let name = exchange.hasSuffix(".") ? String(exchange.dropLast()) : exchange
            guard !name.isEmpty else { continue }
            for a in (try? await dns.addresses(of: name)) ?? [] { hosts.append(MailHost(name: name, address: a, port: mxPort)) }
        }
        guard !hosts.isEmpty else { throw Refusal(.delivery, code: 451, enhanced: "4.4.4", "no address for any mail host of \(domain)") }
        return hosts
    }

    /// Sends to the first host that takes the messages; a host that fails for now passes
    /// what it did not send to the next one (RFC 5321 4.5.4.1), a permanent refusal of
    /// the session ends the attempt for all.
    public func send(domain: String, messages: [OutboundMessage]) async -> [[String: RecipientOutcome]] {
        func all(_ outcome: RecipientOutcome, from index: Int) -> [[String: RecipientOutcome]] {
            messages[index...].map { m in Dictionary(m.recipients.map { ($0, outcome) }, uniquingKeysWith: { a, _ in a }) }
        }
        let hosts: [MailHost]
        do {
            hosts = try await self.hosts(for: domain)
        } catch {
            return all(error.isTemporary ? .transient(error) : .permanent(error), from: 0)
        }
        var out: [[String: RecipientOutcome]] = []
        var last = Refusal(.delivery, code: 421, enhanced: "4.4.1", "no host tried")
        for host in hosts {
            do {
                out += try await sender.send(Array(messages[out.count...]), to: host, domain: domain, routed: routes[domain] != nil)
                return Array(out.prefix(messages.count))
            } catch {
                // What was sent keeps its outcome.
                out = Array((out + error.outcomes).prefix(messages.count))
                last = error.refusal
                if out.count == messages.count { return out }
                if !error.refusal.isTemporary { return out + all(.permanent(error.refusal), from: out.count) }
            }
        }
        // What was not sent waits for the next attempt.
        return out + all(.transient(last), from: out.count)
    }
}
