import InternetMessage

/// Splitting a message into what travels outside the S/MIME layer and the
/// entity that is signed or encrypted (RFC 8551 3.1, RFC 5751 3.1 wrapping).
public enum Wrapping {
    /// Direct AS 1.2 / RFC 5751 3.1: the headers that stay outside a wrapped message.
    public static let routingHeaders = ["From", "To", "Cc", "Date", "Message-ID", "Subject"]

    static func isContentHeader(_ name: String) -> Bool {
        name.lowercased().hasPrefix("content-")
    }

    /// The header fields of `message` as (name, unfolded value) pairs,
    /// filtered by `keep`.
    static func headers(_ message: MIMEEntity, where keep: (String) -> Bool) -> [(name: String, value: String)] {
        message.headers.fields.filter { keep($0.name) }.map { ($0.name, $0.value) }
    }

    /// The message's exact header field bytes for the fields selected by `keep`.
    static func rawHeaderBytes(_ message: MIMEEntity, where keep: (String) -> Bool) -> [UInt8] {
        var out: [UInt8] = []
        for f in message.headers.fields where keep(f.name) {
            out.append(contentsOf: message.source[f.range])
        }
        return out
    }

    /// The message as a MIME entity of its own: its Content-* fields exactly as
    /// received (or the RFC 2045 default) and its body.
    static func contentEntity(_ message: MIMEEntity) -> [UInt8] {
        var out = rawHeaderBytes(message, where: isContentHeader)
        if out.isEmpty { out = Array("Content-Type: text/plain; charset=us-ascii\r\n".utf8) }
        out.append(contentsOf: [0x0D, 0x0A])
        out.append(contentsOf: message.bodyBytes)
        return out
    }

    /// `Content-Type: message/rfc822` around the whole message (RFC 5751 3.1).
    static func wrappedEntity(_ message: MIMEEntity) -> [UInt8] {
        let header = "Content-Type: message/rfc822\r\n\r\n".utf8
        var out: [UInt8] = []
        out.reserveCapacity(header.count + message.bytes.count)
        out.append(contentsOf: header)
        out.append(contentsOf: message.bytes)
        return out
    }

    /// Whether the message is already S/MIME signed (so it is not wrapped again).
    static func isSigned(_ entity: MIMEEntity) -> Bool {
        let ct = entity.contentType
        if ct.mimeType == "multipart/signed" { return true }
        if isPKCS7Mime(ct), ct[parameter: "smime-type"]?.lowercased() == "signed-data" { return true }
        return false
    }

    static func isPKCS7Mime(_ ct: ContentType) -> Bool {
        ct.mimeType == "application/pkcs7-mime" || ct.mimeType == "application/x-pkcs7-mime"
    }

    static func isPKCS7Signature(_ ct: ContentType) -> Bool {
        ct.mimeType == "application/pkcs7-signature" || ct.mimeType == "application/x-pkcs7-signature"
    }

    /// The message to write out, with outer headers before the new content.
    static func assemble(outer: [(name: String, value: String)], contentType: ContentType,
                         extraHeaders: [(name: String, value: String)] = [], body: [UInt8]) -> [UInt8] {
        EntityBuilder(headers: assembledHeaders(outer: outer, contentType: contentType, extraHeaders: extraHeaders), body: body)
            .serialize()
    }

    /// `assemble` with `data` as the body in base64, encoded straight after the header fields.
    static func assemble(outer: [(name: String, value: String)], contentType: ContentType,
                         extraHeaders: [(name: String, value: String)] = [], base64Body data: [UInt8]) -> [UInt8] {
        let head = EntityBuilder(headers: assembledHeaders(outer: outer, contentType: contentType, extraHeaders: extraHeaders))
            .serialize()
        return Base64.encode(data, after: head)
    }

    private static func assembledHeaders(outer: [(name: String, value: String)], contentType: ContentType,
                                         extraHeaders: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var headers = outer.filter { !isContentHeader($0.name) && $0.name.lowercased() != "mime-version" }
        headers.append(("MIME-Version", "1.0"))
        headers.append(("Content-Type", contentType.description))
        headers += extraHeaders
        return headers
    }
}
