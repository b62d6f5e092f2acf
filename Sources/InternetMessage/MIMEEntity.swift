/// A MIME entity (RFC 2045 2.4) parsed from bytes, keeping the exact byte
/// ranges of its header section, its body and every part. All entities of one
/// message share the same byte array, so slicing costs nothing.
public struct MIMEEntity: Sendable {
    /// The whole message's bytes (shared by every entity parsed from it).
    public let source: [UInt8]
    /// This entity: header section + blank line + body.
    public let range: Range<Int>
    /// The header section, including the line ending of its last field.
    public let headerRange: Range<Int>
    /// The body, after the blank line that ends the header section.
    public let bodyRange: Range<Int>
    public let headers: HeaderFields
    public let contentType: ContentType
    /// For multipart entities, the parts in order (RFC 2046 5.1).
    public let parts: [MIMEEntity]

    /// The exact bytes of the entity.
    public var bytes: ArraySlice<UInt8> { source[range] }
    public var headerBytes: ArraySlice<UInt8> { source[headerRange] }
    public var bodyBytes: ArraySlice<UInt8> { source[bodyRange] }

    public var contentTransferEncoding: String {
        (headers["Content-Transfer-Encoding"] ?? "7bit").trimmingCharacters(in: " \t").lowercased()
    }

    /// RFC 2183: inline or attachment, with its parameters (filename); nil when absent or unreadable.
    public var contentDisposition: ContentDisposition? {
        headers["Content-Disposition"].flatMap { try? ContentDisposition(parsing: $0) }
    }

    /// Parses a whole message or entity. Line endings may be CRLF or bare LF;
    /// ranges always refer to `bytes` as given.
    public init(parsing bytes: [UInt8], limits: MessageLimits = .default) throws {
        guard bytes.count <= limits.maxMessageBytes else {
            throw MessageError.messageTooLarge(size: bytes.count, limit: limits.maxMessageBytes)
        }
        var partCount = 0
        self = try MIMEEntity.parse(source: bytes, range: 0..<bytes.count, depth: 0, limits: limits, partCount: &partCount)
    }

    private init(
        source: [UInt8], range: Range<Int>, headerRange: Range<Int>, bodyRange: Range<Int>,
        headers: HeaderFields, contentType: ContentType, parts: [MIMEEntity]
    ) {
        self.source = source
        self.range = range
        self.headerRange = headerRange
        self.bodyRange = bodyRange
        self.headers = headers
        self.contentType = contentType
        self.parts = parts
    }

    private static func parse(
        source: [UInt8], range: Range<Int>, depth: Int, limits: MessageLimits, partCount: inout Int
    ) throws -> MIMEEntity {
        guard depth <= limits.maxDepth else { throw MessageError.nestingTooDeep(limit: limits.maxDepth) }
        let (headers, headerEnd, bodyStart) = try parseHeaderSection(source, range, limits)
        let contentType: ContentType
        if let ct = headers["Content-Type"] {
            contentType = try ContentType(parsing: ct)
        } else {
            contentType = .defaultPlainText
        }
        let bodyRange = bodyStart..<range.upperBound
        var parts: [MIMEEntity] = []
        if contentType.isMultipart {
            guard let boundary = contentType[parameter: "boundary"] else {
                throw MessageError.missingBoundary(contentType: contentType.mimeType)
            }
            // RFC 2046 5.1.1: 1 to 70 characters, not ending in space.
            guard (1...70).contains(boundary.utf8.count), !boundary.hasSuffix(" ") else {
                throw MessageError.invalidBoundary(String(boundary.prefix(80)))
            }
            for partRange in try splitMultipart(source, bodyRange, boundary: Array(boundary.utf8)) {
                partCount += 1
                guard partCount <= limits.maxParts else { throw MessageError.tooManyParts(limit: limits.maxParts) }
                parts.append(
                    try parse(source: source, range: partRange, depth: depth + 1, limits: limits, partCount: &partCount))
            }
        }
        return MIMEEntity(
            source: source, range: range, headerRange: range.lowerBound..<headerEnd, bodyRange: bodyRange,
            headers: headers, contentType: contentType, parts: parts)
    }

