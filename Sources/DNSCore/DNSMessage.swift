/// Response codes (RFC 1035 4.1.1, RFC 6891 9 for the extended ones).
public struct DNSRCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let noError = DNSRCode(rawValue: 0)
    public static let formErr = DNSRCode(rawValue: 1)
    public static let servFail = DNSRCode(rawValue: 2)
    public static let nxDomain = DNSRCode(rawValue: 3)
    public static let notImp = DNSRCode(rawValue: 4)
    public static let refused = DNSRCode(rawValue: 5)
    public static let badVers = DNSRCode(rawValue: 16)

    public var description: String {
        ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"].indices.contains(Int(rawValue))
            ? ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"][Int(rawValue)] : "RCODE\(rawValue)"
    }
}

/// Explicit limits on what is parsed.
public struct DNSLimits: Sendable {
    /// RFC 1035 4.2.2: a TCP message has a 16-bit length.
    public var maxMessageSize = 65_535
    public var maxQuestions = 4
    public var maxRecordsPerSection = 2048
    /// Compression pointers followed for one name (each must point earlier, so loops end anyway).
    public var maxPointerHops = 64
    public var maxOptions = 32

    public init() {}
    public static let `default` = DNSLimits()
}

/// A DNS message (RFC 1035 4.1), with EDNS(0) lifted out of the additional section.
public struct DNSMessage: Sendable, Hashable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: UInt8
    public var authoritative: Bool
    public var truncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    public var authenticData: Bool
    public var checkingDisabled: Bool
    /// The full response code (low 4 bits in the header, high 8 in EDNS).
    public var rcode: DNSRCode
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authorities: [DNSRecord]
    public var additionals: [DNSRecord]
    public var edns: EDNS?

    public init(id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false, truncated: Bool = false,
                recursionDesired: Bool = false, recursionAvailable: Bool = false, authenticData: Bool = false,
                checkingDisabled: Bool = false, rcode: DNSRCode = .noError, questions: [DNSQuestion] = [],
                answers: [DNSRecord] = [], authorities: [DNSRecord] = [], additionals: [DNSRecord] = [], edns: EDNS? = nil) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.rcode = rcode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.edns = edns
    }

    /// A query for one name and type.
    public static func query(id: UInt16, name: DNSName, type: DNSType, recursionDesired: Bool = true, edns: EDNS? = EDNS()) -> DNSMessage {
        DNSMessage(id: id, recursionDesired: recursionDesired, questions: [DNSQuestion(name: name, type: type)], edns: edns)
    }
}

// MARK: parsing

extension DNSMessage {
    /// Parses a whole message. Anything malformed or over a limit throws; a
    /// server answers FORMERR (when it can read the header) or nothing.
    public init(parsing bytes: [UInt8], limits: DNSLimits = .default) throws {
        guard bytes.count <= limits.maxMessageSize else { throw DNSError.limit("a message of \(bytes.count) octets") }
        var r = WireReader(bytes: bytes, limits: limits)
        let id = try r.u16()
        let flags = try r.u16()
        let counts = [try r.u16(), try r.u16(), try r.u16(), try r.u16()]
        guard Int(counts[0]) <= limits.maxQuestions else { throw DNSError.limit("\(counts[0]) questions (at most \(limits.maxQuestions))") }
        for c in counts[1...] where Int(c) > limits.maxRecordsPerSection {
            throw DNSError.limit("\(c) records in a section (at most \(limits.maxRecordsPerSection))")
        }
        var questions: [DNSQuestion] = []
        for _ in 0..<counts[0] {
            questions.append(DNSQuestion(name: try r.name(), type: DNSType(rawValue: try r.u16()), dnsClass: DNSClass(rawValue: try r.u16())))
        }
        let answers = try (0..<counts[1]).map { _ in try r.record() }
        let authorities = try (0..<counts[2]).map { _ in try r.record() }
        var additionals: [DNSRecord] = []
        var edns: EDNS?
        for _ in 0..<counts[3] {
            let start = r.offset
            let name = try r.name()
            let type = try r.u16()
            if type == DNSType.opt.rawValue {
                // RFC 6891 6.1.1: at most one OPT, owned by the root.
                guard edns == nil else { throw DNSError.malformed("more than one OPT record") }
                guard name == .root else { throw DNSError.malformed("an OPT record not owned by the root") }
                edns = try r.opt()
            } else {
                r.offset = start
                additionals.append(try r.record())
            }
        }
        guard r.offset == bytes.count else { throw DNSError.malformed("\(bytes.count - r.offset) octets after the last record") }
        self.init(
            id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xF), authoritative: flags & 0x0400 != 0,
            truncated: flags & 0x0200 != 0, recursionDesired: flags & 0x0100 != 0, recursionAvailable: flags & 0x0080 != 0,
            authenticData: flags & 0x0020 != 0, checkingDisabled: flags & 0x0010 != 0,
            rcode: DNSRCode(rawValue: UInt16(flags & 0xF) | (UInt16(edns?.extendedRCode ?? 0) << 4)),
            questions: questions, answers: answers, authorities: authorities, additionals: additionals, edns: edns)
    }

    /// The ID of a message too broken to parse, when at least its header is there (for a FORMERR reply).
    public static func headerID(_ bytes: [UInt8]) -> UInt16? {
        bytes.count >= 12 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : nil
    }
}

