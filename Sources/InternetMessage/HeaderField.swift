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
}

/// Writes header fields for output, folded at white space so that no line
/// exceeds 78 characters where that is possible (RFC 5322 2.1.1, 2.2.3).
public enum HeaderFolding {
    public static func fold(name: String, value: String, lineLength: Int = 78) -> String {
        let first = name + ": "
        var lines: [String] = []
        var current = first
        var pendingSpace = ""
        var word = ""
        func flushWord() {
            if word.isEmpty { return }
            if current.utf8.count + pendingSpace.utf8.count + word.utf8.count > lineLength && current != first
                && !current.allSatisfy({ $0 == " " || $0 == "\t" })
            {
                lines.append(current)
                current = (pendingSpace.isEmpty ? " " : pendingSpace) + word
            } else {
                current += pendingSpace + word
            }
            pendingSpace = ""
            word = ""
        }
        for ch in value {
            if ch == " " || ch == "\t" {
                if !word.isEmpty { flushWord() }
                pendingSpace.append(ch)
            } else if ch == "\r" || ch == "\n" {
                continue  // values are unfolded; never emit bare line breaks
            } else {
                word.append(ch)
            }
        }
        flushWord()
        lines.append(current)
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
