import Foundation
import HISPTesting
import Testing

/// Every refusal exits 1 (security) or 2 (unparseable), prints one line
/// `error: <reason>` naming the check, and writes nothing to stdout or --out.
@Suite struct SecurityFailureTests {
    let ws: Workspace
    let pki: TestPKI

    init() throws {
        ws = try Workspace()
        pki = TestPKI(ws)
        try pki.directPair()
        _ = try ws.write("msg.eml", sampleMessage())
    }

    /// Runs `hisp` expecting a failure with `status` whose one-line reason contains `reason`.
    func expectRefusal(_ args: [String], status: Int32, reason: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let outPath = ws.path("refused.out")
        try? FileManager.default.removeItem(atPath: outPath)
        let r = try await ws.hisp(args + ["--out", outPath])
        #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("error: "), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(reason.isEmpty || r.stderr.contains(reason), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "more than one line: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: outPath), "--out written on failure", sourceLocation: sourceLocation)
    }

    func signed(_ extra: [String] = []) async throws -> String {
        try await ws.hisp(["smime", "sign", "--cert", "alice.pem", "--key", "alice.key", "--in", "msg.eml", "--out", "signed.eml"] + extra)
            .expectSuccess()
        return String(decoding: try ws.read("signed.eml"), as: UTF8.self)
    }

