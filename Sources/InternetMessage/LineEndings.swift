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
            let n = buf.count
            var i = 0
            while i < n {
                let b = buf[i]
                if b == 0x0D {
                    if i + 1 >= n || buf[i + 1] != 0x0A { return false }
                    i += 2
                    continue
                }
                if b == 0x0A { return false }
                i += 1
            }
            return true
        }
    }
}
