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

    /// Four 256-entry tables: the sextet of a character already shifted to
    /// its place in a 24-bit group (table k: shift 18 - 6k), or the high bit
    /// for anything outside the alphabet, so a whole group decodes with four
    /// lookups and one test.
    private static let shiftedDecodeTables: [UInt32] = {
        var t = [UInt32](repeating: 0x8000_0000, count: 1024)
        for (i, c) in alphabet.enumerated() {
            for k in 0..<4 { t[k * 256 + Int(c)] = UInt32(i) << (18 - 6 * k) }
        }
        return t
    }()

    /// For every 12-bit value, its two characters: a 24-bit group encodes
    /// with two lookups.
    private static let pairEncodeTable: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 8192)
        for v in 0..<4096 {
            t[2 * v] = alphabet[v >> 6]
            t[2 * v + 1] = alphabet[v & 63]
        }
        return t
    }()

    /// The same pairs as 16-bit values, first character in the low byte, so
    /// that two groups (eight characters) are written with one store.
    private static let pairEncodeTable16: [UInt16] = (0..<4096).map {
        UInt16(alphabet[$0 >> 6]) | UInt16(alphabet[$0 & 63]) << 8
    }

    /// Encodes `bytes`; with `lineLength` > 0 inserts CRLF every `lineLength`
    /// characters (RFC 2045 6.8: at most 76) and after the last line.
    /// With `prefix`, the result is `prefix` followed by the encoding, built
    /// in one buffer (a MIME entity's header fields, then its base64 body).
    public static func encode<C: Collection>(_ bytes: C, lineLength: Int = 76, after prefix: [UInt8] = []) -> [UInt8]
    where C.Element == UInt8 {
        if let out = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0, lineLength: lineLength, prefix: prefix) }) {
            return out
        }
        return Array(bytes).withUnsafeBufferPointer { encode(buffer: $0, lineLength: lineLength, prefix: prefix) }
    }

    private static func encode(buffer src: UnsafeBufferPointer<UInt8>, lineLength: Int, prefix: [UInt8]) -> [UInt8] {
        let n = src.count
        let encodedLength = (n + 2) / 3 * 4
        let lines = lineLength > 0 ? (encodedLength + lineLength - 1) / lineLength : 0
        // Whole groups per line when the line length allows (76 does: 19 groups).
        let groupsPerLine = lineLength > 0 && lineLength % 4 == 0 ? lineLength / 4 : 0
        return alphabet.withUnsafeBufferPointer { abc in
          pairEncodeTable.withUnsafeBufferPointer { pairs in
          pairEncodeTable16.withUnsafeBufferPointer { pairs16 in
            [UInt8](unsafeUninitializedCapacity: prefix.count + encodedLength + lines * 2) { dst, initialized in
                var o = prefix.count
                _ = UnsafeMutableBufferPointer(rebasing: dst[..<o]).initialize(from: prefix)
                var col = 0
                var i = 0
                @inline(__always) func group(_ v: UInt32) {
                    let hi = Int(v >> 12) &* 2, lo = Int(v & 0xFFF) &* 2
                    dst[o] = pairs[hi]
                    dst[o + 1] = pairs[hi + 1]
                    dst[o + 2] = pairs[lo]
                    dst[o + 3] = pairs[lo + 1]
                    o += 4
                }
                @inline(__always) func lineBreak() {
                    dst[o] = 0x0D
                    dst[o + 1] = 0x0A
                    o += 2
                }
                @inline(__always) func put(_ c: UInt8) {
                    dst[o] = c
                    o += 1
                    col += 1
                    if lineLength > 0 && col == lineLength {
                        lineBreak()
                        col = 0
                    }
                }
                if groupsPerLine > 0, let from = UnsafeRawPointer(src.baseAddress), let to = UnsafeMutableRawPointer(dst.baseAddress),
                   let table = pairs16.baseAddress
                {
                    // Fast path: full lines of whole groups, two groups (six
                    // bytes, read as eight) per step while eight can be read.
                    let lineInput = groupsPerLine * 3
                    while i + lineInput <= n {
                        var k = 0
                        while k + 2 <= groupsPerLine && i + 8 <= n {
                            let w = UInt64(bigEndian: from.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                            let g1 = Int(truncatingIfNeeded: w >> 40) & 0xFF_FFFF
                            let g2 = Int(truncatingIfNeeded: w >> 16) & 0xFF_FFFF
                            let chars = UInt64(table[g1 >> 12]) | UInt64(table[g1 & 0xFFF]) << 16
                                | UInt64(table[g2 >> 12]) << 32 | UInt64(table[g2 & 0xFFF]) << 48
                            to.storeBytes(of: chars.littleEndian, toByteOffset: o, as: UInt64.self)
                            o += 8
                            i += 6
                            k += 2
                        }
                        while k < groupsPerLine {
                            group(UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8 | UInt32(src[i + 2]))
                            i += 3
                            k += 1
                        }
                        lineBreak()
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
                if lineLength > 0 && col > 0 { lineBreak() }
                initialized = o
            }
          }
          }
        }
    }

    public static func encodeString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: encode(bytes, lineLength: 0), as: UTF8.self)
    }

    /// Decodes base64, skipping whitespace and line breaks. Throws
    /// `MessageError.invalidBase64` at the first byte outside the alphabet, or
    /// on data after the padding.
    public static func decode<C: Collection>(_ text: C) throws -> [UInt8] where C.Element == UInt8 {
        if let result = try text.withContiguousStorageIfAvailable({ try decode(buffer: $0) }) { return result }
        return try Array(text).withUnsafeBufferPointer { try decode(buffer: $0) }
    }

    private static func decode(buffer src: UnsafeBufferPointer<UInt8>) throws -> [UInt8] {
        var failure: Int? = nil
        let out = try decodeTable.withUnsafeBufferPointer { table in
          try shiftedDecodeTables.withUnsafeBufferPointer { shifted in
            // Eight bytes of room past the end: the fast path stores eight bytes for six.
            try [UInt8](unsafeUninitializedCapacity: src.count / 4 * 3 + 3 + 8) { dst, initialized in
                var o = 0
                var acc: UInt32 = 0
                var count = 0
                var padding = 0
                var i = 0
                let n = src.count
                while i < n {
                    // Fast path: whole groups of four alphabet characters (a
                    // MIME line is 19 of them), with raw pointers.
                    if count == 0 && padding == 0, let sp = src.baseAddress, let tp = shifted.baseAddress,
                        let dp = dst.baseAddress
                    {
                        let out = UnsafeMutableRawPointer(dp)
                        while i + 4 <= n {
                            // Two groups at a time while both are in the alphabet.
                            while i + 8 <= n {
                                let a = tp[Int(sp[i])] | tp[256 + Int(sp[i + 1])] | tp[512 + Int(sp[i + 2])]
                                    | tp[768 + Int(sp[i + 3])]
                                let b = tp[Int(sp[i + 4])] | tp[256 + Int(sp[i + 5])] | tp[512 + Int(sp[i + 6])]
                                    | tp[768 + Int(sp[i + 7])]
                                if (a | b) & 0x8000_0000 != 0 { break }
                                out.storeBytes(of: (UInt64(a) << 40 | UInt64(b) << 16).bigEndian, toByteOffset: o, as: UInt64.self)
                                o += 6
                                i += 8
                            }
                            if i + 4 > n { break }
                            let v = tp[Int(sp[i])] | tp[256 + Int(sp[i + 1])] | tp[512 + Int(sp[i + 2])]
                                | tp[768 + Int(sp[i + 3])]
                            if v & 0x8000_0000 != 0 {
                                // A MIME line break between groups: step over it and stay here.
                                if sp[i] == 0x0D && sp[i + 1] == 0x0A {
                                    i += 2
                                    continue
                                }
                                break
                            }
                            dp[o] = UInt8(truncatingIfNeeded: v >> 16)
                            dp[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                            dp[o + 2] = UInt8(truncatingIfNeeded: v)
                            o += 3
                            i += 4
                        }
                        if i >= n { break }
                    }
                    let d = table[Int(src[i])]
                    if d < 64 {
                        if padding > 0 { failure = i; break }
                        acc = acc << 6 | UInt32(d)
                        count += 1
                        if count == 4 {
                            dst[o] = UInt8(truncatingIfNeeded: acc >> 16)
                            dst[o + 1] = UInt8(truncatingIfNeeded: acc >> 8)
                            dst[o + 2] = UInt8(truncatingIfNeeded: acc)
                            o += 3
                            acc = 0
                            count = 0
                        }
                    } else if d == 0xFD {
                        padding += 1
                        if padding > 2 || count < 2 { failure = i; break }
                    } else if d != 0xFE {
                        failure = i
                        break
                    }
                    i += 1
                }
                if failure == nil {
                    switch count {
                    case 0: break
                    case 2:
                        dst[o] = UInt8(truncatingIfNeeded: acc >> 4)
                        o += 1
                    case 3:
                        dst[o] = UInt8(truncatingIfNeeded: acc >> 10)
                        dst[o + 1] = UInt8(truncatingIfNeeded: acc >> 2)
                        o += 2
                    default: failure = n
                    }
                }
                initialized = o
            }
          }
        }
        if let failure { throw MessageError.invalidBase64(offset: failure) }
        return out
    }
}
