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
            // RFC 8482 4.1: ANY gets one RRset (or a synthesized HINFO), never every record at
            // the name: a full answer at an apex with CERT records turns a small UDP query into
            // a large reflected answer.
            r.answers = q.type == .any ? Self.minimalAnyAnswer(records, name: q.name) : records
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

extension AuthoritativeResponder {
    /// RFC 8482 4.1 / 4.2: the smallest of the usual RRsets at the name (A, AAAA, MX, NS, SOA,
    /// in that order); where the name holds none of these, a synthesized HINFO "RFC8482" "".
    static func minimalAnyAnswer(_ records: [DNSRecord], name: DNSName) -> [DNSRecord] {
        for type in [DNSType.a, .aaaa, .mx, .ns, .soa] {
            let set = records.filter { $0.type == type }
            if !set.isEmpty { return set }
        }
        // RFC 8482 4.2: CPU "RFC8482", OS empty, with the TTL of the records held back.
        let ttl = records.map(\.ttl).min() ?? 3600
        let hinfo: [UInt8] = [7] + Array("RFC8482".utf8) + [0]
        return [DNSRecord(name: name, ttl: ttl, data: .unknown(DNSType.hinfo, hinfo))]
    }
}

/// The parts of a plain query that decide its answer, read without a full
/// parse: what the server's answer cache is keyed by. Queries with anything
/// unusual (several questions, records other than one OPT, compression in the
/// question, EDNS options or a version above 0) are not fast-pathed.
public struct QueryKey: Hashable, Sendable {
    /// The question name in wire form, lowercased (RFC 4343).
    public let name: [UInt8]
    public let type: UInt16
    public let dnsClass: UInt16
    public let edns: Bool
    /// The largest answer the client takes over this transport.
    public let maxSize: Int

    /// The key of `bytes`, and where the question name lies in it (to copy its case into the answer).
    public static func read(_ bytes: [UInt8], transport: AuthoritativeResponder.Transport) -> (key: QueryKey, nameEnd: Int)? {
        let n = bytes.count
        guard n >= 17, n <= 512,
              bytes[2] & 0xF8 == 0,                           // QR = 0, opcode 0 (QUERY)
              bytes[4] == 0, bytes[5] == 1,                   // one question
              bytes[6] == 0, bytes[7] == 0, bytes[8] == 0, bytes[9] == 0,
              bytes[10] == 0, bytes[11] <= 1
        else { return nil }
        var i = 12
        var name: [UInt8] = []
        name.reserveCapacity(64)
        while true {
            guard i < n else { return nil }
            let l = Int(bytes[i])
            guard l & 0xC0 == 0 else { return nil }           // no pointers in a fast-path question
            name.append(UInt8(l))
            i += 1
            if l == 0 { break }
            guard i + l <= n, name.count + l <= DNSName.maxWireLength else { return nil }
            for j in i..<(i + l) { name.append(DNSName.lower(bytes[j])) }
            i += l
        }
        let nameEnd = i
        guard i + 4 <= n else { return nil }
        let type = UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])
        let cls = UInt16(bytes[i + 2]) << 8 | UInt16(bytes[i + 3])
        i += 4
        var edns = false
        var size = transport == .tcp ? 65_535 : AuthoritativeResponder.classicUDPPayload
        if bytes[11] == 1 {
            // OPT: root owner, type 41, payload, extended RCODE 0, version 0, flags, no options.
            guard i + 11 == n, bytes[i] == 0, bytes[i + 1] == 0, bytes[i + 2] == 41, bytes[i + 6] == 0,
                  bytes[i + 9] == 0, bytes[i + 10] == 0 else { return nil }
            edns = true
            if transport == .udp {
                let payload = Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
                size = min(AuthoritativeResponder.maxUDPPayload, max(AuthoritativeResponder.classicUDPPayload, payload))
            }
        } else {
            guard i == n else { return nil }
        }
        return (QueryKey(name: name, type: type, dnsClass: cls, edns: edns, maxSize: size), nameEnd)
    }

    /// A query equivalent to the key (lowercased name, ID 0), to answer once and reuse.
    public func query() -> [UInt8] {
        var q: [UInt8] = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0] + name
        q += [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(dnsClass >> 8), UInt8(dnsClass & 0xFF)]
        if edns { q += [0, 0, 41, UInt8(maxSize >> 8 & 0xFF), UInt8(maxSize & 0xFF), 0, 0, 0, 0, 0, 0] }
        return q
    }

    /// An answer made for `query()`, fitted to the actual query: its ID, its RD and
    /// CD flags, and its question name with the case the client used (RFC 1035 4.1.1, RFC 4343).
    public static func fit(_ template: [UInt8], to query: [UInt8], nameEnd: Int) -> [UInt8] {
        var out = template
        out[0] = query[0]
        out[1] = query[1]
        out[2] = (out[2] & ~0x01) | (query[2] & 0x01)
        out[3] = (out[3] & ~0x10) | (query[3] & 0x10)
        if out.count >= nameEnd {
            for j in 12..<nameEnd { out[j] = query[j] }
        }
        return out
    }
}