    /// Returns the fields, the end of the header section (after the last
    /// field's line ending) and the start of the body (after the blank line).
    static func parseHeaderSection(_ s: [UInt8], _ range: Range<Int>, _ limits: MessageLimits) throws -> (
        HeaderFields, Int, Int
    ) {
        var fields: [HeaderField] = []
        var pos = range.lowerBound
        let end = range.upperBound
        var lineNumber = 0
        // Field being accumulated: name, start, value pieces.
        var currentName: String? = nil
        var currentStart = 0
        var currentValue: [UInt8] = []

        func finishField(at fieldEnd: Int) {
            if let name = currentName {
                var lo = 0, hi = currentValue.count
                while lo < hi && (currentValue[lo] == 0x20 || currentValue[lo] == 0x09) { lo += 1 }
                while hi > lo && (currentValue[hi - 1] == 0x20 || currentValue[hi - 1] == 0x09) { hi -= 1 }
                let value = String(decoding: currentValue[lo..<hi], as: UTF8.self)
                fields.append(HeaderField(name: name, value: value, range: currentStart..<fieldEnd))
            }
            currentName = nil
            currentValue.removeAll(keepingCapacity: true)
        }

        while pos < end {
            lineNumber += 1
            // Find the line end.
            let lineEnd = s.firstIndex(of: 0x0A, from: pos, to: end)
            var contentEnd = lineEnd
            if contentEnd > pos && s[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            guard contentEnd - pos <= limits.maxHeaderLineLength else {
                throw MessageError.headerLineTooLong(line: lineNumber, limit: limits.maxHeaderLineLength)
            }
            guard next - range.lowerBound <= limits.maxHeaderSectionBytes else {
                throw MessageError.headerSectionTooLarge(limit: limits.maxHeaderSectionBytes)
            }
            if contentEnd == pos {
                // The blank line ending the header section (RFC 5322 2.1).
                finishField(at: pos)
                return (HeaderFields(fields), pos, next)
            }
            let first = s[pos]
            if first == 0x20 || first == 0x09 {
                // RFC 5322 2.2.3: unfolding removes the CRLF before WSP.
                guard currentName != nil else { throw MessageError.continuationWithoutField(line: lineNumber) }
                currentValue.append(contentsOf: s[pos..<contentEnd])
            } else {
                finishField(at: pos)
                var colon = pos
                while colon < contentEnd && s[colon] != UInt8(ascii: ":") { colon += 1 }
                // RFC 5322 3.6.8: field-name = 1*ftext (printable US-ASCII except ':').
                guard colon < contentEnd else { throw MessageError.malformedHeaderLine(line: lineNumber) }
                // Obsolete syntax (RFC 5322 4.5) allows WSP before the colon.
                var nameEnd = colon
                while nameEnd > pos && (s[nameEnd - 1] == 0x20 || s[nameEnd - 1] == 0x09) { nameEnd -= 1 }
                guard nameEnd > pos, s[pos..<nameEnd].allSatisfy({ $0 >= 33 && $0 <= 126 }) else {
                    throw MessageError.malformedHeaderLine(line: lineNumber)
                }
                guard fields.count < limits.maxHeaderFields else {
                    throw MessageError.tooManyHeaderFields(limit: limits.maxHeaderFields)
                }
                currentName = String(decoding: s[pos..<nameEnd], as: UTF8.self)
                currentStart = pos
                currentValue.append(contentsOf: s[(colon + 1)..<contentEnd])
            }
            pos = next
        }
        // No blank line: the entity is all header, with an empty body.
        finishField(at: end)
        return (HeaderFields(fields), end, end)
    }

    /// Splits a multipart body into the ranges of its parts (RFC 2046 5.1.1).
    /// The line ending before each delimiter belongs to the delimiter, so a
    /// part's range is exactly the bytes a detached signature covers.
    static func splitMultipart(_ s: [UInt8], _ body: Range<Int>, boundary: [UInt8]) throws -> [Range<Int>] {
        var delimiters: [(lineStart: Int, precedingBreak: Int, after: Int, isClose: Bool)] = []
        var pos = body.lowerBound
        let end = body.upperBound
        let bLen = boundary.count
        while pos < end {
            // Delimiters start a line with "--" (RFC 2046 5.1.1). Looking for
            // dashes rather than going line by line skips base64 and most text
            // in one memchr.
            let dash = s.firstIndex(of: 0x2D, from: pos, to: end)
            guard dash < end else { break }
            pos = dash + 1
            guard dash == body.lowerBound || s[dash - 1] == 0x0A else { continue }
            guard end - dash >= bLen + 2, s[dash + 1] == 0x2D,
                s[(dash + 2)..<(dash + 2 + bLen)].elementsEqual(boundary)
            else { continue }
            var k = dash + 2 + bLen
            var isClose = false
            if k + 1 < end, s[k] == 0x2D, s[k + 1] == 0x2D {
                isClose = true
                k += 2
            }
            while k < end && (s[k] == 0x20 || s[k] == 0x09) { k += 1 }
            // Transport padding only, then the line end (or the body end).
            guard k == end || s[k] == 0x0A || (s[k] == 0x0D && k + 1 < end && s[k + 1] == 0x0A) || (s[k] == 0x0D && k + 1 == end)
            else { continue }
            var breakStart = dash
            if dash > body.lowerBound {
                breakStart = dash - 1
                if breakStart > body.lowerBound && s[breakStart - 1] == 0x0D { breakStart -= 1 }
            }
            let after: Int
            if k == end { after = end } else if s[k] == 0x0A { after = k + 1 } else { after = min(k + 2, end) }
            delimiters.append((dash, breakStart, after, isClose))
            if isClose { break }
            pos = after
        }
        let boundaryText = String(decoding: boundary, as: UTF8.self)
        guard !delimiters.isEmpty, !(delimiters.count == 1 && delimiters[0].isClose) else {
            throw MessageError.noParts(boundary: boundaryText)
        }
        guard let last = delimiters.last, last.isClose else { throw MessageError.missingCloseDelimiter(boundary: boundaryText) }
        var parts: [Range<Int>] = []
        for i in 0..<(delimiters.count - 1) {
            let start = delimiters[i].after
            let stop = max(start, delimiters[i + 1].precedingBreak)
            parts.append(start..<stop)
        }
        return parts
    }

    /// The body decoded from its Content-Transfer-Encoding.
    public func decodedBody() throws -> [UInt8] {
        switch contentTransferEncoding {
        case "base64": return try Base64.decode(bodyBytes)
        case "quoted-printable": return QuotedPrintable.decode(bodyBytes)
        case "7bit", "8bit", "binary", "": return Array(bodyBytes)
        case let other: throw MessageError.unsupportedTransferEncoding(other)
        }
    }
}

extension String {
    /// Trims the ASCII characters of `set` from both ends.
    func trimmingCharacters(in set: String) -> String {
        let chars = Array(set.utf8)
        var s = Substring(self).utf8[...]
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(Substring(s))
    }
}