    @Test func rejectsTamperedContent() async throws {
        let text = try await signed()
        _ = try ws.write("t.eml", text.replacingOccurrences(of: "DOB 1970-01-01", with: "DOB 1971-01-01"))
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "t.eml"], status: 1,
                          reason: "content does not match the signed message digest")
    }

    @Test func rejectsTamperedSignature() async throws {
        // Flip bits in the RSA signature value (the last bytes of the SignedData).
        try await ws.hisp(["smime", "sign", "--cert", "alice.pem", "--key", "alice.key", "--in", "msg.eml", "--out", "o.eml", "--opaque"]).expectSuccess()
        try await ws.mustRun("openssl", ["cms", "-sign", "-in", "msg.eml", "-signer", "alice.pem", "-inkey", "alice.key", "-outform", "DER", "-out", "sig.der"])
        var der = try ws.read("sig.der")
        // The signature is the last OCTET STRING of the last SignerInfo; flip a byte near the end.
        der[der.count - 10] ^= 0xFF
        let sig = Data(der).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let msg = String(decoding: try ws.read("msg.eml"), as: UTF8.self)
        let mail = "MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"b1\"\r\n\r\n--b1\r\n"
            + msg.replacingOccurrences(of: "\r\n", with: "\r\n", options: []) + "\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n" + sig + "\r\n--b1--\r\n"
        _ = try ws.write("t.eml", mail)
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "t.eml"], status: 1,
                          reason: "signature verification failed")
    }

    @Test func rejectsSignerNotUnderTheAnchor() async throws {
        try await pki.ca("otherca")
        _ = try await signed()
        try await expectRefusal(["smime", "verify", "--anchor", "otherca.pem", "--in", "signed.eml"], status: 1,
                          reason: "does not chain to an incoming trust anchor")
    }

    @Test func rejectsExpiredSigner() async throws {
        try await pki.leaf("old", ca: "ca", ["--expired"])
        try await ws.hisp(["smime", "sign", "--cert", "old.pem", "--key", "old.key", "--in", "msg.eml", "--out", "signed.eml"]).expectSuccess()
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "signed.eml"], status: 1, reason: "signer not trusted")
        // The same message verifies when evaluated at a time inside the validity.
        let past = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-10 * 86400))
        try await ws.hisp(["smime", "verify", "--anchor", "ca.pem", "--at", past, "--in", "signed.eml"]).expectSuccess()
    }

    @Test func rejectsSHA1Signature() async throws {
        try await ws.mustRun("openssl", ["cms", "-sign", "-md", "sha1", "-in", "msg.eml", "-signer", "alice.pem", "-inkey", "alice.key", "-out", "s.eml"])
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "s.eml"], status: 1, reason: "SHA-1 digest refused")
    }

    @Test func rejects1024BitSigner() async throws {
        try await pki.leaf("small", ca: "ca", ["--bits", "1024"])
        try await ws.mustRun("openssl", ["cms", "-sign", "-in", "msg.eml", "-signer", "small.pem", "-inkey", "small.key", "-out", "s.eml"])
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "s.eml"], status: 1,
                          reason: "RSA key of 1024 bits is below the 2048-bit minimum")
        // And we refuse to produce with it.
        try await expectRefusal(["smime", "sign", "--cert", "small.pem", "--key", "small.key", "--in", "msg.eml"], status: 1,
                          reason: "RSA key of 1024 bits")
        try await expectRefusal(["smime", "encrypt", "--to", "small.pem", "--in", "msg.eml"], status: 1, reason: "RSA key of 1024 bits")
    }

    @Test func rejectsCertificateSignedWithSHA1() async throws {
        try await pki.sha1Leaf("sha1cert", key: "alice", ca: "ca")
        try await ws.mustRun("openssl", ["cms", "-sign", "-in", "msg.eml", "-signer", "sha1cert.pem", "-inkey", "sha1cert.key", "-out", "s.eml"])
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "s.eml"], status: 1,
                          reason: "certificate signed with SHA-1 with RSA refused")
    }

    @Test func rejects3DESContent() async throws {
        try await ws.mustRun("openssl", ["cms", "-encrypt", "-des3", "-in", "msg.eml", "-out", "e.eml", "bob.pem"])
        try await expectRefusal(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "e.eml"], status: 1,
                          reason: "3DES (DES-EDE3-CBC) content encryption refused")
    }

    @Test func rejectsMessageNotAddressedToUs() async throws {
        try await ws.mustRun("openssl", ["cms", "-encrypt", "-aes256", "-in", "msg.eml", "-out", "e.eml", "bob.pem"])
        try await expectRefusal(["smime", "decrypt", "--cert", "alice.pem", "--key", "alice.key", "--in", "e.eml"], status: 1,
                          reason: "message not addressed to our key")
    }

    @Test func rejectsTamperedCiphertext() async throws {
        try await ws.hisp(["smime", "encrypt", "--to", "bob.pem", "--cipher", "aes-256-gcm", "--in", "msg.eml", "--out", "e.eml"]).expectSuccess()
        try await ws.mustRun("openssl", ["cms", "-encrypt", "-aes-256-gcm", "-in", "msg.eml", "-outform", "DER", "-out", "e.der", "bob.pem"])
        var der = try ws.read("e.der")
        der[der.count - 30] ^= 0x01  // inside the ciphertext or tag
        let b64 = Data(der).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        _ = try ws.write("t.eml", "MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=authEnveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n\(b64)\r\n")
        try await expectRefusal(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "t.eml"], status: 1,
                          reason: "AES-GCM authentication failed")
    }

    @Test func rejectsTruncatedInput() async throws {
        let text = try await signed()
        _ = try ws.write("t.eml", String(text.prefix(text.count * 2 / 3)))
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "t.eml"], status: 2, reason: "")
        try await ws.hisp(["smime", "encrypt", "--to", "bob.pem", "--in", "msg.eml", "--out", "e.eml"]).expectSuccess()
        let enc = String(decoding: try ws.read("e.eml"), as: UTF8.self)
        _ = try ws.write("te.eml", String(enc.prefix(enc.count - 200)))
        try await expectRefusal(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "te.eml"], status: 2, reason: "malformed")
    }

    @Test func rejectsGarbageInput() async throws {
        var rng = SystemRandomNumberGenerator()
        let garbage = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        _ = try ws.write("g.bin", garbage)
        try await expectRefusal(["smime", "verify", "--anchor", "ca.pem", "--in", "g.bin"], status: 2, reason: "")
        try await expectRefusal(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "g.bin"], status: 2, reason: "")
        _ = try ws.write("p.eml", "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\r\n")
        try await expectRefusal(["smime", "decrypt", "--cert", "bob.pem", "--key", "bob.key", "--in", "p.eml"], status: 2, reason: "malformed CMS")
    }

    @Test func refusesEncryptionToECCertificates() async throws {
        try await pki.leaf("ec", ca: "ca", ["--ec", "p256"])
        try await expectRefusal(["smime", "encrypt", "--to", "ec.pem", "--in", "msg.eml"], status: 2,
                          reason: "encryption to EC certificates (key agreement) is not supported")
    }

    @Test func usageErrorsExitTwo() async throws {
        let r = try await ws.hisp(["smime", "sign", "--key", "alice.key"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--cert"))
        let r2 = try await ws.hisp(["smime", "nonsense"])
        #expect(r2.status == 2)
        let r3 = try await ws.hisp(["smime", "verify", "--anchor", "missing.pem", "--in", "msg.eml"])
        #expect(r3.status == 2)
        #expect(r3.stderr.hasPrefix("error: cannot read missing.pem"))
        let help = try await ws.hisp(["smime", "--help"])
        #expect(help.status == 0)
        #expect(help.stdoutText.contains("encrypt"))
    }
}
