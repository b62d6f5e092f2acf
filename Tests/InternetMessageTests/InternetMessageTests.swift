import Foundation
import Testing
@testable import InternetMessage

@Suite struct Base64Tests {
    @Test(arguments: [0, 1, 2, 3, 4, 56, 57, 58, 1000])
    func roundTripsEveryLength(length: Int) throws {
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let encoded = Base64.encode(data)
        // RFC 2045 6.8: lines of at most 76 characters.
        for line in String(decoding: encoded, as: UTF8.self).split(separator: "\r\n") { #expect(line.count <= 76) }
        #expect(try Base64.decode(encoded) == data)
    }

    /// The encoder's whole-line fast path and its general path agree with
    /// Foundation's encoder at every line length, and the decoder reads
    /// unwrapped, CRLF-wrapped and space-broken text alike.
    @Test(arguments: [0, 4, 64, 76, 75, 7])
    func agreesWithFoundationAtEveryLineLength(lineLength: Int) throws {
        for length in [0, 1, 2, 56, 57, 58, 113, 114, 1000, 4099] {
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 3) }
            let encoded = Base64.encode(data, lineLength: lineLength)
            let reference = Data(data).base64EncodedString()
            let lines = String(decoding: encoded, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
            #expect(lines.joined() == reference)
            if lineLength > 0 {
                #expect(lines.dropLast(2).allSatisfy { $0.count == lineLength })
                #expect(lines.last == "")
            }
            #expect(try Base64.decode(encoded) == data)
            // After a prefix (header fields): the prefix, then the same encoding.
            let prefix = Array("Content-Transfer-Encoding: base64\r\n\r\n".utf8)
            #expect(Base64.encode(data, lineLength: lineLength, after: prefix) == prefix + encoded)
            #expect(try Base64.decode(Array(reference.utf8).enumerated().flatMap { $0.offset % 5 == 4 ? [$0.element, 0x20] : [$0.element] }) == data)
        }
    }

    @Test func rejectsCharactersOutsideTheAlphabet() {
        #expect(throws: MessageError.invalidBase64(offset: 2)) { try Base64.decode(Array("QU*B".utf8)) }
        // Wherever it falls in the groups the decoder reads together, the offset is exact.
        let valid = Array(Base64.encode(Array(0..<18) as [UInt8], lineLength: 0))
        for p in 0..<valid.count {
            var bad = valid
            bad[p] = UInt8(ascii: "*")
            #expect(throws: MessageError.invalidBase64(offset: p)) { try Base64.decode(bad) }
        }
    }

    @Test func rejectsDataAfterPadding() {
        #expect(throws: MessageError.self) { try Base64.decode(Array("QQ==QUFB".utf8)) }
    }
}

@Suite struct LineEndingTests {
    @Test func recognisesCanonicalTextAndFixesTheRest() {
        #expect(LineEndings.isCanonical(Array("a\r\nb\r\n".utf8)))
        #expect(LineEndings.isCanonical([]))
        for bad in ["a\nb", "a\rb", "a\r", "\n", "a\r\r\n", "a\r\n\n"] {
            #expect(!LineEndings.isCanonical(Array(bad.utf8)), "\(bad.debugDescription)")
            #expect(LineEndings.isCanonical(LineEndings.canonicalize(Array(bad.utf8))))
        }
        #expect(LineEndings.canonicalize(Array("a\nb\rc\r\n".utf8)) == Array("a\r\nb\r\nc\r\n".utf8))
    }

    /// The 32-, 8- and 1-byte paths agree with a byte-by-byte reading, with
    /// a stray CR or LF at every position of texts around the chunk sizes.
    @Test func agreesWithAByteByByteReadingEverywhere() {
        func reference(_ b: [UInt8]) -> Bool {
            for (i, c) in b.enumerated() {
                if c == 0x0D && (i + 1 == b.count || b[i + 1] != 0x0A) { return false }
                if c == 0x0A && (i == 0 || b[i - 1] != 0x0D) { return false }
            }
            return true
        }
        for length in [1, 7, 8, 9, 31, 32, 33, 34, 40, 64, 65, 66, 97, 130] {
            let clean = (0..<length).map { i -> UInt8 in i % 10 == 8 ? 0x0D : i % 10 == 9 ? 0x0A : 0x61 }
            #expect(LineEndings.isCanonical(clean) == reference(clean), "length \(length)")
            for at in 0..<length {
                for stray: UInt8 in [0x0D, 0x0A] {
                    var b = clean
                    b[at] = stray
                    #expect(LineEndings.isCanonical(b) == reference(b), "length \(length), \(stray) at \(at)")
                }
            }
        }
    }