struct WireReader {
    let bytes: [UInt8]
    let limits: DNSLimits
    var offset = 0

    init(bytes: [UInt8], limits: DNSLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, offset + n <= bytes.count else { throw DNSError.malformed("cut short at octet \(offset) (needs \(n) more)") }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u16() throws -> UInt16 { let s = try take(2); return UInt16(s[s.startIndex]) << 8 | UInt16(s[s.startIndex + 1]) }
    mutating func u32() throws -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }

    /// A possibly compressed name (RFC 1035 4.1.4). Pointers must point
    /// backwards, so a loop cannot be built; hops are limited as well.
    mutating func name() throws -> DNSName {
        var labels: [[UInt8]] = []
        var wire = 1
        var position = offset
        var jumped = false
        var hops = 0
        var lowest = offset
        while true {
            guard position < bytes.count else { throw DNSError.malformed("a name runs past the end") }
            let length = bytes[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    if !jumped { offset = position + 1 }
                    return try DNSName(labels: labels)
                }
                let end = position + 1 + Int(length)
                guard end <= bytes.count else { throw DNSError.malformed("a label runs past the end") }
                wire += Int(length) + 1
                guard wire <= DNSName.maxWireLength else { throw DNSError.malformed("a name longer than 255 octets") }
                labels.append(Array(bytes[(position + 1)..<end]))
                position = end
            case 0xC0:
                guard position + 1 < bytes.count else { throw DNSError.malformed("a compression pointer runs past the end") }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                hops += 1
                guard hops <= limits.maxPointerHops else { throw DNSError.limit("more than \(limits.maxPointerHops) compression pointers in a name") }
                guard target < lowest else { throw DNSError.malformed("a compression pointer that does not point backwards") }
                if !jumped { offset = position + 2 }
                jumped = true
                lowest = target
                position = target
            default:
                // 0x40 / 0x80: extended label types (RFC 6891 5) are not in use.
                throw DNSError.malformed("label type \(length >> 6)")
            }
        }
    }

    mutating func characterString() throws -> [UInt8] {
        let n = Int(try u8())
        return Array(try take(n))
    }

    mutating func record() throws -> DNSRecord {
        let owner = try name()
        let type = DNSType(rawValue: try u16())
        let dnsClass = DNSClass(rawValue: try u16())
        let ttl = try u32()
        let length = Int(try u16())
        guard offset + length <= bytes.count else { throw DNSError.malformed("RDATA of \(type) runs past the end") }
        let end = offset + length
        let data: DNSRData
        switch type {
        case .a:
            guard length == 4 else { throw DNSError.malformed("A RDATA of \(length) octets") }
            data = .a(Array(try take(4)))
        case .aaaa:
            guard length == 16 else { throw DNSError.malformed("AAAA RDATA of \(length) octets") }
            data = .aaaa(Array(try take(16)))
        case .ns: data = .ns(try name())
        case .cname: data = .cname(try name())
        case .soa:
            data = .soa(SOAData(mname: try name(), rname: try name(), serial: try u32(), refresh: try u32(), retry: try u32(),
                                expire: try u32(), minimum: try u32()))
        case .mx: data = .mx(preference: try u16(), exchange: try name())
        case .txt:
            var strings: [[UInt8]] = []
            while offset < end { strings.append(try characterString()) }
            data = .txt(strings)
        case .srv: data = .srv(priority: try u16(), weight: try u16(), port: try u16(), target: try name())
        case .cert:
            guard length >= 5 else { throw DNSError.malformed("CERT RDATA of \(length) octets") }
            let t = try u16(), tag = try u16(), alg = try u8()
            data = .cert(CERTData(certificateType: t, keyTag: tag, algorithm: alg, certificate: Array(try take(end - offset))))
        default:
            data = .unknown(type, Array(try take(length)))
        }
        // RFC 1035 3.2.1: RDLENGTH must match what the type's RDATA used.
        guard offset == end else { throw DNSError.malformed("\(type) RDATA length \(length) does not match its content") }
        return DNSRecord(name: owner, dnsClass: dnsClass, ttl: ttl, data: data)
    }

    /// The rest of an OPT record after its owner and type (RFC 6891 6.1.2).
    mutating func opt() throws -> EDNS {
        let size = try u16()
        let extended = try u8()
        let version = try u8()
        let flags = try u16()
        let length = Int(try u16())
        let end = offset + length
        guard end <= bytes.count else { throw DNSError.malformed("OPT RDATA runs past the end") }
        var options: [(UInt16, [UInt8])] = []
        while offset < end {
            guard options.count < limits.maxOptions else { throw DNSError.limit("more than \(limits.maxOptions) EDNS options") }
            let code = try u16()
            let n = Int(try u16())
            guard offset + n <= end else { throw DNSError.malformed("an EDNS option runs past its record") }
            options.append((code, Array(try take(n))))
        }
        return EDNS(udpPayloadSize: size, extendedRCode: extended, version: version, dnssecOK: flags & 0x8000 != 0,
                    options: options.map { (code: $0.0, data: $0.1) })
    }
}

