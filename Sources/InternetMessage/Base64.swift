/// Base64 (RFC 2045 6.8) with MIME line wrapping.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let decodeTable: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        // Whitespace that MIME places inside base64 bodies is skipped.
        for c: UInt8 in [0x20, 0x09, 0x0D, 0x0A] { t[Int(c)] = 0xFE }
        t[Int(UInt8(ascii: "="))] = 0xFD
        return t
    }()

    /// Encodes `bytes`; with `lineLength` > 0 inserts CRLF every `lineLength`
    /// characters (RFC 2045 6.8: at most 76) and after the last line.
    public static func encode<C: Collection>(_ bytes: C, lineLength: Int = 76) -> [UInt8] where C.Element == UInt8 {
        let input = Array(bytes)
        let encodedLength = (input.count + 2) / 3 * 4
        let lines = lineLength > 0 ? (encodedLength + lineLength - 1) / lineLength : 0
        var out = [UInt8](repeating: 0, count: encodedLength + lines * 2)
        alphabet.withUnsafeBufferPointer { abc in
            input.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    var o = 0
                    var col = 0
                    var i = 0
                    let n = src.count
                    @inline(__always) func put(_ c: UInt8) {
                        dst[o] = c
                        o += 1
                        col += 1
                        if lineLength > 0 && col == lineLength {
                            dst[o] = 0x0D
                            dst[o + 1] = 0x0A
                            o += 2
                            col = 0
                        }
                    }
                    while i + 3 <= n {
                        let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8 | UInt32(src[i + 2])
                        put(abc[Int((v >> 18) & 63)])
                        put(abc[Int((v >> 12) & 63)])
                        put(abc[Int((v >> 6) & 63)])
                        put(abc[Int(v & 63)])
                        i += 3
                    }
                    let rest = n - i
                    if rest > 0 {
                        let v = UInt32(src[i]) << 16 | (rest == 2 ? UInt32(src[i + 1]) << 8 : 0)
                        put(abc[Int((v >> 18) & 63)])
                        put(abc[Int((v >> 12) & 63)])
                        put(rest == 2 ? abc[Int((v >> 6) & 63)] : UInt8(ascii: "="))
                        put(UInt8(ascii: "="))
                    }
                    if lineLength > 0 && col > 0 {
                        dst[o] = 0x0D
                        dst[o + 1] = 0x0A
                        o += 2
                    }
                    precondition(o == dst.count)
                }
            }
        }
        return out
    }

    public static func encodeString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: encode(bytes, lineLength: 0), as: UTF8.self)
    }

    /// Decodes base64, skipping whitespace and line breaks. Throws
    /// `MessageError.invalidBase64` at the first byte outside the alphabet, or
    /// on data after the padding.
    public static func decode<C: Collection>(_ text: C) throws -> [UInt8] where C.Element == UInt8 {
        let input = Array(text)
        var out = [UInt8]()
        out.reserveCapacity(input.count / 4 * 3 + 3)
        var failure: Int? = nil
        decodeTable.withUnsafeBufferPointer { table in
            input.withUnsafeBufferPointer { src in
                var acc: UInt32 = 0
                var count = 0
                var padding = 0
                for i in 0..<src.count {
                    let d = table[Int(src[i])]
                    if d < 64 {
                        if padding > 0 { failure = i; return }
                        acc = acc << 6 | UInt32(d)
                        count += 1
                        if count == 4 {
                            out.append(UInt8(truncatingIfNeeded: acc >> 16))
                            out.append(UInt8(truncatingIfNeeded: acc >> 8))
                            out.append(UInt8(truncatingIfNeeded: acc))
                            acc = 0
                            count = 0
                        }
                    } else if d == 0xFE {
                        continue
                    } else if d == 0xFD {
                        padding += 1
                        if padding > 2 || count < 2 { failure = i; return }
                    } else {
                        failure = i
                        return
                    }
                }
                switch count {
                case 0: break
                case 2: out.append(UInt8(truncatingIfNeeded: acc >> 4))
                case 3:
                    out.append(UInt8(truncatingIfNeeded: acc >> 10))
                    out.append(UInt8(truncatingIfNeeded: acc >> 2))
                default: failure = src.count
                }
            }
        }
        if let failure { throw MessageError.invalidBase64(offset: failure) }
        return out
    }
}
