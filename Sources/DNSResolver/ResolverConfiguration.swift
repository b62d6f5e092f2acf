import DNSCore
import DirectCore
import Foundation

/// A DNS server to ask: an IP address and a port.
public struct DNSServerAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int = 53) {
        self.host = host
        self.port = port
    }

    /// `192.0.2.1`, `192.0.2.1:5353`, `::1`, `[::1]:5353`. The host must be an IP
    /// address: the resolver cannot look up its own servers' names.
    public init?(_ text: String) {
        var host = text
        var port = 53
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let p = Int(rest.dropFirst()) else { return nil }
                port = p
            } else if !rest.isEmpty { return nil }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            guard let p = Int(text[text.index(after: colon)...]) else { return nil }
            port = p
        }
        guard (1...65535).contains(port), IPAddressText.v4(host) != nil || IPAddressText.v6(host) != nil else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which servers to ask, and how long to wait.
public struct ResolverConfiguration: Sendable {
    public var servers: [DNSServerAddress]
    /// Servers for particular zones (a HISP pointed at a particular server for a domain); the longest match wins.
    public var zoneServers: [(zone: DNSName, servers: [DNSServerAddress])]
    /// Per attempt per server.
    public var timeout: Duration
    /// Rounds over the server list.
    public var attempts: Int
    public var maxCacheEntries: Int

    public init(servers: [DNSServerAddress], zoneServers: [(zone: DNSName, servers: [DNSServerAddress])] = [],
                timeout: Duration = .seconds(2), attempts: Int = 2, maxCacheEntries: Int = 10_000) {
        self.servers = servers
        self.zoneServers = zoneServers
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.maxCacheEntries = maxCacheEntries
    }

    /// The `nameserver` lines of resolv.conf (resolv.conf(5)), at most 3 as the C library uses.
    public static func nameservers(resolvConf text: String) -> [DNSServerAddress] {
        text.split(whereSeparator: \.isNewline).compactMap { line -> DNSServerAddress? in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { return nil }
            // A scoped IPv6 address (fe80::1%eth0) is not supported; skipped.
            return fields[1].contains("%") ? nil : DNSServerAddress(String(fields[1]))
        }.prefix(3).map { $0 }
    }

    func servers(for name: DNSName) -> [DNSServerAddress] {
        zoneServers.filter { name.isSubdomain(of: $0.zone) }.max { $0.zone.labels.count < $1.zone.labels.count }?.servers ?? servers
    }
}

/// Why a lookup failed. Each names the name, the type and the server.
public enum ResolverError: DirectError, Equatable {
    case noServers(String)
    /// Every server timed out or could not be reached.
    case unreachable(String)
    /// Every server answered SERVFAIL, REFUSED or something unusable.
    case failed(String)

    public var kind: FailureKind { .unsupported }

    public var description: String {
        switch self {
        case .noServers(let s): return "no DNS server to ask for \(s)"
        case .unreachable(let s): return "no DNS server answered: \(s)"
        case .failed(let s): return "DNS lookup failed: \(s)"
        }
    }
}

/// What a lookup found.
public struct DNSAnswer: Sendable {
    public let name: DNSName
    public let type: DNSType
    /// NOERROR or NXDOMAIN.
    public let rcode: DNSRCode
    /// Records of `type` at the end of any CNAME chain.
    public let records: [DNSRecord]
    /// The names followed (CNAME targets), in order.
    public let aliases: [DNSName]
    /// Which server answered, and how (udp, tcp after truncation, tcp).
    public let server: DNSServerAddress?
    public let transport: String
    public let fromCache: Bool
}
