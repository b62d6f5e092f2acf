import Foundation
import HISPTesting
import Testing

/// Interoperability with OpenSSL and Python's `cryptography`, both ways,
/// through the `hisp` command line a user runs. Certificates are made per test.
@Suite struct InteropTests {
    let ws: Workspace
    let pki: TestPKI

    init() throws {
        ws = try Workspace()
        pki = TestPKI(ws)
        try pki.directPair()
    }

    func message() throws -> String { try ws.write("msg.eml", sampleMessage()) }

    // MARK: our encrypt -> openssl cms -decrypt

    @Test(arguments: ["aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm"], ["rsa-oaep-sha256", "rsa-pkcs1v15"])
    func opensslDecryptsWhatWeEncrypt(cipher: String, transport: String) async throws {
        let msg = try message()
        try await ws.hisp(["smime", "encrypt", "--to", "bob.pem", "--cipher", cipher, "--key-transport", transport,
                     "--in", msg, "--out", "enc.eml"]).expectSuccess()
        try await ws.mustRun("openssl", ["cms", "-decrypt", "-in", "enc.eml", "-recip", "bob.pem", "-inkey", "bob.key", "-out", "dec.eml"])
        let decrypted = try ws.read("dec.eml")
        // Wrapped (Direct default): the decrypted entity is message/rfc822 holding the original.
        #expect(decrypted.starts(with: Array("Content-Type: message/rfc822\r\n\r\n".utf8)))
        #expect(decrypted.suffix(sampleMessage().count).contains(subsequence: Array("Patient Jane Roe".utf8)))
        #expect(Array(decrypted.dropFirst(32)) == (try ws.read("msg.eml")))
    }

    // MARK: openssl cms -encrypt -> our decrypt

    @Test(arguments: [
        ["-aes128"], ["-aes256"], ["-aes-256-gcm"], ["-aes256", "-stream"], ["-aes-128-gcm", "-stream"],
        ["-aes256", "-recip", "bob.pem", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"],
        ["-aes128", "-recip", "bob.pem", "-keyopt", "rsa_padding_mode:oaep"],
        ["-aes256", "-keyid"],
        ["-aes256", "-stream", "-binary"],
    ])
    func weDecryptWhatOpenSSLEncrypts(options: [String]) async throws {
        let msg = try message()
        // -keyopt applies to the -recip before it; otherwise the recipient comes last.
        let recipient = options.contains("-recip") ? [] : ["bob.pem"]
        try await ws.mustRun("openssl", ["cms", "-encrypt", "-in", msg, "-out", "enc.eml"] + options + recipient)
        let r = try await ws.hisp(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "enc.eml"])
        r.expectSuccess()
        // openssl encrypts the file as it is: the decrypted entity is the message (CRLF canonical).
        #expect(r.stdout == (try ws.read("msg.eml")))
    }

    // MARK: our sign -> openssl cms -verify

    @Test(arguments: [["--digest", "sha256"], ["--digest", "sha384"], ["--digest", "sha512"], ["--opaque"], ["--no-wrap"]])
    func opensslVerifiesWhatWeSign(options: [String]) async throws {
        let msg = try message()
        try await ws.hisp(["smime", "sign", "--cert", "alice.pem", "--key", "alice.key", "--in", msg, "--out", "signed.eml"] + options)
            .expectSuccess()
        try await ws.mustRun("openssl", ["cms", "-verify", "-in", "signed.eml", "-CAfile", "ca.pem", "-out", "content.eml"])
        let content = try ws.read("content.eml")
        #expect(content.contains(subsequence: Array("Patient Jane Roe".utf8)))
        if options == ["--digest", "sha384"] {
            #expect(try String(decoding: ws.read("signed.eml"), as: UTF8.self).contains("micalg=sha-384"))
        }
    }

    @Test func opensslVerifiesOurECDSASignature() async throws {
        try await pki.leaf("ecalice", ca: "ca", ["--ec", "p256", "--email", "alice@direct.a.example"])
        let msg = try message()
        try await ws.hisp(["smime", "sign", "--cert", "ecalice.pem", "--key", "ecalice.key", "--in", msg, "--out", "signed.eml"])
            .expectSuccess()
        try await ws.mustRun("openssl", ["cms", "-verify", "-in", "signed.eml", "-CAfile", "ca.pem", "-out", "content.eml"])
        try await ws.hisp(["smime", "verify", "--anchor", "ca.pem", "--in", "signed.eml"]).expectSuccess()
    }

    // MARK: openssl cms -sign / openssl smime -sign / cryptography -> our verify

