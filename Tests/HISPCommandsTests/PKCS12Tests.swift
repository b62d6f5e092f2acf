import Foundation
import HISPTesting
import Testing

/// `hisp pkcs12 export|import` against OpenSSL both ways: OpenSSL reads what
/// we write, we read what OpenSSL 3 writes by default and with `-legacy`
/// (3DES key bag, RC2-40 certificates, SHA-1 MAC, as Windows exports).
@Suite struct PKCS12Tests {
    let ws: Workspace

    init() throws {
        ws = try Workspace()
        // Root -> address certificate, issued by our own CA tooling.
        try ws.mustRun(Tools.hisp, ["ca", "create", "--subject", "CN=P12 Root", "--out-cert", "root.pem", "--out-key", "root.key"])
        for (name, key, usage) in [("alice", "rsa2048", "both"), ("ec", "p256", "sign")] {
            try ws.mustRun(Tools.hisp, ["cert", "issue", "--issuer-cert", "root.pem", "--issuer-key", "root.key", "--key", key, "--usage", usage,
                                        "--address", "\(name)@direct.example.org", "--out-cert", "\(name).pem", "--out-key", "\(name).key"])
        }
        _ = try ws.write("pw", "correct horse battery staple\n")
    }

    /// The public key of a private key file, as OpenSSL sees it.
    func publicKey(_ keyFile: String) async throws -> String {
        try await ws.mustRun("openssl", ["pkey", "-in", keyFile, "-pubout"]).stdoutText
    }

    func certificateDER(_ file: String) async throws -> [UInt8] {
        try await ws.mustRun("openssl", ["x509", "-in", file, "-outform", "DER"]).stdout
    }

