import Foundation

/// An authoritative zone: its origin and records, the answers it gives
/// (RFC 1034 4.3.2 for one zone without delegations below it) and its master
/// file (RFC 1035 5).
public struct Zone: Sendable {
    public let origin: DNSName
    public let soa: DNSRecord
    public private(set) var records: [DNSRecord]
    /// Owner names, for telling NXDOMAIN from NODATA (names with no records but records below are "empty non-terminals").
    private var owners: Set<DNSName>

    public init(origin: DNSName, soa: SOAData, ttl: UInt32, records: [DNSRecord]) {
        self.origin = origin
        self.soa = DNSRecord(name: origin, ttl: ttl, data: .soa(soa))
        self.records = [self.soa] + records
        self.owners = Set(self.records.map(\.name))
        for r in records {
            // Every name between an owner and the origin exists (RFC 4592 2.2.2 empty non-terminals).
            var labels = r.name.labels
            while labels.count > origin.labels.count {
                labels.removeFirst()
                owners.insert(DNSName(validated: labels))
            }
        }
    }

    public enum Answer: Sendable, Equatable {
        /// Records of the asked type at the name (NOERROR, AA).
        case records([DNSRecord])
        /// The name exists with other types (NOERROR, empty answer, SOA in authority).
        case noData
        /// The name does not exist (NXDOMAIN, SOA in authority).
        case nxDomain
    }

    /// What this zone says about `name`/`type` (the name must be in the zone).
    public func lookup(_ name: DNSName, _ type: DNSType) -> Answer {
        guard owners.contains(name) else { return .nxDomain }
        let matching = records.filter { $0.name == name && (type == .any || $0.type == type) }
        return matching.isEmpty ? .noData : .records(matching)
    }

    /// The SOA for negative answers: its TTL is the lesser of its own and its MINIMUM (RFC 2308 3).
    public var negativeSOA: DNSRecord {
        var r = soa
        if case .soa(let s) = soa.data { r.ttl = min(soa.ttl, s.minimum) }
        return r
    }

    /// The zone in master-file format, loadable by BIND, Knot and NSD.
    public var masterFile: String {
        var out = "$ORIGIN \(origin)\n"
        out += "$TTL \(soa.ttl)\n"
        for r in records {
            out += "\(r.name) \(r.ttl) IN \(r.type) \(Self.presentation(r.data))\n"
        }
        return out
    }

    static func presentation(_ d: DNSRData) -> String {
        switch d {
        case .a(let b), .aaaa(let b): return IPAddressText.text(b)
        case .ns(let n), .cname(let n): return n.description
        case .soa(let s):
            return "\(s.mname) \(s.rname) \(s.serial) \(s.refresh) \(s.retry) \(s.expire) \(s.minimum)"
        case .mx(let p, let x): return "\(p) \(x)"
        case .txt(let strings):
            return strings.map { s in
                "\"" + s.map { c -> String in
                    c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") ? "\\" + String(UnicodeScalar(c))
                        : (0x20...0x7E).contains(c) ? String(UnicodeScalar(c)) : decimalEscape(c)
                }.joined() + "\""
            }.joined(separator: " ")
        case .srv(let p, let w, let port, let t): return "\(p) \(w) \(port) \(t)"
        case .cert(let c):
            // RFC 4398 2.2: type, key tag, algorithm, base64 of the certificate.
            let type = c.certificateType == CERTData.pkix ? "PKIX" : c.certificateType == CERTData.ipkix ? "IPKIX" : String(c.certificateType)
            return "\(type) \(c.keyTag) \(c.algorithm) \(Data(c.certificate).base64EncodedString())"
        case .unknown(_, let b):
            // RFC 3597 5.
            return "\\# \(b.count) " + b.map { String($0, radix: 16).leftPadded(2) }.joined()
        }
    }

    /// RFC 1035 5.1 `\DDD`.
    static func decimalEscape(_ c: UInt8) -> String {
        let d = String(c)
        return "\\" + String(repeating: "0", count: 3 - d.count) + d
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
