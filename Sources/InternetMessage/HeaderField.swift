/// One header field as received: its name, its unfolded value, and the exact
/// byte range it occupied (name through the line ending of its last line).
public struct HeaderField: Sendable, Hashable {
    public let name: String
    /// The value unfolded (RFC 5322 2.2.3: CRLF before WSP removed) and trimmed.
    /// Encoded words are left as they are; see `decodedValue`.
    public let value: String
    /// Byte range of the whole field in the message's bytes.
    public let range: Range<Int>

    public init(name: String, value: String, range: Range<Int>) {
        self.name = name
        self.value = value
        self.range = range
    }

    /// The value with RFC 2047 encoded words decoded.
    public var decodedValue: String { EncodedWord.decode(value) }

    public func hasName(_ other: String) -> Bool {
        name.caseInsensitiveEquals(other)
    }
}

extension String {
    /// ASCII case-insensitive comparison (header names, parameter names).
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = self.utf8, b = other.utf8
        guard a.count == b.count else { return false }
        @inline(__always) func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c + 0x20 : c }
        return zip(a, b).allSatisfy { lower($0) == lower($1) }
    }
}

/// The header section of an entity, in order.
public struct HeaderFields: Sendable, Hashable, Sequence {
    public var fields: [HeaderField]

    public init(_ fields: [HeaderField] = []) { self.fields = fields }

    public func makeIterator() -> IndexingIterator<[HeaderField]> { fields.makeIterator() }

    /// The first field with that name, case-insensitively.
    public subscript(_ name: String) -> String? {
        fields.first { $0.hasName(name) }?.value
    }

    public func all(_ name: String) -> [HeaderField] {
        fields.filter { $0.hasName(name) }
    }

    public var isEmpty: Bool { fields.isEmpty }

    /// RFC 5322 3.6: the fields a message may carry at most once. A second
    /// From (or To, Subject, ...) makes what a reader sees differ from what the
    /// checks read, so a message with one is refused, not interpreted.
    public static let singleOccurrence = ["Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID",
                                          "In-Reply-To", "References", "Subject"]

    /// The first field of `singleOccurrence` that appears more than once, by its canonical name.
    public var repeatedSingleOccurrenceField: String? {
        Self.singleOccurrence.first { name in
            var seen = 0
            for f in fields where f.hasName(name) {
                seen += 1
                if seen > 1 { return true }
            }
            return false
        }
    }
}

/// Writes header fields for output, folded at white space so that no line
/// exceeds 78 characters where that is possible (RFC 5322 2.1.1, 2.2.3).
public enum HeaderFolding {
    public static func fold(name: String, value: String, lineLength: Int = 78) -> String {
        String(decoding: foldedBytes(name: name, value: value, lineLength: lineLength), as: UTF8.self)
    }

    /// `fold` as bytes. Works on UTF-8 bytes: the break points (SP, HTAB) are
    /// ASCII, so multi-byte characters are never split.
    public static func foldedBytes(name: String, value: String, lineLength: Int = 78) -> [UInt8] {
        var out = [UInt8]()
        foldedBytes(name: name, value: value, lineLength: lineLength, into: &out)
        return out
    }

    /// `foldedBytes` appended to `out`.
    public static func foldedBytes(name: String, value: String, lineLength: Int = 78, into out: inout [UInt8]) {
        @inline(__always) func isWSP(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
        // Most fields fit on one line as they are: no line break inside and
        // no white space at the end (which the general case drops).
        let fits = name.utf8.count + 2 + value.utf8.count <= lineLength
        if fits, value.utf8.last.map({ !isWSP($0) }) ?? true, !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            out.append(contentsOf: name.utf8)
            out.append(0x3A)
            out.append(0x20)
            out.append(contentsOf: value.utf8)
            out.append(0x0D)
            out.append(0x0A)
            return
        }
        // Values are unfolded: never emit bare line breaks.
        var v = value
        if v.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            v = String(decoding: v.utf8.filter { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        }
        out.append(contentsOf: name.utf8)
        out.append(0x3A)
        out.append(0x20)
        var lineStart = out.count - name.utf8.count - 2
        v.withUTF8 { v in
            out.reserveCapacity(out.count + v.count + 8 + v.count / lineLength * 3)
            var onlyName = true
            var i = 0
            let n = v.count
            while i < n {
                let spaceStart = i
                while i < n && isWSP(v[i]) { i += 1 }
                let wordStart = i
                while i < n && !isWSP(v[i]) { i += 1 }
                // Trailing white space (no word after it) is dropped.
                guard i > wordStart else { break }
                let spaces = UnsafeBufferPointer(rebasing: v[spaceStart..<wordStart])
                let word = UnsafeBufferPointer(rebasing: v[wordStart..<i])
                if out.count - lineStart + spaces.count + word.count > lineLength && !onlyName {
                    out.append(0x0D)
                    out.append(0x0A)
                    lineStart = out.count
                    if spaces.isEmpty { out.append(0x20) } else { out.append(contentsOf: spaces) }
                } else {
                    out.append(contentsOf: spaces)
                }
                out.append(contentsOf: word)
                onlyName = false
            }
        }
        out.append(0x0D)
        out.append(0x0A)
    }
}
