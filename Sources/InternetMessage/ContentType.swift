/// A parsed Content-Type (RFC 2045 5.1): lower-cased type and subtype, and
/// parameters with lower-cased names and their values unquoted.
public struct ContentType: Sendable, Hashable, CustomStringConvertible {
    public let type: String
    public let subtype: String
    /// `type/subtype`, made once: messages are dispatched on it.
    public let mimeType: String
    public var parameters: [(name: String, value: String)]

    public init(type: String, subtype: String, parameters: [(name: String, value: String)] = []) {
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        self.mimeType = self.type + "/" + self.subtype
        self.parameters = parameters
    }

    /// RFC 2045 5.2: the default when no Content-Type is given.
    public static let defaultPlainText = ContentType(type: "text", subtype: "plain", parameters: [("charset", "us-ascii")])

    public var isMultipart: Bool { type == "multipart" }

    public subscript(parameter name: String) -> String? {
        parameters.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    public static func == (l: ContentType, r: ContentType) -> Bool {
        l.type == r.type && l.subtype == r.subtype && l.parameters.elementsEqual(r.parameters, by: { $0 == $1 })
    }

    public func hash(into h: inout Hasher) {
        h.combine(type)
        h.combine(subtype)
        for p in parameters {
            h.combine(p.name)
            h.combine(p.value)
        }
    }

    /// Serialised for a header value; values that are not tokens are quoted.
    public var description: String {
        var s = mimeType
        s.reserveCapacity(parameters.reduce(s.utf8.count) { $0 + $1.name.utf8.count + $1.value.utf8.count + 6 })
        for p in parameters {
            s += "; "
            s += p.name
            s += "="
            s += Self.quoteIfNeeded(p.value)
        }
        return s
    }

    /// RFC 2045 5.1 tspecials: ( ) < > @ , ; : \ " / [ ] ? =
    static func isTSpecial(_ c: UInt8) -> Bool {
        switch c {
        case 0x28, 0x29, 0x3C, 0x3E, 0x40, 0x2C, 0x3B, 0x3A, 0x5C, 0x22, 0x2F, 0x5B, 0x5D, 0x3F, 0x3D: return true
        default: return false
        }
    }

    static func quoteIfNeeded(_ v: String) -> String {
        let isToken = !v.isEmpty && v.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !isTSpecial($0) }
        if isToken { return v }
        // RFC 5322 3.2.4: quoted-string, with '\\' and '"' escaped.
        var out: [UInt8] = [0x22]
        out.reserveCapacity(v.utf8.count + 4)
        for c in v.utf8 {
            if c == 0x5C || c == 0x22 { out.append(0x5C) }
            out.append(c)
        }
        out.append(0x22)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses a Content-Type value. Comments (RFC 5322 3.2.2) are skipped;
    /// RFC 2231 continuations (`name*0`, `name*1`) are joined.
    public init(parsing value: String) throws {
        var scanner = ParameterScanner(value)
        guard let type = scanner.token(), scanner.consume("/"), let subtype = scanner.token() else {
            throw MessageError.malformedContentType(String(value.prefix(200)))
        }
        self.init(type: type, subtype: subtype, parameters: try scanner.parameters(original: value))
    }
}

/// A Content-Disposition field (RFC 2183 2): `inline` or `attachment` (or an
/// extension token), lowercased, and its parameters as Content-Type's are read.
public struct ContentDisposition: Sendable, Equatable {
    public var type: String
    public var parameters: [(name: String, value: String)]

    public init(parsing value: String) throws {
        var scanner = ParameterScanner(value)
        guard let type = scanner.token() else { throw MessageError.malformedContentDisposition(String(value.prefix(200))) }
        self.type = type.lowercased()
        parameters = try scanner.parameters(original: value)
    }