// MARK: encoding

extension DNSMessage {
    /// The wire form. With `maxSize` (a UDP answer), a message that does not
    /// fit keeps its question and OPT and sets TC (RFC 2181 9, RFC 6891 7), so
    /// the client retries over TCP.
    public func encoded(maxSize: Int = 65_535) -> [UInt8] {
        let full = encodedAll(self)
        if full.count <= maxSize { return full }
        var cut = self
        cut.truncated = true
        cut.answers = []
        cut.authorities = []
        cut.additionals = []
        return encodedAll(cut)
    }

    private func encodedAll(_ m: DNSMessage) -> [UInt8] {
        var w = WireWriter()
        w.u16(m.id)
        var flags: UInt16 = 0
        if m.isResponse { flags |= 0x8000 }
        flags |= UInt16(m.opcode & 0xF) << 11
        if m.authoritative { flags |= 0x0400 }
        if m.truncated { flags |= 0x0200 }
        if m.recursionDesired { flags |= 0x0100 }
        if m.recursionAvailable { flags |= 0x0080 }
        if m.authenticData { flags |= 0x0020 }
        if m.checkingDisabled { flags |= 0x0010 }
        flags |= m.rcode.rawValue & 0xF
        w.u16(flags)
        w.u16(UInt16(m.questions.count))
        w.u16(UInt16(m.answers.count))
        w.u16(UInt16(m.authorities.count))
        w.u16(UInt16(m.additionals.count + (m.edns == nil ? 0 : 1)))
        for q in m.questions {
            w.name(q.name, compress: true)
            w.u16(q.type.rawValue)
            w.u16(q.dnsClass.rawValue)
        }
        for r in m.answers + m.authorities + m.additionals { w.record(r) }
        if var e = m.edns {
            e.extendedRCode = UInt8(truncatingIfNeeded: m.rcode.rawValue >> 4)
            w.opt(e)
        }
        return w.bytes
    }
}

struct WireWriter {
    var bytes: [UInt8] = []
    /// Offsets of name suffixes already written (RFC 1035 4.1.4), by lowercased labels.
    var suffixes: [[[UInt8]]: Int] = [:]

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }

    mutating func name(_ n: DNSName, compress: Bool) {
        let key = n.key
        for i in 0..<n.labels.count {
            let suffix = Array(key[i...])
            if compress, let at = suffixes[suffix] {
                u16(0xC000 | UInt16(at))
                return
            }
            // Only offsets that fit in 14 bits can be pointed at.
            if bytes.count < 0x4000 && suffixes[suffix] == nil { suffixes[suffix] = bytes.count }
            u8(UInt8(n.labels[i].count))
            bytes.append(contentsOf: n.labels[i])
        }
        u8(0)
    }

    mutating func record(_ r: DNSRecord) {
        name(r.name, compress: true)
        u16(r.type.rawValue)
        u16(r.dnsClass.rawValue)
        u32(r.ttl)
        let lengthAt = bytes.count
        u16(0)
        switch r.data {
        case .a(let b), .aaaa(let b): bytes.append(contentsOf: b)
        // RFC 3597 4: names in the RFC 1035 types may be compressed.
        case .ns(let n), .cname(let n): name(n, compress: true)
        case .soa(let s):
            name(s.mname, compress: true)
            name(s.rname, compress: true)
            for v in [s.serial, s.refresh, s.retry, s.expire, s.minimum] { u32(v) }
        case .mx(let p, let x):
            u16(p)
            name(x, compress: true)
        case .txt(let strings):
            for s in strings {
                u8(UInt8(min(s.count, 255)))
                bytes.append(contentsOf: s.prefix(255))
            }
        case .srv(let p, let wgt, let port, let target):
            u16(p); u16(wgt); u16(port)
            // RFC 2782: the target is not compressed.
            name(target, compress: false)
        case .cert(let c):
            u16(c.certificateType); u16(c.keyTag); u8(c.algorithm)
            bytes.append(contentsOf: c.certificate)
        case .unknown(_, let b): bytes.append(contentsOf: b)
        }
        let length = bytes.count - lengthAt - 2
        bytes[lengthAt] = UInt8(length >> 8)
        bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }

    mutating func opt(_ e: EDNS) {
        u8(0)
        u16(DNSType.opt.rawValue)
        u16(e.udpPayloadSize)
        u8(e.extendedRCode)
        u8(e.version)
        u16(e.dnssecOK ? 0x8000 : 0)
        let data = e.options.flatMap { o in [UInt8(o.code >> 8), UInt8(o.code & 0xFF), UInt8(o.data.count >> 8), UInt8(o.data.count & 0xFF)] + o.data }
        u16(UInt16(data.count))
        bytes.append(contentsOf: data)
    }
}
