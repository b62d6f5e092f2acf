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
    public static func isCanonical(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return true }
            let n = buf.count
            // memchr is vectorised; a message has one line break per ~70 bytes.
            var i = 0
            while i < n, let p = memchr(base + i, 0x0A, n - i) {
                let at = UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self) - base
                if at == 0 || base[at - 1] != 0x0D { return false }
                i = at + 1
            }
            i = 0
            while i < n, let p = memchr(base + i, 0x0D, n - i) {
                let at = UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self) - base
                if at + 1 >= n || base[at + 1] != 0x0A { return false }
                i = at + 2
            }
            return true
        }
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