    public static func == (l: ContentDisposition, r: ContentDisposition) -> Bool {
        l.type == r.type && l.parameters.elementsEqual(r.parameters) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Scans `token`, `quoted-string` and `; name=value` lists (RFC 2045 5.1).
struct ParameterScanner {
    private let bytes: [UInt8]
    private var i = 0

    init(_ s: String) { bytes = Array(s.utf8) }

    private mutating func skipCFWS() {
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A {
                i += 1
            } else if c == UInt8(ascii: "(") {
                var depth = 0
                while i < bytes.count {
                    if bytes[i] == UInt8(ascii: "\\") { i += 2; continue }
                    if bytes[i] == UInt8(ascii: "(") { depth += 1 }
                    if bytes[i] == UInt8(ascii: ")") { depth -= 1; if depth == 0 { i += 1; break } }
                    i += 1
                }
            } else {
                return
            }
        }
    }

    mutating func consume(_ ch: Character) -> Bool {
        skipCFWS()
        guard i < bytes.count, bytes[i] == ch.asciiValue! else { return false }
        i += 1
        return true
    }

    mutating func token() -> String? {
        skipCFWS()
        let start = i
        while i < bytes.count, bytes[i] > 0x20, bytes[i] < 0x7F || bytes[i] >= 0x80,
            !ContentType.isTSpecial(bytes[i])
        {
            i += 1
        }
        return i > start ? String(decoding: bytes[start..<i], as: UTF8.self) : nil
    }

    mutating func quotedString() -> String? {
        skipCFWS()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        var out = [UInt8]()
        while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
            if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count { i += 1 }
            out.append(bytes[i])
            i += 1
        }
        if i < bytes.count { i += 1 }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func parameters(original: String) throws -> [(name: String, value: String)] {
        var raw: [(name: String, value: String)] = []
        while true {
            skipCFWS()
            if i >= bytes.count { break }
            guard consume(";") else { throw MessageError.malformedContentType(String(original.prefix(200))) }
            skipCFWS()
            if i >= bytes.count { break }  // trailing ';' is common and harmless
            guard let name = token(), consume("=") else {
                throw MessageError.malformedContentType(String(original.prefix(200)))
            }
            let value = quotedString() ?? token() ?? ""
            raw.append((name.lowercased(), value))
            if raw.count > 64 { throw MessageError.malformedContentType("more than 64 parameters") }
        }
        return Self.joinContinuations(raw)
    }

    /// RFC 2231 3 and 4: `name*0=a; name*1=b` -> `name=ab`; `name*=utf-8''x%20y` decoded.
    static func joinContinuations(_ raw: [(name: String, value: String)]) -> [(name: String, value: String)] {
        guard raw.contains(where: { $0.name.utf8.contains(0x2A) }) else { return raw }
        var result: [(name: String, value: String)] = []
        var pieces: [String: [(Int, String, Bool)]] = [:]
        var order: [String] = []
        for (name, value) in raw {
            guard let star = name.firstIndex(of: "*") else {
                result.append((name, value))
                continue
            }
            let base = String(name[..<star])
            let rest = name[name.index(after: star)...]
            let extended = rest.hasSuffix("*") || rest.isEmpty
            let numberText = rest.hasSuffix("*") ? rest.dropLast() : rest
            let number = Int(numberText) ?? 0
            if pieces[base] == nil { order.append(base) }
            pieces[base, default: []].append((number, value, extended))
        }
        for base in order {
            let sorted = pieces[base]!.sorted { $0.0 < $1.0 }
            var bytes: [UInt8] = []
            var charset = "utf-8"
            for (idx, piece) in sorted.enumerated() {
                var v = piece.1
                if piece.2 {
                    if idx == 0 {
                        let parts = v.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                        if parts.count == 3 {
                            charset = parts[0].isEmpty ? "utf-8" : parts[0].lowercased()
                            v = String(parts[2])
                        }
                    }
                    bytes += percentDecode(v)
                } else {
                    bytes += Array(v.utf8)
                }
            }
            result.append((base, EncodedWord.decodeCharset(bytes, charset: charset) ?? String(decoding: bytes, as: UTF8.self)))
        }
        return result
    }

    static func percentDecode(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        var out = [UInt8]()
        var k = 0
        while k < u.count {
            if u[k] == UInt8(ascii: "%"), k + 2 < u.count,
                let v = UInt8(String(decoding: u[(k + 1)...(k + 2)], as: UTF8.self), radix: 16)
            {
                out.append(v)
                k += 3
            } else {
                out.append(u[k])
                k += 1
            }
        }
        return out
    }
}
