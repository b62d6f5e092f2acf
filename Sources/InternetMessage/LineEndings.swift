#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// CRLF canonicalisation (RFC 5322 2.1, RFC 8551 3.1.1: S/MIME content is
/// signed and verified in canonical form with CRLF line endings).
public enum LineEndings {
    /// Returns `bytes` with every bare LF and bare CR turned into CRLF.
    /// Input that is already canonical is returned without copying.
    public static func canonicalize(_ bytes: [UInt8]) -> [UInt8] {
        if isCanonical(bytes) { return bytes }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + bytes.count / 32 + 2)
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == 0x0D {
                out.append(0x0D)
                out.append(0x0A)
                if i + 1 < n && bytes[i + 1] == 0x0A { i += 1 }
            } else if b == 0x0A {
                out.append(0x0D)
                out.append(0x0A)
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }

    /// True when every CR is followed by LF and every LF preceded by CR.
    ///
    /// Branch-free over 8-byte words: with `cr` and `lf` marking the CR and LF
    /// bytes of a word, the text is canonical exactly when every word's `lf`
    /// equals its `cr` moved one byte on (plus the CR carried from the end
    /// of the word before).
    public static func isCanonical(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return true }
            let raw = UnsafeRawPointer(base)
            let n = buf.count
            var carry: UInt64 = 0  // 0x80 when the previous byte was CR
            var mismatch: UInt64 = 0
            var i = 0
            // 32 bytes at a time: each byte is LF exactly when the byte
            // before it (the same load, one byte earlier) is CR.
            if n >= 33 {
                if base[0] == 0x0A { return false }
                i = 1
                let lf = SIMD32<UInt8>(repeating: 0x0A), cr = SIMD32<UInt8>(repeating: 0x0D)
                var bad = SIMDMask<SIMD32<Int8>>(repeating: false)
                while i + 32 <= n {
                    let here = raw.loadUnaligned(fromByteOffset: i, as: SIMD32<UInt8>.self)
                    let before = raw.loadUnaligned(fromByteOffset: i - 1, as: SIMD32<UInt8>.self)
                    bad .|= (here .== lf) .^ (before .== cr)
                    i += 32
                }
                if any(bad) { return false }
                carry = base[i - 1] == 0x0D ? 0x80 : 0
            }
            while i + 8 <= n {
                let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let cr = bytesEqual(w, 0x0D), lf = bytesEqual(w, 0x0A)
                mismatch |= lf ^ (cr << 8 | carry)
                carry = cr >> 56
                i += 8
            }
            if mismatch != 0 { return false }
            var previousCR = carry != 0
            while i < n {
                let b = base[i]
                if (b == 0x0A) != previousCR { return false }
                previousCR = b == 0x0D
                i += 1
            }
            return !previousCR
        }
    }

    /// The high bit of each byte of the result is set exactly where the byte
    /// of `w` equals `byte` (exact: no false positives from borrows).
    @inline(__always) static func bytesEqual(_ w: UInt64, _ byte: UInt8) -> UInt64 {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        let v = w ^ (0x0101_0101_0101_0101 &* UInt64(byte))
        return ~((v & low7) &+ low7 | v | low7)
    }
}

extension Array where Element == UInt8 {
    /// The index of the first `byte` in `from..<to`, or `to` (memchr: vectorised).
    func firstIndex(of byte: UInt8, from: Int, to: Int) -> Int {
        let from = Swift.max(from, 0), to = Swift.min(to, count)
        guard from < to else { return to }
        return withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress, let p = memchr(base + from, Int32(byte), to - from) else { return to }
            return UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self) - base
        }
    }
}
