import DirectCore
import SecurityAgent

/// The Authentication-Results header field (RFC 8601) a stored Direct message
/// carries, so that a mail client shows what DirectHISP checked: the S/MIME
/// signature passed (RFC 7281 method `smime`), who signed, the signer
/// certificate's issuer and serial, and the trust anchor of the local domain.
enum AuthenticationResults {
    /// `message` with our header field first, and without any earlier field that
    /// claims to come from `hostname` (RFC 8601 5: a forged one is removed).
    static func stamped(_ message: [UInt8], hostname: String, sender: DirectAddress, evidence: SecurityAgent.SignatureEvidence) -> [UInt8] {
        field(hostname: hostname, sender: sender, evidence: evidence) + removingClaims(of: hostname, from: message)
    }

    static func field(hostname: String, sender: DirectAddress, evidence: SecurityAgent.SignatureEvidence) -> [UInt8] {
        let items = [
            "\(ascii(hostname));",
            "smime=pass",
            "(Direct: signature and trust checked for \(comment(evidence.localDomain)), anchor \(comment(evidence.anchor)))",
            "body.smime-identifier=\(ascii(sender.description))",
            "body.smime-issuer=\(quoted(evidence.issuer))",
            "body.smime-serial=\(ascii(evidence.serial))",
        ]
        // RFC 5322 2.2.3: folded before each item, every line under 78 characters where the values allow.
        var lines: [String] = []
        var line = "Authentication-Results:"
        for item in items {
            if line.count + 1 + item.count > 76 {
                lines.append(line)
                line = "\t" + item
            } else {
                line += " " + item
            }
        }
        lines.append(line)
        return Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// Printable ASCII only: anything else (controls, non-ASCII) becomes "?".
    static func ascii(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(256).map { $0.value >= 0x21 && $0.value < 0x7F ? $0 : "?" }))
    }

    /// An RFC 5322 quoted-string of printable ASCII and spaces.
    static func quoted(_ s: String) -> String {
        let inner = s.unicodeScalars.prefix(256).map { c -> String in
            switch c {
            case "\"", "\\": return "\\" + String(c)
            case " ": return " "
            default: return c.value >= 0x21 && c.value < 0x7F ? String(c) : "?"
            }
        }.joined()
        return "\"\(inner)\""
    }

    /// Text inside an RFC 5322 comment: parentheses and backslashes escaped.
    static func comment(_ s: String) -> String {
        s.unicodeScalars.prefix(256).map { c -> String in
            switch c {
            case "(", ")", "\\": return "\\" + String(c)
            case " ": return " "
            default: return c.value >= 0x21 && c.value < 0x7F ? String(c) : "?"
            }
        }.joined()
    }

    /// The message without header fields "Authentication-Results: HOSTNAME..." (with their continuation lines).
    static func removingClaims(of hostname: String, from message: [UInt8]) -> [UInt8] {
        let name = Array("authentication-results:".utf8)
        let host = Array(hostname.lowercased().utf8)
        var out: [UInt8] = []
        out.reserveCapacity(message.count)
        var i = 0
        var dropping = false
        while i < message.count {
            let end = (message[i...].firstIndex(of: 0x0A) ?? (message.count - 1)) + 1
            let line = message[i..<end]
            let isBlank = line.first == 0x0D || line.first == 0x0A
            if isBlank {
                // The end of the header section: the rest is the body, kept as it is.
                out += message[i...]
                return out
            }
            let continuation = line.first == 0x20 || line.first == 0x09
            if !continuation {
                dropping = false
                if line.count >= name.count, zip(line.prefix(name.count), name).allSatisfy({ lower($0) == $1 }) {
                    let value = line.dropFirst(name.count).drop { $0 == 0x20 || $0 == 0x09 }
                    if value.count >= host.count, zip(value.prefix(host.count), host).allSatisfy({ lower($0) == $1 }) {
                        let next = value.dropFirst(host.count).first
                        dropping = next == nil || next == 0x3B || next == 0x20 || next == 0x09 || next == 0x0D || next == 0x0A
                    }
                }
            }
            if !dropping { out += line }
            i = end
        }
        return out
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b + 0x20 : b }
}