    @Test(arguments: ["alice", "ec"])
    func opensslReadsWhatWeExport(name: String) async throws {
        let r = try await ws.mustRun(Tools.hisp, ["pkcs12", "export", "--cert", "\(name).pem", "--key", "\(name).key", "--chain", "root.pem",
                                            "--password-file", "pw", "--out", "\(name).p12"])
        #expect(r.stdoutText.contains("2 certificate(s) for \(name)@direct.example.org"))
        let attributes = try FileManager.default.attributesOfItem(atPath: ws.path("\(name).p12"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let info = try await ws.mustRun("openssl", ["pkcs12", "-info", "-noout", "-in", "\(name).p12", "-passin", "file:pw"]).stderr
        #expect(info.contains("MAC: sha256, Iteration 600000"))
        #expect(info.contains("Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"))
        #expect(info.contains("PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC"))
        try await ws.mustRun("openssl", ["pkcs12", "-in", "\(name).p12", "-passin", "file:pw", "-nocerts", "-nodes", "-out", "back.key"])
        try await ws.mustRun("openssl", ["pkcs12", "-in", "\(name).p12", "-passin", "file:pw", "-clcerts", "-nokeys", "-out", "back.pem"])
        try await ws.mustRun("openssl", ["pkcs12", "-in", "\(name).p12", "-passin", "file:pw", "-cacerts", "-nokeys", "-out", "back-ca.pem"])
        #expect(try await publicKey("back.key") == publicKey("\(name).key"))
        #expect(try await certificateDER("back.pem") == certificateDER("\(name).pem"))
        #expect(try await certificateDER("back-ca.pem") == certificateDER("root.pem"))
        // The friendly name a mail client shows is the address.
        let dump = try await ws.mustRun("openssl", ["pkcs12", "-in", "\(name).p12", "-passin", "file:pw", "-nodes"]).stdoutText
        #expect(dump.contains("friendlyName: \(name)@direct.example.org"))
    }

    @Test(arguments: [[], ["-legacy"]])
    func weReadWhatOpenSSLExports(flags: [String]) async throws {
        try await ws.mustRun("openssl", ["pkcs12", "-export"] + flags + ["-in", "alice.pem", "-inkey", "alice.key", "-certfile", "root.pem",
                                                                    "-passout", "file:pw", "-out", "openssl.p12"])
        let r = try await ws.mustRun(Tools.hisp, ["pkcs12", "import", "--in", "openssl.p12", "--password-file", "pw",
                                            "--out-cert", "in.pem", "--out-key", "in.key", "--out-chain", "in-chain.pem"])
        #expect(try await publicKey("in.key") == publicKey("alice.key"))
        #expect(try await certificateDER("in.pem") == certificateDER("alice.pem"))
        #expect(try await certificateDER("in-chain.pem") == certificateDER("root.pem"))
        let keyMode = try FileManager.default.attributesOfItem(atPath: ws.path("in.key"))[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        if flags.isEmpty {
            #expect(r.stdoutText.contains("private key: PBES2 (PBKDF2-HMAC-SHA-256, 2048 iterations, AES-256-CBC)"))
            #expect(r.stdoutText.contains("MAC SHA-256"))
        } else {
            #expect(r.stdoutText.contains("private key: pbeWithSHAAnd3-KeyTripleDES-CBC (legacy"))
            #expect(r.stdoutText.contains("certificates: pbeWithSHAAnd40BitRC2-CBC (legacy"))
            #expect(r.stdoutText.contains("MAC SHA-1"))
        }
        // The imported pair signs a message that verifies against the root.
        _ = try ws.write("msg", sampleMessage())
        try await ws.mustRun(Tools.hisp, ["smime", "sign", "--cert", "in.pem", "--key", "in.key", "--in", "msg", "--out", "signed"])
        try await ws.mustRun(Tools.hisp, ["smime", "verify", "--anchor", "root.pem", "--in", "signed", "--out", "verified"])
    }

    @Test func aWrongPasswordIsOneClearLineAndWritesNothing() async throws {
        try await ws.mustRun("openssl", ["pkcs12", "-export", "-legacy", "-in", "alice.pem", "-inkey", "alice.key", "-passout", "file:pw", "-out", "legacy.p12"])
        _ = try ws.write("wrong", "Correct horse battery staple\n")
        let r = try await ws.hisp(["pkcs12", "import", "--in", "legacy.p12", "--password-file", "wrong", "--out-cert", "x.pem", "--out-key", "x.key"])
        #expect(r.status == 1)
        #expect(r.stderr == "error: legacy.p12: wrong password (or a damaged file): the PKCS#12 integrity check failed\n")
        #expect(!FileManager.default.fileExists(atPath: ws.path("x.key")) && !FileManager.default.fileExists(atPath: ws.path("x.pem")))
        // A damaged file says the same, not garbage: flip a byte inside the authenticated content.
        var bytes = try ws.read("legacy.p12")
        bytes[bytes.count / 2] ^= 0x01
        _ = try ws.write("damaged.p12", bytes)
        let d = try await ws.hisp(["pkcs12", "import", "--in", "damaged.p12", "--password-file", "pw", "--out-cert", "x.pem", "--out-key", "x.key"])
        #expect(d.status != 0 && d.stderr.hasPrefix("error: damaged.p12: "), "\(d.stderr)")
    }

    @Test func exportRefusesMistakes() async throws {
        func export(_ args: [String]) throws -> ProcessResult { try ws.hisp(["pkcs12", "export"] + args) }
        let mismatched = try export(["--cert", "alice.pem", "--key", "ec.key", "--password-file", "pw", "--out", "m.p12"])
        #expect(mismatched.status == 2 && mismatched.stderr.contains("ec.key is not the private key of alice.pem"), "\(mismatched.stderr)")
        _ = try ws.write("short", "secret\n")
        let short = try export(["--cert", "alice.pem", "--key", "alice.key", "--password-file", "short", "--out", "s.p12"])
        #expect(short.status == 2 && short.stderr.contains("use at least 8"), "\(short.stderr)")
        _ = try ws.write("exists.p12", "keep me")
        let exists = try export(["--cert", "alice.pem", "--key", "alice.key", "--password-file", "pw", "--out", "exists.p12"])
        #expect(exists.status == 2)
        #expect(try ws.read("exists.p12") == Array("keep me".utf8))
        #expect(!FileManager.default.fileExists(atPath: ws.path("m.p12")) && !FileManager.default.fileExists(atPath: ws.path("s.p12")))
    }
}
