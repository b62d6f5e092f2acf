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
        guard let at = trimmed.lastIndex(of: "@") else { return nil }
        let local = String(trimmed[..<at])
        let domain = String(trimmed[trimmed.index(after: at)...])
        guard !local.isEmpty, !domain.isEmpty,
              local.utf8.count <= Self.maxLocalPartLength,
              domain.utf8.count <= Self.maxDomainLength,
              !domain.contains("@"),
              domain.utf8.allSatisfy({ $0 > 32 && $0 < 127 })
        else { return nil }
        self.localPart = local
        // Domains compare case-insensitively (RFC 5321 2.4).
        self.domain = domain.lowercased()
    }

    public var description: String { "\(localPart)@\(domain)" }
}

extension String {
    /// Trims SP, HTAB, CR and LF from both ends.
    public func trimmingWhitespace() -> String {
        let ws: Set<Character> = [" ", "\t", "\r", "\n", "\r\n"]
        var s = Substring(self)
        while let f = s.first, ws.contains(f) { s = s.dropFirst() }
        while let l = s.last, ws.contains(l) { s = s.dropLast() }
        return String(s)
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
