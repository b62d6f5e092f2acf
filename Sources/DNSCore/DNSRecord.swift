/// A resource record type (RFC 1035 3.2.2 and later RFCs). Unknown types are kept by number.
public struct DNSType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSType(rawValue: 1)
    public static let ns = DNSType(rawValue: 2)
    public static let cname = DNSType(rawValue: 5)
    public static let soa = DNSType(rawValue: 6)
    public static let mx = DNSType(rawValue: 15)
    public static let txt = DNSType(rawValue: 16)
    public static let aaaa = DNSType(rawValue: 28)
    public static let srv = DNSType(rawValue: 33)
    /// RFC 4398.
    public static let cert = DNSType(rawValue: 37)
    /// RFC 1035 3.3.2; used here only for RFC 8482's synthesized answer to ANY.
    public static let hinfo = DNSType(rawValue: 13)
    /// RFC 6891 6.1.1 (a pseudo-record).
    public static let opt = DNSType(rawValue: 41)
    public static let any = DNSType(rawValue: 255)

    static let names: [UInt16: String] = [1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 15: "MX", 16: "TXT", 28: "AAAA", 13: "HINFO", 33: "SRV", 37: "CERT",
                                          41: "OPT", 255: "ANY"]

    public var description: String { Self.names[rawValue] ?? "TYPE\(rawValue)" }

    /// From a mnemonic ("CERT") or RFC 3597 form ("TYPE37").
    public init?(_ text: String) {
        let upper = text.uppercased()
        if let (k, _) = Self.names.first(where: { $0.value == upper }) {
            rawValue = k
        } else if upper.hasPrefix("TYPE"), let n = UInt16(upper.dropFirst(4)) {
            rawValue = n
        } else {
            return nil
        }
    }
}

/// RFC 1035 3.2.4; only IN is served.
public struct DNSClass: RawRepresentable, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let `in` = DNSClass(rawValue: 1)
    public static let any = DNSClass(rawValue: 255)
}

/// SOA RDATA (RFC 1035 3.3.13).
public struct SOAData: Sendable, Hashable {
    public var mname: DNSName
    public var rname: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    public var minimum: UInt32

    public init(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// CERT RDATA (RFC 4398 2): type, key tag, algorithm, certificate or CRL.
public struct CERTData: Sendable, Hashable {
    /// RFC 4398 2.1: PKIX = 1 (an X.509 certificate, DER), IPKIX = 4 (a URL to one).
    public static let pkix: UInt16 = 1
    public static let ipkix: UInt16 = 4
    /// Written by the Direct Project's Java reference implementation.
    public static let directRI: UInt16 = 253

    public var certificateType: UInt16
    public var keyTag: UInt16
    public var algorithm: UInt8
    public var certificate: [UInt8]

    public init(certificateType: UInt16, keyTag: UInt16 = 0, algorithm: UInt8 = 0, certificate: [UInt8]) {
        self.certificateType = certificateType
        self.keyTag = keyTag
        self.algorithm = algorithm
        self.certificate = certificate
    }
}

/// The RDATA of the types this codebase reads and writes; any other type is kept as bytes.
public enum DNSRData: Sendable, Hashable {
    case a([UInt8])
    case aaaa([UInt8])
    case ns(DNSName)
    case cname(DNSName)
    case soa(SOAData)
    case mx(preference: UInt16, exchange: DNSName)
    /// RFC 1035 3.3.14: one or more character-strings of up to 255 octets.
    case txt([[UInt8]])
    /// RFC 2782.
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case cert(CERTData)
    case unknown(DNSType, [UInt8])

    public var type: DNSType {
        switch self {
        case .a: return .a
        case .aaaa: return .aaaa
        case .ns: return .ns
        case .cname: return .cname
        case .soa: return .soa
        case .mx: return .mx
        case .txt: return .txt
        case .srv: return .srv
        case .cert: return .cert
        case .unknown(let t, _): return t
        }
    }
}

/// A resource record (RFC 1035 4.1.3).
public struct DNSRecord: Sendable, Hashable {
    public var name: DNSName
    public var dnsClass: DNSClass
    public var ttl: UInt32
    public var data: DNSRData

    public var type: DNSType { data.type }

    public init(name: DNSName, dnsClass: DNSClass = .in, ttl: UInt32, data: DNSRData) {
        self.name = name
        self.dnsClass = dnsClass
        self.ttl = ttl
        self.data = data
    }
}

/// A question (RFC 1035 4.1.2).
public struct DNSQuestion: Sendable, Hashable {
    public var name: DNSName
    public var type: DNSType
    public var dnsClass: DNSClass

    public init(name: DNSName, type: DNSType, dnsClass: DNSClass = .in) {
        self.name = name
        self.type = type
        self.dnsClass = dnsClass
    }
}

/// EDNS(0) from the OPT pseudo-record (RFC 6891 6.1).
public struct EDNS: Sendable, Hashable {
    /// The requestor's UDP payload size; values under 512 are treated as 512 (RFC 6891 6.2.3).
    public var udpPayloadSize: UInt16
    public var extendedRCode: UInt8
    public var version: UInt8
    public var dnssecOK: Bool
    public var options: [(code: UInt16, data: [UInt8])]

    public init(udpPayloadSize: UInt16 = 1232, extendedRCode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false,
                options: [(code: UInt16, data: [UInt8])] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRCode = extendedRCode
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }

    public static func == (a: EDNS, b: EDNS) -> Bool {
        a.udpPayloadSize == b.udpPayloadSize && a.extendedRCode == b.extendedRCode && a.version == b.version
            && a.dnssecOK == b.dnssecOK && a.options.map(\.code) == b.options.map(\.code) && a.options.map(\.data) == b.options.map(\.data)
    }

    public func hash(into h: inout Hasher) {
        h.combine(udpPayloadSize)
        h.combine(version)
    }
}
