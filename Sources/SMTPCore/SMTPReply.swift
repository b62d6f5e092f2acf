import DirectCore
/// An SMTP reply (RFC 5321 4.2): a three-digit code, an enhanced status code
/// (RFC 3463, RFC 2034) and one or more lines of text.
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    /// `x.y.z`, or nil for replies that carry none (the greeting, 354, AUTH challenges).
    public var enhanced: String?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String?, _ lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public init(_ code: Int, _ enhanced: String?, _ text: String) {
        self.init(code, enhanced, [text])
    }

    /// 2yz / 3yz: the command was accepted (or needs more input).
    public var isPositive: Bool { code < 400 }
    /// 4yz: try again later (RFC 5321 4.2.1).
    public var isTransient: Bool { code >= 400 && code < 500 }
    /// 5yz: do not try again.
    public var isPermanent: Bool { code >= 500 }

    public var text: String { lines.joined(separator: " ") }

    public var description: String {
        enhanced.map { "\(code) \($0) \(text)" } ?? "\(code) \(text)"
    }

    /// The reply on the wire: `250-first` ... `250 last`, each line CRLF-ended (RFC 5321 4.2.1).
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        for (i, line) in lines.enumerated() {
            let sep = i == lines.count - 1 ? " " : "-"
            let body = enhanced.map { "\($0) \(line)" } ?? line
            // RFC 5321 4.2 / 2.4: a reply line is printable US-ASCII; text from a peer's input
            // (a header name in a refusal) must neither end the line early nor reach a terminal raw.
            out += Array("\(code)\(sep)\(SafeText.escape(body, asciiOnly: true))".utf8)
            out += [13, 10]
        }
        return out
    }
}

/// Reads replies a server sends (for the client): multi-line replies are
/// joined, the enhanced code is split off when the server announced
/// ENHANCEDSTATUSCODES or the text starts with one.
public struct SMTPReplyParser: Sendable {
    /// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; we allow more.
    public static let maxLineLength = 4096
    /// A guard against a server that never ends a multi-line reply.
    public static let maxLines = 200

    private var code: Int?
    private var lines: [String] = []

    public init() {}

    /// Feeds one line (without CRLF). Returns a reply when it was the last line.
    public mutating func feed(_ line: [UInt8]) throws -> SMTPReply? {
        guard line.count <= Self.maxLineLength else { throw SMTPProtocolError.replyTooLong }
        guard line.count >= 3, line[0...2].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let c = Int(String(decoding: line[0...2], as: UTF8.self)), (200...599).contains(c) else {
            throw SMTPProtocolError.malformedReply(String(decoding: line.prefix(80), as: UTF8.self))
        }
        if let code, code != c { throw SMTPProtocolError.malformedReply("a multi-line reply changed its code from \(code) to \(c)") }
        let sep: UInt8 = line.count > 3 ? line[3] : 0x20
        guard sep == 0x20 || sep == 0x2D else {
            throw SMTPProtocolError.malformedReply(String(decoding: line.prefix(80), as: UTF8.self))
        }
        code = c
        lines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
        guard lines.count <= Self.maxLines else { throw SMTPProtocolError.replyTooLong }
        guard sep == 0x20 else { return nil }
        defer { self.code = nil; lines = [] }
        // RFC 3463 / RFC 2034: every line of a reply carries the same enhanced code.
        var enhanced: String? = nil
        var texts = lines
        if let first = lines.first, let e = Self.enhancedCode(first, basic: c) {
            enhanced = e
            texts = lines.map { $0.hasPrefix(e) ? String($0.dropFirst(e.count).drop { $0 == " " }) : $0 }
        }
        return SMTPReply(c, enhanced, texts)
    }

    static func enhancedCode(_ text: String, basic: Int) -> String? {
        let word = text.prefix { $0 != " " }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }),
              parts[0] == Substring(String(basic / 100)) else { return nil }
        return String(word)
    }
}

/// Protocol-level failures of a peer (not of a message).
public enum SMTPProtocolError: Error, Equatable, CustomStringConvertible, Sendable {
    case replyTooLong
    case malformedReply(String)
    case lineTooLong(limit: Int)

    public var description: String {
        switch self {
        case .replyTooLong: return "the server's reply is too long"
        case .malformedReply(let s): return "the server sent a malformed reply: \(s)"
        case .lineTooLong(let limit): return "a line is longer than \(limit) octets"
        }
    }
}

/// A refusal can be thrown as the reply that states it.
extension SMTPReply: Error {}