    @Test func findsBytesWithinTheGivenRangeOnly() {
        let s = Array("ab\ncd\n".utf8)
        #expect(s.firstIndex(of: 0x0A, from: 0, to: s.count) == 2)
        #expect(s.firstIndex(of: 0x0A, from: 3, to: s.count) == 5)
        #expect(s.firstIndex(of: 0x0A, from: 3, to: 5) == 5)  // not found: the end
        #expect(s.firstIndex(of: 0x0A, from: 6, to: 99) == s.count)  // clamped
    }
}

@Suite struct QuotedPrintableTests {
    @Test func decodesSoftBreaksAndEscapes() {
        let qp = Array("caf=C3=A9 =\r\nau lait   \r\nx=3Dy".utf8)
        #expect(String(decoding: QuotedPrintable.decode(qp), as: UTF8.self) == "café au lait\r\nx=y")
    }

    @Test func roundTripsBinaryAndLongLines() {
        let text = Array(("é=ü " + String(repeating: "long line ", count: 30) + "\r\nend \t").utf8)
        let encoded = QuotedPrintable.encode(text)
        for line in String(decoding: encoded, as: UTF8.self).split(separator: "\r\n") { #expect(line.count <= 76) }
        #expect(QuotedPrintable.decode(encoded) == text)
    }
}

@Suite struct EncodedWordTests {
    @Test func decodesBAndQWordsAndDropsWhitespaceBetweenThem() {
        #expect(EncodedWord.decode("=?UTF-8?B?SsO8cmdlbg==?= =?ISO-8859-1?Q?M=FCller?=") == "JürgenMüller")
        #expect(EncodedWord.decode("Re: =?utf-8?q?caf=C3=A9_noir?= today") == "Re: café noir today")
    }

    @Test func leavesUnknownCharsetsAlone() {
        #expect(EncodedWord.decode("=?x-unknown?B?QUI=?=") == "=?x-unknown?B?QUI=?=")
    }

    @Test func encodesNonASCIIInWordsOfAtMost75Characters() {
        let s = String(repeating: "Überweisung für Patientin ", count: 6)
        let encoded = EncodedWord.encodeIfNeeded(s)
        for word in encoded.split(separator: " ") { #expect(word.count <= 75) }
        #expect(EncodedWord.decode(encoded) == s)
        #expect(EncodedWord.encodeIfNeeded("plain ascii") == "plain ascii")
    }
}

@Suite struct HeaderTests {
    @Test func foldsOnlyAtWhiteSpaceAndKeepsUTF8Whole() {
        #expect(HeaderFolding.fold(name: "Subject", value: "short") == "Subject: short\r\n")
        let long = String(repeating: "é", count: 100)  // no white space: one long line
        #expect(HeaderFolding.fold(name: "Subject", value: long) == "Subject: \(long)\r\n")
        let folded = HeaderFolding.fold(name: "X", value: String(repeating: "abcdefghi ", count: 12) + " \t")
        #expect(folded.hasSuffix("abcdefghi\r\n"))  // trailing white space dropped
        #expect(folded.components(separatedBy: "\r\n").dropLast().allSatisfy { $0.utf8.count <= 78 })
        #expect(HeaderFolding.fold(name: "X", value: "a\r\nb") == "X: ab\r\n")
        // A short value is written as it is, except for trailing white space.
        #expect(HeaderFolding.fold(name: "X", value: "  a\tb ") == "X:   a\tb\r\n")
        #expect(HeaderFolding.fold(name: "X", value: " ") == "X: \r\n")
    }

    @Test func foldingAfterEarlierFieldsCountsFromTheFieldsOwnStart() {
        var out = Array("Earlier: \(String(repeating: "z", count: 60))\r\n".utf8)
        let value = (0..<20).map { "w\($0)" }.joined(separator: " ")
        HeaderFolding.foldedBytes(name: "Subject", value: value, into: &out)
        #expect(String(decoding: out, as: UTF8.self).hasSuffix(HeaderFolding.fold(name: "Subject", value: value)))
        let long = (0..<30).map { "word\($0)" }.joined(separator: " ")
        HeaderFolding.foldedBytes(name: "Subject", value: long, into: &out)
        #expect(String(decoding: out, as: UTF8.self).hasSuffix(HeaderFolding.fold(name: "Subject", value: long)))
    }

