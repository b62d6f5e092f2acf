import DirectCore
import Testing

/// Addresses as the gateway reads them from SMTP envelopes, headers and
/// certificates: trimmed, split at the last "@", the domain lowercased, and
/// refused when a part is missing, too long, or the domain is not ASCII.
@Suite struct DirectAddressTests {
    @Test func addressesAreSplitAtTheLastAtAndTheDomainIsLowercased() async throws {
        let a = try #require(DirectAddress(" \tBob.Smith@Direct.Example.ORG\r\n"))
        #expect(a.localPart == "Bob.Smith")
        #expect(a.domain == "direct.example.org")
        #expect(a.description == "Bob.Smith@direct.example.org")
        // A quoted local part may hold "@"; the domain starts after the last one.
        let quoted = try #require(DirectAddress("\"a@b\"@direct.example.org"))
        #expect(quoted.localPart == "\"a@b\"")
        // A non-ASCII local part is kept as written (RFC 6531).
        let intl = try #require(DirectAddress("José.Ñúñez@direct.example.org"))
        #expect(intl.localPart == "José.Ñúñez")
        #expect(DirectAddress("bob@direct.example.org") == DirectAddress("bob@DIRECT.example.org"))
    }

    @Test func malformedAddressesAreRefused() {
        for text in ["", "   ", "bob", "@direct.example.org", "bob@", "bob@ ", "bob@dir ect.org", "bob@exämple.org",
                     "bob@direct\u{7F}.org", String(repeating: "a", count: 65) + "@direct.example.org",
                     "bob@" + String(repeating: "a", count: 256)] {
            #expect(DirectAddress(text) == nil, "\(text)")
        }
        #expect(DirectAddress(String(repeating: "a", count: 64) + "@" + String(repeating: "a", count: 255)) != nil)
    }

    @Test func trimmingRemovesOnlySpaceTabCRAndLFAtTheEnds() {
        #expect(" \t a b \r\n".trimmingWhitespace() == "a b")
        #expect("\r\n".trimmingWhitespace() == "")
        #expect("".trimmingWhitespace() == "")
        #expect("café\r\n".trimmingWhitespace() == "café")
        #expect("  日本語  ".trimmingWhitespace() == "日本語")
        #expect("\u{A0}x\u{A0}".trimmingWhitespace() == "\u{A0}x\u{A0}")  // NO-BREAK SPACE is not SMTP whitespace
        #expect("\u{0B}x\u{0C}".trimmingWhitespace() == "\u{0B}x\u{0C}")
        #expect("unchanged".trimmingWhitespace() == "unchanged")
    }
}
