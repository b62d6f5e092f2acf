import SwiftASN1
import X509

/// Reads distinguished names in the RFC 4514 string form
/// (`CN=Example CA,O=Example,C=US`).
public enum NameParser {
    /// Limit on the string form (a Direct CA name is well under 200 bytes).
    public static let maxLength = 1024
    public static let maxAttributes = 32

    /// The attribute types an operator writes by name (RFC 4514 3, RFC 4519).
    static let types: [String: ASN1ObjectIdentifier] = [
        "CN": [2, 5, 4, 3], "SERIALNUMBER": [2, 5, 4, 5], "C": [2, 5, 4, 6], "L": [2, 5, 4, 7],
        "ST": [2, 5, 4, 8], "STREET": [2, 5, 4, 9], "O": [2, 5, 4, 10], "OU": [2, 5, 4, 11],
        "DC": [0, 9, 2342, 19_200_300, 100, 1, 25], "UID": [0, 9, 2342, 19_200_300, 100, 1, 1],
        "EMAILADDRESS": [1, 2, 840, 113_549, 1, 9, 1], "E": [1, 2, 840, 113_549, 1, 9, 1],
    ]

    /// Parses `text`. RFC 4514 2.1 lists the most specific RDN first, so the
    /// order is reversed into the Name's SEQUENCE.
    public static func parse(_ text: String) throws -> DistinguishedName {
        guard text.utf8.count <= maxLength else { throw CAError.invalidName("longer than \(maxLength) bytes") }
        let bytes = Array(text.utf8)
        guard !bytes.allSatisfy({ $0 == 0x20 }) else { throw CAError.invalidName("empty") }
        var rdns: [RelativeDistinguishedName] = []
        var current: [RelativeDistinguishedName.Attribute] = []
        var i = 0
        var count = 0
        while true {
            let (attribute, next, separator) = try parseAttribute(bytes, from: i)
            count += 1
            guard count <= maxAttributes else { throw CAError.invalidName("more than \(maxAttributes) attributes") }
            current.append(attribute)
            i = next
            if separator == UInt8(ascii: "+") { continue }  // RFC 4514 3: multi-valued RDN
            rdns.append(RelativeDistinguishedName(current))
            current = []
            if separator == nil { break }
        }
        return DistinguishedName(rdns.reversed())
    }

    /// One `type=value`; returns it, the index after it and the separator
    /// that ended it (',' or '+', nil at the end).
    static func parseAttribute(_ s: [UInt8], from start: Int) throws -> (RelativeDistinguishedName.Attribute, Int, UInt8?) {
        var i = start
        while i < s.count, s[i] == 0x20 { i += 1 }
        let typeStart = i
        while i < s.count, s[i] != UInt8(ascii: "=") {
            guard s[i] != UInt8(ascii: ","), s[i] != UInt8(ascii: "+") else {
                throw CAError.invalidName("\"\(String(decoding: s[typeStart..<i], as: UTF8.self))\" has no '=' (write TYPE=value)")
            }
            i += 1
        }
        guard i < s.count else {
            throw CAError.invalidName("\"\(String(decoding: s[typeStart...], as: UTF8.self))\" has no '=' (write TYPE=value)")
        }
        let typeName = String(decoding: s[typeStart..<i], as: UTF8.self).trimmingSpaces()
        let oid = try attributeType(typeName)
        i += 1  // '='
        var value: [UInt8] = []
        var separator: UInt8? = nil
        var escapedUpTo = 0  // value bytes up to here came from escapes and keep their spaces
        while i < s.count {
            let c = s[i]
            if c == UInt8(ascii: ",") || c == UInt8(ascii: "+") {
                separator = c
                i += 1
                break
            }
            if c == UInt8(ascii: "\\") {
                // RFC 4514 2.4: \ followed by a special character or two hex digits.
                guard i + 1 < s.count else { throw CAError.invalidName("dangling '\\' at the end") }
                let n = s[i + 1]
                if let hi = hexValue(n), i + 2 < s.count, let lo = hexValue(s[i + 2]) {
                    value.append(hi << 4 | lo)
                    i += 3
                } else if Array(" \"#+,;<=>\\".utf8).contains(n) {
                    value.append(n)
                    i += 2
                } else {
                    throw CAError.invalidName("'\\\(Character(UnicodeScalar(n)))' is not an RFC 4514 escape")
                }
                escapedUpTo = value.count
                continue
            }
            if value.isEmpty && c == UInt8(ascii: "#") {
                throw CAError.invalidName("hex-encoded (#...) values are not supported; write the value as text")
            }
            if value.isEmpty && c == 0x20 {  // leading spaces are not part of the value
                i += 1
                continue
            }
            value.append(c)
            i += 1
        }
        // Trailing unescaped spaces are not part of the value either.
        while value.count > escapedUpTo, value.last == 0x20 { value.removeLast() }
        guard !value.isEmpty else { throw CAError.invalidName("\(typeName) has an empty value") }
        guard let text = String(validating: value, as: UTF8.self) else {
            throw CAError.invalidName("\(typeName) is not valid UTF-8")
        }
        return (try attribute(oid, typeName: typeName, value: text), i, separator)
    }

    static func attributeType(_ name: String) throws -> ASN1ObjectIdentifier {
        if let oid = types[name.uppercased()] { return oid }
        // RFC 4514 3: a dotted OID may stand for the type.
        let arcs = name.split(separator: ".", omittingEmptySubsequences: false)
        if arcs.count >= 2, arcs.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
            do {
                return try ASN1ObjectIdentifier(dotRepresentation: name)
            } catch {
                throw CAError.invalidName("\(name) is not a valid OID")
            }
        }
        throw CAError.invalidName(
            "unknown attribute type \"\(name)\" (use CN, O, OU, C, ST, L, STREET, DC, UID, SERIALNUMBER, emailAddress or a dotted OID)")
    }

    static func attribute(_ oid: ASN1ObjectIdentifier, typeName: String, value: String) throws -> RelativeDistinguishedName.Attribute {
        let upper = typeName.uppercased()
        do {
            switch upper {
            case "C":
                // RFC 5280 A.1: a two-letter ISO 3166 code, PrintableString.
                guard value.utf8.count == 2, value.allSatisfy({ $0.isLetter && $0.isASCII }) else {
                    throw CAError.invalidName("C=\(value): the country is a two-letter code such as US")
                }
                return try .init(type: oid, printableString: value.uppercased())
            case "DC", "EMAILADDRESS", "E":
                guard value.allSatisfy(\.isASCII) else { throw CAError.invalidName("\(typeName)=\(value) must be ASCII") }
                return try .init(type: oid, ia5String: value)
            case "SERIALNUMBER":
                return try .init(type: oid, printableString: value)
            default:
                return .init(type: oid, utf8String: value)
            }
        } catch let e as CAError {
            throw e
        } catch {
            throw CAError.invalidName("\(typeName)=\(value): \(error)")
        }
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
