import DirectCore

/// Builds MIME entities and messages in canonical form (CRLF line endings).
public struct EntityBuilder: Sendable {
    public var headers: [(name: String, value: String)]
    /// The body as it goes on the wire (already transfer-encoded).
    public var body: [UInt8]

    public init(headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.headers = headers
        self.body = body
    }

    /// Header fields (folded, RFC 5322 2.2.3), the blank line, the body.
    public func serialize() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(body.count + headers.count * 64 + 2)
        for (name, value) in headers {
            HeaderFolding.foldedBytes(name: name, value: value, into: &out)
        }
        out.append(0x0D)
        out.append(0x0A)
        out.append(contentsOf: body)
        return out
    }

    /// An entity whose body is `data` in base64 (RFC 2045 6.8).
    public static func base64(contentType: ContentType, extraHeaders: [(name: String, value: String)] = [], data: some Collection<UInt8>) -> EntityBuilder {
        EntityBuilder(
            headers: [("Content-Type", contentType.description), ("Content-Transfer-Encoding", "base64")] + extraHeaders,
            body: Base64.encode(data))
    }
}

/// Multipart bodies (RFC 2046 5.1).
public enum Multipart {
    /// A fresh boundary: 40 random characters from the RFC 2046 bchars set,
    /// well under the 70-character limit, never found in base64 or QP output
    /// because it contains "=_".
    public static func makeBoundary<R: RandomNumberGenerator>(using rng: inout R) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var s = Array("----=_Part_".utf8)
        // 28 characters from 4 random words: 7 characters of 62 per word (62^7 < 2^42).
        for _ in 0..<4 {
            var r = rng.next()
            for _ in 0..<7 {
                s.append(alphabet[Int(r % 62)])
                r /= 62
            }
        }
        return String(decoding: s, as: UTF8.self)
    }

    public static func makeBoundary() -> String {
        var rng = SecureRandomGenerator()  // one system call for the four words
        return makeBoundary(using: &rng)
    }

    /// Joins `parts` (each a complete entity) with `boundary`. The CRLF before
    /// each delimiter belongs to the delimiter (RFC 2046 5.1.1), so each part's
    /// bytes are kept exactly.
    public static func body(parts: [[UInt8]], boundary: String, preamble: String? = nil) -> [UInt8] {
        let b = Array(boundary.utf8)
        var out = [UInt8]()
        out.reserveCapacity(parts.reduce(0) { $0 + $1.count } + (b.count + 8) * (parts.count + 1) + 100)
        if let preamble {
            out.append(contentsOf: preamble.utf8)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        for part in parts {
            out.append(contentsOf: [0x2D, 0x2D])
            out.append(contentsOf: b)
            out.append(contentsOf: [0x0D, 0x0A])
            out.append(contentsOf: part)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        out.append(contentsOf: [0x2D, 0x2D])
        out.append(contentsOf: b)
        out.append(contentsOf: [0x2D, 0x2D, 0x0D, 0x0A])
        return out
    }
}
