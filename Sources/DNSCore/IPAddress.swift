#if canImport(Glibc)
import Glibc
#endif

/// Textual IP addresses to the octets A and AAAA records carry.
public enum IPAddressText {
    /// Dotted-quad IPv4 (RFC 1123 2.1 form, no leading zeros tricks).
    public static func v4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy(\.isASCII), let v = UInt8(p), String(v) == p else { return nil }
            out.append(v)
        }
        return out
    }

    /// IPv6 in RFC 4291 2.2 text form.
    public static func v6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.utf8.count <= 45 else { return nil }
        var addr = in6_addr()
        guard inet_pton(AF_INET6, text, &addr) == 1 else { return nil }
        return withUnsafeBytes(of: &addr) { Array($0) }
    }

    /// The text form of 4 (dotted quad) or 16 (RFC 5952-style hex groups, without zero compression) octets.
    public static func text(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map { String($0) }.joined(separator: ".") }
        guard bytes.count == 16 else { return bytes.map { String($0) }.joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}