    @Test func foldsLongValuesAndParserUnfoldsThem() async throws {
        let value = (0..<30).map { "word\($0)" }.joined(separator: " ")
        let folded = HeaderFolding.fold(name: "Subject", value: value)
        for line in folded.split(separator: "\r\n") { #expect(line.count <= 78) }
        let entity = try MIMEEntity(parsing: Array((folded + "\r\nbody").utf8))
        #expect(entity.headers["subject"] == value)
    }

    @Test func keepsExactByteRangesOfEveryField() async throws {
        let raw = Array("From: a@b.example\r\nSubject: x\r\n  continued\r\n\r\nbody\r\n".utf8)
        let e = try MIMEEntity(parsing: raw)
        #expect(e.headers.fields.count == 2)
        #expect(String(decoding: raw[e.headers.fields[1].range], as: UTF8.self) == "Subject: x\r\n  continued\r\n")
        #expect(e.headers["Subject"] == "x  continued")
        #expect(String(decoding: e.bodyBytes, as: UTF8.self) == "body\r\n")
    }

    @Test func parsesContentTypeParametersCommentsAndRFC2231() throws {
        let ct = try ContentType(parsing: "Multipart/Signed (c); protocol=\"application/pkcs7-signature\"; micalg=SHA-256; boundary=\"a b\"; name*0=\"re\"; name*1=port.pdf")
        #expect(ct.mimeType == "multipart/signed")
        #expect(ct[parameter: "PROTOCOL"] == "application/pkcs7-signature")
        #expect(ct[parameter: "boundary"] == "a b")
        #expect(ct[parameter: "name"] == "report.pdf")
        let ext = try ContentType(parsing: "application/pdf; name*=utf-8''B%C3%A9fund.pdf")
        #expect(ext[parameter: "name"] == "Béfund.pdf")
    }
}

@Suite struct MultipartTests {
    let message = Array((
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n" +
        "preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--XX  \r\n" +
        "Content-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner\r\n--YY--\r\n" +
        "\r\n--XX--\r\nepilogue\r\n").utf8)

    @Test func splitsPartsWithTheLineEndingBelongingToTheDelimiter() async throws {
        let e = try MIMEEntity(parsing: message)
        #expect(e.parts.count == 2)
        #expect(String(decoding: e.parts[0].bytes, as: UTF8.self) == "Content-Type: text/plain\r\n\r\nfirst")
        #expect(e.parts[1].parts.count == 1)
        #expect(String(decoding: e.parts[1].parts[0].bodyBytes, as: UTF8.self) == "inner")
        // Default content type of a part without headers (RFC 2045 5.2).
        #expect(e.parts[1].parts[0].contentType.mimeType == "text/plain")
    }

