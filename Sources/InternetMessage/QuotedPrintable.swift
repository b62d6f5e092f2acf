/// Quoted-printable (RFC 2045 6.7).
public enum QuotedPrintable {
    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// Decodes quoted-printable. Soft line breaks are removed, trailing
    /// whitespace on each line is dropped (RFC 2045 6.7 rule 3), and a `=` that
    /// starts no valid escape is kept as it is (the robustness rule in 6.7).
    public static func decode<C: Collection>(_ text: C) -> [UInt8] where C.Element == UInt8 {
        let src = Array(text)
        var out = [UInt8]()
        out.reserveCapacity(src.count)
        var i = 0
        let n = src.count
        // Rule 3 drops trailing white space that was literal on the line;
        // an encoded =20 or =09 is content and is kept.
        var lineStartInOut = 0
        while i < n {
            let c = src[i]
            if c == 0x3D {  // '='
                // Soft line break: '=' then optional whitespace then line end.
                var j = i + 1
                while j < n && (src[j] == 0x20 || src[j] == 0x09) { j += 1 }
                if j < n && (src[j] == 0x0D || src[j] == 0x0A) {
                    if src[j] == 0x0D && j + 1 < n && src[j + 1] == 0x0A { j += 1 }
                    i = j + 1
                    lineStartInOut = out.count
                    continue
                }
                if j == n {  // '=' at the very end: soft break before EOF
                    i = n
                    continue
                }
                if i + 2 < n, let h = hexValue(src[i + 1]), let l = hexValue(src[i + 2]) {
                    out.append(h << 4 | l)
                    lineStartInOut = max(lineStartInOut, h << 4 | l == 0x20 || h << 4 | l == 0x09 ? out.count : lineStartInOut)
                    i += 3
                    continue
                }
                out.append(c)
                i += 1
            } else if c == 0x0D || c == 0x0A {
                // Hard line break: drop trailing whitespace of the line.
                while out.count > lineStartInOut, let last = out.last, last == 0x20 || last == 0x09 {
                    out.removeLast()
                }
                out.append(0x0D)
                out.append(0x0A)
                if c == 0x0D && i + 1 < n && src[i + 1] == 0x0A { i += 1 }
                i += 1
                lineStartInOut = out.count
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    /// Encodes `bytes` (CRLF line breaks are kept as hard breaks) with lines of
    /// at most 76 characters.
    public static func encode<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        let src = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity(src.count + src.count / 8)
        var col = 0
        var i = 0
        let n = src.count
        func emit(_ chunk: [UInt8]) {
            if col + chunk.count > 75 {
                out.append(contentsOf: [0x3D, 0x0D, 0x0A])
                col = 0
            }
            out.append(contentsOf: chunk)
            col += chunk.count
        }
        while i < n {
            let c = src[i]
            if c == 0x0D && i + 1 < n && src[i + 1] == 0x0A {
                out.append(contentsOf: [0x0D, 0x0A])
                col = 0
                i += 2
                continue
            }
            let nextIsBreak = i + 1 == n || (src[i + 1] == 0x0D && i + 2 < n && src[i + 2] == 0x0A)
            let literal = (c >= 33 && c <= 126 && c != 0x3D) || ((c == 0x20 || c == 0x09) && !nextIsBreak)
            if literal {
                emit([c])
            } else {
                emit([0x3D, hex[Int(c >> 4)], hex[Int(c & 15)]])
            }
            i += 1
        }
        return out
    }
}
