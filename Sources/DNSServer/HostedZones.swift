import DNSCore
import DirectCore
import Storage

/// The zones the certificate DNS server is authoritative for, built from the store.
public enum HostedZones {
    public static let ttl: UInt32 = 3600
    /// RFC 2308 5: negative answers are cached for the SOA MINIMUM.
    public static let negativeTTL: UInt32 = 300

    /// One domain's zone: SOA, NS and MX naming the HISP's host, that host's
    /// addresses when it lies inside the zone (glue), and a CERT record (type
    /// PKIX, RFC 4398 2.1) for the domain-bound certificate at the domain and for
    /// each address-bound certificate at `local-part.domain` (RFC 4398 3.3, Direct AS 1.2 5.3).
    public static func zone(domain: DomainRecord, addresses: [(address: DirectAddress, certificate: [UInt8])], serial: UInt32) throws -> Zone {
        let origin = try DNSName(domain.name)
        let host = try DNSName(domain.dns.host)
        var records: [DNSRecord] = [
            DNSRecord(name: origin, ttl: ttl, data: .ns(host)),
            DNSRecord(name: origin, ttl: ttl, data: .mx(preference: 10, exchange: host)),
        ]
        if host.isSubdomain(of: origin) {
            if let v4 = domain.dns.ipv4.flatMap(IPAddressText.v4) { records.append(DNSRecord(name: host, ttl: ttl, data: .a(v4))) }
            if let v6 = domain.dns.ipv6.flatMap(IPAddressText.v6) { records.append(DNSRecord(name: host, ttl: ttl, data: .aaaa(v6))) }
        }
        // RDATA has a 16-bit length: a certificate over 65530 octets cannot be published.
        if domain.certificate.count <= 65_530 {
            records.append(DNSRecord(name: origin, ttl: ttl, data: .cert(CERTData(certificateType: CERTData.pkix, certificate: domain.certificate))))
        }
        for (address, certificate) in addresses.sorted(by: { $0.address.description < $1.address.description }) where certificate.count <= 65_530 {
            // The local part is one label, whatever it contains (the "@" becomes a dot).
            guard let owner = try? origin.prepending(Array(address.localPart.utf8)) else { continue }
            records.append(DNSRecord(name: owner, ttl: ttl, data: .cert(CERTData(certificateType: CERTData.pkix, certificate: certificate))))
        }
        let soa = SOAData(
            mname: host, rname: try origin.prepending(Array("hostmaster".utf8)), serial: serial,
            refresh: 3600, retry: 600, expire: 1_209_600, minimum: negativeTTL)
        return Zone(origin: origin, soa: soa, ttl: ttl, records: records)
    }

    /// Every hosted domain's zone, from the store.
    public static func load(_ store: HISPStore) async throws -> [Zone] {
        let serial = try await store.zoneSerial()
        var zones: [Zone] = []
        for domain in try await store.domains() {
            zones.append(try zone(domain: domain, addresses: try await store.publishedCertificates(domain: domain.name), serial: serial))
        }
        return zones
    }
}
