import DirectCore
import InternetMessage

/// How values go out in IMAP responses (RFC 9051 4.3, 9): a quoted string
/// when it can be one, a literal otherwise; NIL for nothing.
public enum IMAPString {
    /// A quoted string for short printable text without CR, LF, NUL or 8-bit bytes; else a literal.
    public static func string(_ s: String) -> [UInt8] { string(Array(s.utf8)) }

    public static func string(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.count <= 1024, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            var out: [UInt8] = [0x22]
            for b in bytes {
                if b == 0x22 || b == 0x5C { out.append(0x5C) }
                out.append(b)
            }
            out.append(0x22)
            return out
        }
        return literal(bytes)
    }

    public static func literal(_ bytes: some Collection<UInt8>) -> [UInt8] {
        Array("{\(bytes.count)}\r\n".utf8) + bytes
    }

    public static func nstring(_ s: String?) -> [UInt8] { s.map(string) ?? Array("NIL".utf8) }

    /// An astring: an atom when the text is one (INBOX, Sent), else as `string`.
    public static func astring(_ s: String) -> [UInt8] {
        let bytes = Array(s.utf8)
        if !bytes.isEmpty, bytes.count <= 256, bytes.allSatisfy(IMAPSyntax.isAStringChar), s.uppercased() != "NIL" { return bytes }
        return string(bytes)
    }
}

/// Mailbox names as IMAP4rev1 clients write them (RFC 3501 5.1.3): UTF-16 in
/// a modified base64 between "&" and "-", "&-" for "&". IMAP4rev2 and
/// UTF8=ACCEPT clients use UTF-8 instead (RFC 9051 5.1).
public enum ModifiedUTF7 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    public static func encode(_ name: String) -> String {
        var out = ""
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var bytes: [UInt8] = []
            for u in pending { bytes += [UInt8(u >> 8), UInt8(u & 0xFF)] }
            var text = "&"
            var i = 0
            while i < bytes.count {
                let chunk = bytes[i..<min(i + 3, bytes.count)]
                let n = chunk.enumerated().reduce(0) { $0 | Int($1.element) << (16 - 8 * $1.offset) }
                let chars = (chunk.count * 8 + 5) / 6
                for k in 0..<chars { text.append(Character(UnicodeScalar(alphabet[(n >> (18 - 6 * k)) & 63]))) }
                i += 3
            }
            out += text + "-"
            pending = []
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7E {
                flush()
                out += scalar == "&" ? "&-" : String(scalar)
            } else {
                pending += Array(String(scalar).utf16)
            }
        }
        flush()
        return out
    }

    /// nil when `text` is not valid modified UTF-7 (a bad run, or a run that encodes plain ASCII).
    public static func decode(_ text: String) -> String? {
        var out = ""
        var chars = Array(text.utf8)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            guard c == 0x26 else {
                guard c >= 0x20 && c <= 0x7E else { return nil }
                out.append(Character(UnicodeScalar(c)))
                continue
            }
            guard let end = chars.firstIndex(of: 0x2D) else { return nil }
            let run = chars[..<end]
            chars = chars[(end + 1)...]
            if run.isEmpty {
                out += "&"
                continue
            }
            var bits = 0, acc = 0
            var bytes: [UInt8] = []
            for r in run {
                guard let v = alphabet.firstIndex(of: r) else { return nil }
                acc = (acc << 6) | v
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    bytes.append(UInt8((acc >> bits) & 0xFF))
                }
            }
            // Leftover bits must be zero padding; UTF-16 needs whole code units.
            guard acc & ((1 << bits) - 1) == 0, bytes.count % 2 == 0 else { return nil }
            let units = stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
            guard let decoded = String(validating: units, as: UTF16.self) else { return nil }
            // RFC 3501 5.1.3: printable ASCII is never encoded.
            guard !decoded.unicodeScalars.contains(where: { $0.value >= 0x20 && $0.value <= 0x7E }) else { return nil }
            out += decoded
        }
        return out
    }
}

/// ENVELOPE and BODYSTRUCTURE (RFC 9051 7.5.2) of a parsed message.
public enum MessageStructure {
    /// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`; sender and reply-to default to from.
    public static func envelope(_ headers: HeaderFields) -> [UInt8] {
        func value(_ name: String) -> [UInt8] { IMAPString.nstring(headers[name]?.trimmingWhitespace()) }
        let from = addresses(headers["From"])
        var out: [UInt8] = [0x28]
        out += value("Date") + [0x20] + value("Subject") + [0x20]
        out += from + [0x20]
        out += (headers["Sender"] != nil ? addresses(headers["Sender"]) : from) + [0x20]
        out += (headers["Reply-To"] != nil ? addresses(headers["Reply-To"]) : from) + [0x20]
        out += addresses(headers["To"]) + [0x20] + addresses(headers["Cc"]) + [0x20] + addresses(headers["Bcc"]) + [0x20]
        out += value("In-Reply-To") + [0x20] + value("Message-ID")
        out.append(0x29)
        return out
    }

