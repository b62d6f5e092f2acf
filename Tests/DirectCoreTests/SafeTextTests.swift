import DirectCore
import Testing

@Suite struct SafeTextTests {
    @Test func controlCharactersBecomeVisibleEscapes() {
        #expect(SafeText.escape("delimited by --\u{1B}[2JZZ\u{07}") == "delimited by --\\x1B[2JZZ\\x07")
        #expect(SafeText.escape("a\r\nb\tc\u{7F}") == "a\\x0D\\x0Ab\\x09c\\x7F")
        // C1 controls (CSI), line separators and bidi overrides are escaped; other text is kept.
        #expect(SafeText.escape("x\u{9B}31m\u{2028}\u{202E}gpj.exe") == "x\\x9B31m\\u{2028}\\u{202E}gpj.exe")
        #expect(SafeText.escape("Zoë Müller, 東京") == "Zoë Müller, 東京")
        #expect(SafeText.escape("plain ASCII stays as it is") == "plain ASCII stays as it is")
    }

    @Test func asciiOnlyEscapesEverythingOutsidePrintableASCII() {
        #expect(SafeText.escape("Zoë\u{1B}", asciiOnly: true) == "Zo\\xEB\\x1B")
        #expect(SafeText.escape("東", asciiOnly: true) == "\\u{6771}")
        #expect(SafeText.escape(bytes: [0x41, 0x1B, 0x42]) == "A\\x1BB")
    }

    @Test func nothingEscapedCarriesAControlCharacter() {
        var all = ""
        for v in 0..<0x3000 { if let s = Unicode.Scalar(v) { all.unicodeScalars.append(s) } }
        for ascii in [false, true] {
            let out = SafeText.escape(all, asciiOnly: ascii)
            #expect(!out.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x202E })
        }
    }
}