    @Test(arguments: [
        ["cms", "-sign"], ["cms", "-sign", "-nodetach"], ["cms", "-sign", "-stream"], ["cms", "-sign", "-nodetach", "-stream"],
        ["cms", "-sign", "-keyid"], ["cms", "-sign", "-md", "sha512"], ["smime", "-sign"], ["smime", "-sign", "-nodetach"],
    ])
    func weVerifyWhatOpenSSLSigns(command: [String]) async throws {
        let msg = try message()
        try await ws.mustRun("openssl", command + ["-in", msg, "-signer", "alice.pem", "-inkey", "alice.key", "-out", "signed.eml"])
        let r = try await ws.hisp(["smime", "verify", "--anchor", "ca.pem", "--in", "signed.eml"])
        r.expectSuccess()
        // Not wrapped: we write back the signed entity as the message content.
        #expect(r.stdout.contains(subsequence: Array("Patient Jane Roe, DOB 1970-01-01.".utf8)))
    }

    @Test func weVerifyWhatPythonCryptographySigns() async throws {
        let msg = try message()
        try await ws.mustRun("python3", [Tools.pkiScript, "sign-pkcs7", "alice.pem", "alice.key", msg, "signed.eml"])
        let r = try await ws.hisp(["smime", "verify", "--anchor", "ca.pem", "--in", "signed.eml"])
        r.expectSuccess()
        #expect(r.stdout.contains(subsequence: Array("Patient Jane Roe".utf8)))
    }

    @Test func weVerifyLegacyXPKCS7TypesAndBareLF() async throws {
        let msg = try message()
        try await ws.mustRun("openssl", ["smime", "-sign", "-in", msg, "-signer", "alice.pem", "-inkey", "alice.key", "-out", "signed.eml"])
        var text = String(decoding: try ws.read("signed.eml"), as: UTF8.self)
        #expect(text.contains("application/x-pkcs7-signature"))
        text = text.replacingOccurrences(of: "\r\n", with: "\n")
        _ = try ws.write("lf.eml", text)
        try await ws.hisp(["smime", "verify", "--anchor", "ca.pem", "--in", "lf.eml"]).expectSuccess()
    }

    // MARK: the Direct pipeline through our tools and OpenSSL

    @Test func signThenEncryptRoundTripsToTheOriginalMessage() async throws {
        let msg = try message()
        try await ws.hisp(["smime", "sign", "--cert", "alice.pem", "--key", "alice.key", "--in", msg, "--out", "s.eml"]).expectSuccess()
        try await ws.hisp(["smime", "encrypt", "--to", "bob.pem", "--in", "s.eml", "--out", "e.eml"]).expectSuccess()
        let outer = String(decoding: try ws.read("e.eml"), as: UTF8.self)
        #expect(outer.contains("smime-type=enveloped-data"))
        #expect(!outer.contains("Patient Jane Roe"))
        // Routing headers stay outside.
        #expect(outer.contains("From: Dr. Alice <alice@direct.a.example>"))
        try await ws.hisp(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "e.eml", "--out", "d.eml"]).expectSuccess()
        // OpenSSL reads the decrypted signed entity too.
        try await ws.mustRun("openssl", ["cms", "-verify", "-in", "d.eml", "-CAfile", "ca.pem", "-out", "o.eml"])
        let r = try await ws.hisp(["smime", "verify", "--anchor", "ca.pem", "--in", "d.eml"])
        r.expectSuccess()
        #expect(r.stdout == (try ws.read("msg.eml")))
    }

    @Test func encryptsToSeveralRecipients() async throws {
        let msg = try message()
        try await ws.hisp(["smime", "encrypt", "--to", "alice.pem", "bob.pem", "--in", msg, "--out", "e.eml"]).expectSuccess()
        for who in ["alice", "bob"] {
            try await ws.mustRun("openssl", ["cms", "-decrypt", "-in", "e.eml", "-recip", "\(who).pem", "-inkey", "\(who).key", "-out", "\(who).out"])
            try await ws.hisp(["smime", "decrypt", "--cert", "\(who).pem", "--key", "\(who).key", "--in", "e.eml"]).expectSuccess()
        }
    }
}

extension ProcessResult {
    func expectSuccess(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(status == 0, "exit \(status): \(stderr)", sourceLocation: sourceLocation)
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return subsequence.isEmpty }
        for i in 0...(count - subsequence.count) where self[i] == subsequence[0] {
            if self[i..<(i + subsequence.count)].elementsEqual(subsequence) { return true }
        }
        return false
    }
}

extension ArraySlice where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool { Array(self).contains(subsequence: subsequence) }
}