    /// An address list as `((name adl mailbox host) ...)`, or NIL.
    static func addresses(_ value: String?) -> [UInt8] {
        guard let value else { return Array("NIL".utf8) }
        let list = mailboxes(value)
        guard !list.isEmpty else { return Array("NIL".utf8) }
        var out: [UInt8] = [0x28]
        for m in list {
            let at = m.address.lastIndex(of: "@")
            let local = at.map { String(m.address[..<$0]) } ?? m.address
            let host = at.map { String(m.address[m.address.index(after: $0)...]) }
            out += [0x28] + IMAPString.nstring(m.name) + Array(" NIL ".utf8) + IMAPString.string(local) + [0x20] + IMAPString.nstring(host) + [0x29]
        }
        out.append(0x29)
        return out
    }

    /// The mailboxes of an address list with their display names (RFC 5322 3.4), at most 1000.
    static func mailboxes(_ value: String) -> [(name: String?, address: String)] {
        var items: [String] = []
        var current = ""
        var quoted = false, angle = false, comment = 0
        for c in value {
            if quoted {
                current.append(c)
                if c == "\"" { quoted = false }
                continue
            }
            switch c {
            case "\"": quoted = true; current.append(c)
            case "(": comment += 1
            case ")": comment = max(0, comment - 1)
            case "<" where comment == 0: angle = true; current.append(c)
            case ">" where comment == 0: angle = false; current.append(c)
            case "," where comment == 0 && !angle:
                items.append(current)
                current = ""
            case ":" where comment == 0 && !angle:
                // A group's name: its members follow.
                current = ""
            case ";" where comment == 0 && !angle:
                items.append(current)
                current = ""
            default: if comment == 0 { current.append(c) }
            }
            if items.count >= 1000 { break }
        }
        items.append(current)
        return items.compactMap { item in
            let t = item.trimmingWhitespace()
            guard !t.isEmpty else { return nil }
            if let open = t.lastIndex(of: "<"), let close = t.lastIndex(of: ">"), open < close {
                var name = String(t[..<open]).trimmingWhitespace()
                if name.hasPrefix("\"") && name.hasSuffix("\"") && name.count >= 2 {
                    name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
                }
                let address = String(t[t.index(after: open)..<close]).trimmingWhitespace()
                return (name.isEmpty ? nil : EncodedWord.decode(name), address)
            }
            return (nil, t)
        }
    }

    /// BODYSTRUCTURE (`extensible`) or BODY of an entity.
    public static func bodyStructure(_ entity: MIMEEntity, extensible: Bool) -> [UInt8] {
        var depth = 0
        return structure(entity, extensible: extensible, depth: &depth)
    }

    private static func structure(_ e: MIMEEntity, extensible: Bool, depth: inout Int) -> [UInt8] {
        depth += 1
        defer { depth -= 1 }
        let ct = e.contentType
        var out: [UInt8] = [0x28]
        if ct.isMultipart && !e.parts.isEmpty && depth < 32 {
            for p in e.parts { out += structure(p, extensible: extensible, depth: &depth) }
            out += [0x20] + IMAPString.string(ct.subtype.uppercased())
            if extensible {
                // RFC 9051 7.5.2 body-ext-mpart: parameters, disposition, language, location.
                out += [0x20] + parameters(ct.parameters) + [0x20] + disposition(e) + Array(" NIL NIL".utf8)
            }
            out.append(0x29)
            return out
        }
        let body = e.bodyBytes
        out += IMAPString.string(ct.type.uppercased()) + [0x20] + IMAPString.string(ct.subtype.uppercased()) + [0x20]
        out += parameters(ct.parameters) + [0x20]
        out += IMAPString.nstring(e.headers["Content-ID"]?.trimmingWhitespace()) + [0x20]
        out += IMAPString.nstring(e.headers["Content-Description"]?.trimmingWhitespace()) + [0x20]
        out += IMAPString.string(e.contentTransferEncoding.uppercased()) + [0x20]
        out += Array("\(body.count)".utf8)
        if ct.mimeType == "message/rfc822", let inner = try? MIMEEntity(parsing: Array(body)), depth < 32 {
            out += [0x20] + envelope(inner.headers) + [0x20] + structure(inner, extensible: extensible, depth: &depth) + [0x20] + Array("\(lines(body))".utf8)
        } else if ct.type == "text" {
            out += Array(" \(lines(body))".utf8)
        }
        // RFC 9051 7.5.2 body-ext-1part: MD5, disposition (how clients list attachments), language, location.
        if extensible { out += Array(" NIL ".utf8) + disposition(e) + Array(" NIL NIL".utf8) }
        out.append(0x29)
        return out
    }

    /// body-fld-dsp: `("attachment" ("FILENAME" "referral.pdf"))`, or NIL.
    static func disposition(_ e: MIMEEntity) -> [UInt8] {
        guard let d = e.contentDisposition else { return Array("NIL".utf8) }
        return [0x28] + IMAPString.string(d.type.uppercased()) + [0x20] + parameters(d.parameters) + [0x29]
    }

    static func parameters(_ params: [(name: String, value: String)]) -> [UInt8] {
        guard !params.isEmpty else { return Array("NIL".utf8) }
        var out: [UInt8] = [0x28]
        for (i, p) in params.prefix(100).enumerated() {
            if i > 0 { out.append(0x20) }
            out += IMAPString.string(p.name.uppercased()) + [0x20] + IMAPString.string(p.value)
        }
        out.append(0x29)
        return out
    }

    static func lines(_ body: ArraySlice<UInt8>) -> Int {
        body.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } + (body.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
    }
}
