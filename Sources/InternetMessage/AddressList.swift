/// Mailbox addresses in a header field (RFC 5322 3.4): `a@b`, `Name <a@b>`,
/// `"Last, First" <a@b>`, groups (`team: a@b, c@d;`) and comments.
public enum AddressList {
    /// At most this many addresses are read from one field.
    public static let maxAddresses = 1000

    /// The addr-specs in `value`, in order; display names and comments dropped.
    public static func addresses(_ value: String) -> [String] {
        var out: [String] = []
        var current = ""       // text of the current mailbox outside angle brackets
        var angle: String? = nil
        var inQuote = false
        var inAngle = false
        var commentDepth = 0
        var escaped = false

        func finish() {
            let candidate = (angle ?? current).trimmingWhitespace()
            if candidate.contains("@"), out.count < maxAddresses { out.append(candidate) }
            current = ""
            angle = nil
        }

        for ch in value {
            if escaped {
                if inAngle { angle?.append(ch) } else if !inQuote && commentDepth == 0 { current.append(ch) }
                escaped = false
                continue
            }
            if ch == "\\" && (inQuote || commentDepth > 0) { escaped = true; continue }
            if commentDepth > 0 {
                if ch == "(" { commentDepth += 1 } else if ch == ")" { commentDepth -= 1 }
                continue
            }
            if inQuote {
                if ch == "\"" { inQuote = false }
                if inAngle { angle?.append(ch) }
                continue
            }
            switch ch {
            case "\"":
                inQuote = true
                if inAngle { angle?.append(ch) }
            case "(":
                commentDepth = 1
            case "<":
                inAngle = true
                angle = ""
            case ">":
                inAngle = false
            case ",", ";":
                if inAngle { angle?.append(ch) } else { finish() }
            case ":":
                // A group's name ends; its members follow.
                if inAngle { angle?.append(ch) } else { current = "" }
            default:
                if inAngle { angle?.append(ch) } else { current.append(ch) }
            }
        }
        finish()
        return out.map { $0.filter { !$0.isWhitespace } }
    }

    /// The single address of a `From`-like field, or nil when there is not exactly one.
    public static func single(_ value: String) -> String? {
        let all = addresses(value)
        return all.count == 1 ? all[0] : nil
    }
}
