/// A Direct address (`local-part@domain`), as used to bind certificates
/// (Direct AS 1.2 4.0: rfc822Name or the domain's dNSName).
public struct DirectAddress: Sendable, Hashable, CustomStringConvertible {
    public let localPart: String
    public let domain: String

    /// RFC 5321 4.5.3.1.1 / 4.5.3.1.2 limits.
    public static let maxLocalPartLength = 64
    public static let maxDomainLength = 255

    public init?(_ text: String) {
        let trimmed = text.trimmingWhitespace()
        // Bytes, not Characters: "@" and the checks below are ASCII, and
        // grapheme breaking cost more than the rest of the parse.
        guard let at = trimmed.utf8.lastIndex(of: UInt8(ascii: "@")) else { return nil }
        let local = String(trimmed[..<at])
        let domain = trimmed.utf8[trimmed.utf8.index(after: at)...]
        guard !local.isEmpty, !domain.isEmpty,
              local.utf8.count <= Self.maxLocalPartLength,
              domain.count <= Self.maxDomainLength,
              domain.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "@") })
        else { return nil }
        self.localPart = local
        // Domains compare case-insensitively (RFC 5321 2.4); the domain is ASCII (checked above).
        self.domain = String(decoding: domain.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    public var description: String { "\(localPart)@\(domain)" }
}

extension String {
    /// Trims SP, HTAB, CR and LF from both ends.
    public func trimmingWhitespace() -> String {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
        let bytes = utf8
        guard let first = bytes.firstIndex(where: { !isSpace($0) }),
              let last = bytes.lastIndex(where: { !isSpace($0) })
        else { return "" }
        let end = bytes.index(after: last)
        if first == bytes.startIndex && end == bytes.endIndex { return self }
        // The bytes just outside the range are ASCII, so both ends fall on scalar boundaries.
        return String(self[first..<end])
    }
}

/// What a Direct certificate is bound to (Direct Applicability Statement
/// 1.2 4.0): one address (subjectAltName rfc822Name) or a whole domain
/// (subjectAltName dNSName).
public enum CertificateBinding: Sendable, Hashable, CustomStringConvertible {
    case address(DirectAddress)
    case domain(String)

    public var text: String {
        switch self {
        case .address(let a): return a.description
        case .domain(let d): return d
        }
    }

    public var domain: String {
        switch self {
        case .address(let a): return a.domain
        case .domain(let d): return d.lowercased()
        }
    }

    public var description: String { text }
}
