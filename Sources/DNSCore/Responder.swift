/// Answers queries for a set of zones, authoritatively and never recursively:
/// pure code from query bytes to response bytes, so every rule is testable
/// without a socket.
public struct AuthoritativeResponder: Sendable {
    public enum Transport: Sendable { case udp, tcp }

    /// The largest UDP answer we send, whatever the client offers (DNS Flag Day 2020: 1232 avoids fragmentation).
    public static let maxUDPPayload = 1232
    /// RFC 1035 4.2.1: without EDNS a UDP message is at most 512 octets.
    public static let classicUDPPayload = 512

    public let zones: [Zone]
    public let limits: DNSLimits

    public init(zones: [Zone], limits: DNSLimits = .default) {
        self.zones = zones.sorted { $0.origin.labels.count > $1.origin.labels.count }
        self.limits = limits
    }

    /// The response, or nil when nothing should be sent (a response, or too short to answer).
    public func respond(to bytes: [UInt8], over transport: Transport) -> [UInt8]? {
        let query: DNSMessage
        do {
            query = try DNSMessage(parsing: bytes, limits: limits)
        } catch {
            // RFC 1035 4.1.1 FORMERR, to queries only (QR clear), when the header is readable.
            guard let id = DNSMessage.headerID(bytes), bytes[2] & 0x80 == 0 else { return nil }
            return DNSMessage(id: id, isResponse: true, opcode: (bytes[2] >> 3) & 0xF, rcode: .formErr).encoded()
        }
        guard !query.isResponse else { return nil }
        let response = answer(query)
        let size: Int
        switch transport {
        case .tcp: size = 65_535
        case .udp:
            size = query.edns.map { min(Self.maxUDPPayload, max(Self.classicUDPPayload, Int($0.udpPayloadSize))) } ?? Self.classicUDPPayload
        }
        return response.encoded(maxSize: size)
    }

    public func answer(_ query: DNSMessage) -> DNSMessage {
        var r = DNSMessage(
            id: query.id, isResponse: true, opcode: query.opcode, recursionDesired: query.recursionDesired,
            checkingDisabled: query.checkingDisabled, questions: query.questions,
            edns: query.edns.map { _ in EDNS(udpPayloadSize: UInt16(Self.maxUDPPayload)) })
        guard query.opcode == 0 else {
            r.rcode = .notImp
            return r
        }
        // RFC 6891 6.1.3: an EDNS version we do not implement gets BADVERS.
        if let e = query.edns, e.version > 0 {
            r.rcode = .badVers
            r.questions = []
            return r
        }
        guard query.questions.count == 1, let q = query.questions.first else {
            r.rcode = .formErr
            return r
        }
        // Only the Internet class; no zone transfers (AXFR 252, IXFR 251): `hisp dns zone` gives the zone.
        guard q.dnsClass == .in || q.dnsClass == .any, q.type.rawValue != 252, q.type.rawValue != 251,
              let zone = zones.first(where: { q.name.isSubdomain(of: $0.origin) })
        else {
            // Not ours: never recurse, never refer (this server is not a resolver).
            r.rcode = .refused
            return r
        }
        r.authoritative = true
        switch zone.lookup(q.name, q.type) {
        case .records(let records):
            r.answers = records
            // Addresses of an NS or MX target inside the zone, so no second query is needed.
            for rec in records {
                let target: DNSName?
                switch rec.data {
                case .ns(let n), .mx(_, let n): target = n
                default: target = nil
                }
                if let target, target.isSubdomain(of: zone.origin) {
                    for t in [DNSType.a, .aaaa] {
                        if case .records(let glue) = zone.lookup(target, t) { r.additionals += glue }
                    }
                }
            }
        case .noData:
            // RFC 2308 2.2: NODATA is NOERROR with the SOA in the authority section.
            r.authorities = [zone.negativeSOA]
        case .nxDomain:
            // RFC 2308 2.1.
            r.rcode = .nxDomain
            r.authorities = [zone.negativeSOA]
        }
        return r
    }
}