    @Test func acceptsBareLFLineEndings() async throws {
        let lf = Array(String(decoding: message, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n").utf8)
        let e = try MIMEEntity(parsing: lf)
        #expect(String(decoding: e.parts[0].bodyBytes, as: UTF8.self) == "first")
        #expect(LineEndings.canonicalize(lf) == message)
    }

    @Test func buildsWhatItParses() async throws {
        let parts = [Array("Content-Type: text/plain\r\n\r\none".utf8), Array("Content-Type: text/html\r\n\r\n<p>two</p>\r\n".utf8)]
        let boundary = Multipart.makeBoundary()
        let body = Multipart.body(parts: parts, boundary: boundary)
        let bytes = EntityBuilder(headers: [("Content-Type", "multipart/mixed; boundary=\"\(boundary)\"")], body: body).serialize()
        let e = try MIMEEntity(parsing: bytes)
        #expect(e.parts.map { Array($0.bytes) } == parts)
    }

    /// Dashes that are not a delimiter: inside lines, lines of dashes, the
    /// boundary with more after it, and the boundary not at a line start.
    @Test func onlyWholeDelimiterLinesSplit() async throws {
        let text = "Content-Type: multipart/mixed; boundary=\"B-1\"\r\n\r\n" +
            "--B-1\r\n\r\na - b -- c\r\n-----\r\n--B-10\r\nx --B-1\r\n--B-1x\r\n" +
            "--B-1\r\n\r\nsecond\r\n--B-1--\r\n"
        let e = try MIMEEntity(parsing: Array(text.utf8))
        #expect(e.parts.count == 2)
        #expect(String(decoding: e.parts[0].bodyBytes, as: UTF8.self) == "a - b -- c\r\n-----\r\n--B-10\r\nx --B-1\r\n--B-1x")
        #expect(String(decoding: e.parts[1].bodyBytes, as: UTF8.self) == "second")
    }

    @Test func rejectsMissingCloseDelimiter() {
        let bad = Array("Content-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n\r\nx\r\n".utf8)
        #expect(throws: MessageError.missingCloseDelimiter(boundary: "Q")) { try MIMEEntity(parsing: bad) }
    }
}

@Suite struct LimitTests {
    @Test func enforcesNestingDepth() {
        var m = "Content-Type: text/plain\r\n\r\nleaf"
        for i in 0..<5 {
            m = "Content-Type: multipart/mixed; boundary=b\(i)\r\n\r\n--b\(i)\r\n\(m)\r\n--b\(i)--\r\n"
        }
        #expect(throws: MessageError.nestingTooDeep(limit: 3)) {
            try MIMEEntity(parsing: Array(m.utf8), limits: MessageLimits(maxDepth: 3))
        }
        #expect((try? MIMEEntity(parsing: Array(m.utf8), limits: MessageLimits(maxDepth: 5))) != nil)
    }

    @Test func enforcesPartCountHeaderSizeLineLengthAndMessageSize() {
        let many = "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + String(repeating: "--b\r\n\r\nx\r\n", count: 20) + "--b--\r\n"
        #expect(throws: MessageError.tooManyParts(limit: 10)) {
            try MIMEEntity(parsing: Array(many.utf8), limits: MessageLimits(maxParts: 10))
        }
        let longLine = "Subject: " + String(repeating: "a", count: 200) + "\r\n\r\n"
        #expect(throws: MessageError.headerLineTooLong(line: 1, limit: 100)) {
            try MIMEEntity(parsing: Array(longLine.utf8), limits: MessageLimits(maxHeaderLineLength: 100))
        }
        let manyFields = String(repeating: "X-A: 1\r\n", count: 50) + "\r\n"
        #expect(throws: MessageError.tooManyHeaderFields(limit: 10)) {
            try MIMEEntity(parsing: Array(manyFields.utf8), limits: MessageLimits(maxHeaderFields: 10))
        }
        #expect(throws: MessageError.headerSectionTooLarge(limit: 100)) {
            try MIMEEntity(parsing: Array(manyFields.utf8), limits: MessageLimits(maxHeaderSectionBytes: 100))
        }
        let size = manyFields.utf8.count
        #expect(throws: MessageError.messageTooLarge(size: size, limit: 100)) {
            try MIMEEntity(parsing: Array(manyFields.utf8), limits: MessageLimits(maxMessageBytes: 100))
        }
    }

    @Test func rejectsAHeaderLineThatIsNotAField() {
        #expect(throws: MessageError.malformedHeaderLine(line: 2)) {
            try MIMEEntity(parsing: Array("From: a\r\nno colon here\r\n\r\n".utf8))
        }
    }
}

import Foundation

@Suite struct SingleOccurrenceFieldTests {
    func headers(_ text: String) throws -> HeaderFields {
        try MIMEEntity(parsing: Array((text + "\r\nbody\r\n").utf8)).headers
    }

    @Test func aSecondFromOrSubjectIsNamed() async throws {
        #expect(try headers("From: a@x\r\nfrom: c@x\r\nTo: b@y\r\n").repeatedSingleOccurrenceField == "From")
        #expect(try headers("From: a@x\r\nSubject: one\r\nTo: b@y\r\nSUBJECT: two\r\n").repeatedSingleOccurrenceField == "Subject")
        #expect(try headers("Message-ID: <1@x>\r\nMessage-Id: <2@x>\r\n").repeatedSingleOccurrenceField == "Message-ID")
    }

    @Test func fieldsThatMayRepeatAreFine() async throws {
        // RFC 5322 3.6: trace and optional fields may occur any number of times.
        let h = try headers("Received: one\r\nReceived: two\r\nFrom: a@x\r\nTo: b@y\r\nComments: 1\r\nComments: 2\r\nX-Thing: 1\r\nX-Thing: 2\r\n")
        #expect(h.repeatedSingleOccurrenceField == nil)
    }
}
