import Foundation

/// RFC 2047 encoded words in header values.
public enum EncodedWord {
    /// RFC 2047 2: an encoded word is at most 75 characters.
    static let maxEncodedWordLength = 75

    /// Decodes every encoded word in `value`. White space between two adjacent
    /// encoded words is dropped (RFC 2047 6.2); words in an unknown charset or
    /// with invalid encoding are left as they are.
    public static func decode(_ value: String) -> String {
        guard value.contains("=?") else { return value }
        var result = ""
        var rest = Substring(value)
        var lastWasEncoded = false
        var pendingWhitespace = ""
        while !rest.isEmpty {
            if rest.hasPrefix("=?"), let (decoded, consumed) = decodeWord(rest) {
                if !lastWasEncoded { result += pendingWhitespace }
                pendingWhitespace = ""
                result += decoded
                rest = rest.dropFirst(consumed)
                lastWasEncoded = true
                continue
            }
            let ch = rest.first!
            if ch == " " || ch == "\t" {
                pendingWhitespace.append(ch)
            } else {
                result += pendingWhitespace
                pendingWhitespace = ""
                result.append(ch)
                lastWasEncoded = false
            }
            rest = rest.dropFirst()
        }
        return result + pendingWhitespace
    }

    private static func decodeWord(_ s: Substring) -> (String, Int)? {
        // =?charset?E?text?=
        let utf8 = Array(s.utf8.prefix(512))
        guard utf8.count >= 7 else { return nil }
        var i = 2
        while i < utf8.count && utf8[i] != UInt8(ascii: "?") { i += 1 }
        guard i + 3 < utf8.count, utf8[i + 2] == UInt8(ascii: "?") else { return nil }
        var charset = String(decoding: utf8[2..<i], as: UTF8.self).lowercased()
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }  // RFC 2231 language
        let encoding = utf8[i + 1] | 0x20
        let textStart = i + 3
        var j = textStart
        while j + 1 < utf8.count && !(utf8[j] == UInt8(ascii: "?") && utf8[j + 1] == UInt8(ascii: "=")) {
            if utf8[j] == 0x20 || utf8[j] == 0x09 { return nil }
            j += 1
        }
        guard j + 1 < utf8.count else { return nil }
        let text = utf8[textStart..<j]
        let bytes: [UInt8]
        switch encoding {
        case UInt8(ascii: "b"):
            guard let b = try? Base64.decode(text) else { return nil }
            bytes = b
        case UInt8(ascii: "q"):
            var out = [UInt8]()
            var k = text.startIndex
            while k < text.endIndex {
                let c = text[k]
                if c == UInt8(ascii: "_") {
                    out.append(0x20)
                } else if c == UInt8(ascii: "="), k + 2 < text.endIndex,
                    let v = UInt8(String(decoding: text[(k + 1)...(k + 2)], as: UTF8.self), radix: 16)
                {
                    out.append(v)
                    k += 2
                } else {
                    out.append(c)
                }
                k += 1
            }
            bytes = out
        default:
            return nil
        }
        guard let decoded = decodeCharset(bytes, charset: charset) else { return nil }
        let consumed = String(decoding: utf8[0..<(j + 2)], as: UTF8.self).count
        return (decoded, consumed)
    }

    static func decodeCharset(_ bytes: [UInt8], charset: String) -> String? {
        switch charset {
        case "utf-8", "utf8", "us-ascii", "ascii":
            return String(validating: bytes, as: UTF8.self)
        case "iso-8859-1", "latin1", "iso_8859-1", "windows-1252", "cp1252":
            // Latin-1 maps bytes to the same code points; for windows-1252 the
            // 0x80-0x9F range differs only in rarely used punctuation.
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        default:
            return nil
        }
    }

    /// Encodes `text` for a header value: unchanged when it is printable
    /// ASCII, else as UTF-8 "B" encoded words of at most 75 characters each,
    /// separated by a space (the folder may break between them).
    public static func encodeIfNeeded(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        let prefix = "=?UTF-8?B?", suffix = "?="
        // 75 - 12 = 63 base64 characters -> 45 bytes of UTF-8 per word (a multiple of 3).
        let maxBytes = (maxEncodedWordLength - prefix.count - suffix.count) / 4 * 3
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let enc = Array(String(scalar).utf8)
            if chunk.count + enc.count > maxBytes {
                words.append(prefix + Base64.encodeString(chunk) + suffix)
                chunk = []
            }
            chunk += enc
        }
        if !chunk.isEmpty { words.append(prefix + Base64.encodeString(chunk) + suffix) }
        return words.joined(separator: " ")
    }
}
