import InternetMessage
import Testing
@testable import IMAPCore

@Suite struct IMAPEncodingTests {
    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    @Test func stringsAreQuotedOrLiteralAsTheirBytesRequire() {
        #expect(text(IMAPString.string("Referral \"A\"")) == "\"Referral \\\"A\\\"\"")
        #expect(text(IMAPString.string("Überweisung")) == "{12}\r\nÜberweisung")
        #expect(text(IMAPString.string("two\r\nlines")) == "{10}\r\ntwo\r\nlines")
        #expect(text(IMAPString.nstring(nil)) == "NIL")
        #expect(text(IMAPString.astring("INBOX")) == "INBOX")
        #expect(text(IMAPString.astring("Patients 2026")) == "\"Patients 2026\"")
        #expect(text(IMAPString.astring("NIL")) == "\"NIL\"")
    }

    /// RFC 3501 5.1.3's own example, and names a practice might use.
    @Test func modifiedUTF7RoundTripsAndRefusesWhatIsNotCanonical() {
        #expect(ModifiedUTF7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        #expect(ModifiedUTF7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語")
        #expect(ModifiedUTF7.encode("R&D") == "R&-D")
        #expect(ModifiedUTF7.decode("R&-D") == "R&D")
        for name in ["Patienten Müller", "Überweisungen/2026", "😀 urgent", "a&b&-c"] {
            #expect(ModifiedUTF7.decode(ModifiedUTF7.encode(name)) == name, "\(name)")
        }
        #expect(ModifiedUTF7.decode("&AGE-") == nil, "plain ASCII must not be encoded")
        #expect(ModifiedUTF7.decode("&U,BTFw") == nil, "an unterminated run")
        #expect(ModifiedUTF7.decode("&Jjo!-") == nil, "not base64")
        #expect(ModifiedUTF7.decode("&2D0-") == nil, "half a surrogate pair")
    }

    /// RFC 9051 9: `env-to = "(" 1*address ")"`, addresses side by side without a space.
    @Test func theEnvelopeNamesEveryAddressWithItsDisplayName() async throws {
        let m = try MIMEEntity(parsing: Array((
            "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nFrom: \"Roe, Jane\" <jane@direct.a.test>\r\nTo: bob@direct.b.test, Carol <carol@direct.b.test>\r\n"
            + "Subject: Referral\r\nMessage-ID: <1@a>\r\n\r\nbody\r\n").utf8))
        #expect(text(MessageStructure.envelope(m.headers)) ==
                "(\"Thu, 03 Dec 2026 10:00:00 +0000\" \"Referral\" ((\"Roe, Jane\" NIL \"jane\" \"direct.a.test\")) ((\"Roe, Jane\" NIL \"jane\" \"direct.a.test\")) "
                + "((\"Roe, Jane\" NIL \"jane\" \"direct.a.test\")) ((NIL NIL \"bob\" \"direct.b.test\")(\"Carol\" NIL \"carol\" \"direct.b.test\")) NIL NIL NIL \"<1@a>\")")
    }

    @Test func theBodyStructureDescribesEachPart() async throws {
        let m = try MIMEEntity(parsing: Array((
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n"
            + "--b\r\nContent-Type: application/pdf; name=referral.pdf\r\nContent-Transfer-Encoding: base64\r\n"
            + "Content-Disposition: attachment;\r\n filename=\"Referral for Jane Roe.pdf\"\r\n\r\nJVBERi0=\r\n--b--\r\n").utf8))
        let s = text(MessageStructure.bodyStructure(m, extensible: false))
        #expect(s.hasPrefix("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" "), "\(s)")
        #expect(s.contains("(\"APPLICATION\" \"PDF\" (\"NAME\" \"referral.pdf\") NIL NIL \"BASE64\" "), "\(s)")
        #expect(s.hasSuffix(" \"MIXED\")"), "\(s)")
        let extended = text(MessageStructure.bodyStructure(m, extensible: true))
        #expect(extended.hasSuffix(" \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)"), "\(extended)")
        // The disposition and its file name, which mail clients list attachments by (RFC 2183, RFC 9051 7.5.2).
        #expect(extended.contains("\"BASE64\" 8 NIL (\"ATTACHMENT\" (\"FILENAME\" \"Referral for Jane Roe.pdf\")) NIL NIL)"), "\(extended)")
        #expect(extended.hasPrefix("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 2 NIL NIL NIL NIL)"), "\(extended)")
    }
}
