import DNSCore
import DirectTrust

/// Certificate discovery's DNS lookups through this resolver, so `--dns-server`
/// applies to every one of them (CERT, SRV, and the SRV targets' addresses).
public struct ResolverDiscoveryDNS: DiscoveryDNS {
    public let resolver: DNSResolver

    public init(resolver: DNSResolver) { self.resolver = resolver }

    public func certRecords(_ name: String) async throws -> [(type: UInt16, data: [UInt8])] {
        try await resolver.resolve(try DNSName(name), .cert).records.compactMap { r in
            if case .cert(let c) = r.data { return (c.certificateType, c.certificate) }
            return nil
        }
    }

    public func srvRecords(_ name: String) async throws -> [DiscoverySRV] {
        try await resolver.resolve(try DNSName(name), .srv).records.compactMap { r in
            guard case .srv(let p, let w, let port, let target) = r.data else { return nil }
            var host = target.description
            if host.hasSuffix("."), host.count > 1 { host.removeLast() }
            return DiscoverySRV(priority: p, weight: w, port: port, target: host)
        }
    }

    public func addresses(_ host: String) async throws -> [String] {
        if IPAddressText.v4(host) != nil || IPAddressText.v6(host) != nil { return [host] }
        let name = try DNSName(host)
        var out: [String] = []
        for type in [DNSType.a, .aaaa] {
            for r in try await resolver.resolve(name, type).records {
                if case .a(let b) = r.data { out.append(IPAddressText.text(b)) }
                if case .aaaa(let b) = r.data { out.append(IPAddressText.text(b)) }
            }
        }
        return out
    }
}
