/// A domain name as a sequence of labels (RFC 1035 3.1). Compared without
/// regard to ASCII case (RFC 4343); kept with the case it was given.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// RFC 1035 2.3.4: 63 octets per label, 255 octets in wire form.
    public static let maxLabelLength = 63
    public static let maxWireLength = 255

    public let labels: [[UInt8]]

    public static let root = DNSName(validated: [])

    init(validated labels: [[UInt8]]) { self.labels = labels }

    /// From wire labels, checking RFC 1035 2.3.4's limits.
    public init(labels: [[UInt8]]) throws {
        for l in labels {
            guard !l.isEmpty else { throw DNSError.invalidName("empty label") }
            guard l.count <= Self.maxLabelLength else { throw DNSError.invalidName("a label of \(l.count) octets (at most 63)") }
        }
        guard labels.reduce(1, { $0 + $1.count + 1 }) <= Self.maxWireLength else {
            throw DNSError.invalidName("a name longer than 255 octets")
        }
        self.labels = labels
    }

    /// From presentation form: `direct.example.org` or `direct.example.org.`
    /// (dots separate labels; `\.` and `\DDD` escapes as in RFC 1035 5.1).
    public init(_ text: String) throws {
        if text == "." || text.isEmpty {
            self = .root
            return
        }
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { throw DNSError.invalidName("\(text): dangling escape") }
                if i + 3 < bytes.count, let d = Int(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self)), d <= 255,
                   bytes[(i + 1)...(i + 3)].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                    current.append(UInt8(d))
                    i += 4
                } else {
                    current.append(bytes[i + 1])
                    i += 2
                }
                continue
            }
            if c == UInt8(ascii: ".") {
                guard !current.isEmpty else { throw DNSError.invalidName("\(text): empty label") }
                labels.append(current)
                current = []
            } else {
                current.append(c)
            }
            i += 1
        }
        if !current.isEmpty { labels.append(current) }
        try self.init(labels: labels)
    }

    /// Length in wire form (labels with their length octets, and the root).
    public var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }

    /// Lowercased labels, the key for comparison and compression.
    var key: [[UInt8]] { labels.map { $0.map(Self.lower) } }

    @inline(__always)
    static func lower(_ c: UInt8) -> UInt8 { (c >= 0x41 && c <= 0x5A) ? c + 0x20 : c }

    public static func == (a: DNSName, b: DNSName) -> Bool { a.key == b.key }
    public func hash(into h: inout Hasher) { h.combine(key) }

    /// Whether this name is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard labels.count >= other.labels.count else { return false }
        return Array(key.suffix(other.labels.count)) == other.key
    }

    /// The name with `label` in front (`cert` + `example.org`).
    public func prepending(_ label: [UInt8]) throws -> DNSName { try DNSName(labels: [label] + labels) }

    /// Presentation form with a trailing dot; non-printing octets and dots in labels escaped.
    public var description: String {
        if labels.isEmpty { return "." }
        return labels.map { label in
            label.map { c -> String in
                switch c {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: ";"), UInt8(ascii: "("), UInt8(ascii: ")"):
                    return "\\" + String(UnicodeScalar(c))
                case 0x21...0x7E: return String(UnicodeScalar(c))
                default:
                    let d = String(c)
                    return "\\" + String(repeating: "0", count: 3 - d.count) + d
                }
            }.joined()
        }.joined(separator: ".") + "."
    }
}
