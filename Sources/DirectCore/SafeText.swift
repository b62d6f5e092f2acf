/// Text built from input, made safe to show: in an SMTP reply, a log field, a
/// terminal. A peer's header, a certificate's subject or a mutated S/MIME
/// structure can carry ESC, BEL or CR; printed raw they clear a terminal, set
/// its title, forge a log line or end an SMTP reply early. Each such character
/// becomes a visible escape instead (`\x1B`, `\u{202E}`), so nothing is lost
/// from what an operator reads and nothing is acted on.
public enum SafeText {
    /// `text` with every control character (C0, DEL, C1), line and paragraph
    /// separator, and bidirectional override escaped. With `asciiOnly`, every
    /// character outside printable ASCII is escaped too (SMTP replies are
    /// US-ASCII, RFC 5321 2.4).
    public static func escape(_ text: String, asciiOnly: Bool = false) -> String {
        // The common case, checked on bytes: nothing to escape.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || ($0 >= 0x80 && (asciiOnly || $0 == 0xC2 || $0 == 0xE2)) }) {
            return text
        }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if needsEscape(scalar, asciiOnly: asciiOnly) {
                out += scalar.value < 0x100 ? "\\x" + hex(scalar.value, width: 2) : "\\u{" + hex(scalar.value, width: 4) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Bytes from input (a header, a reply) as text for a person; invalid UTF-8 shows as U+FFFD.
    public static func escape(bytes: some Sequence<UInt8>, asciiOnly: Bool = false) -> String {
        escape(String(decoding: Array(bytes), as: UTF8.self), asciiOnly: asciiOnly)
    }

    static func needsEscape(_ s: Unicode.Scalar, asciiOnly: Bool) -> Bool {
        let v = s.value
        if v < 0x20 || v == 0x7F { return true }
        if asciiOnly { return v > 0x7E }
        if v >= 0x80 && v <= 0x9F { return true }  // C1 controls (CSI is 0x9B)
        switch v {
        case 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return true  // marks, separators, bidi overrides
        default: return false
        }
    }

    private static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
