import Foundation
import HISPTesting
import Testing

/// `hisp trust check`: the Direct trust policy with revocation and AIA over
/// real HTTP on loopback, and the DCDT-shaped refusals, each naming its check.
@Suite struct TrustTests {
    let ws: Workspace
    let server: HTTPTestServer
    let published: String

    init() async throws {
        ws = try Workspace()
        let published = ws.path("www")
        self.published = published
        try FileManager.default.createDirectory(atPath: published, withIntermediateDirectories: true)
        server = try await offThePool { try HTTPTestServer(directory: published) }
    }

    @discardableResult
    func hisp(_ args: [String]) throws -> ProcessResult { try ws.mustRun(Tools.hisp, args) }

    func publish(_ file: String, as name: String) throws {
        try FileManager.default.copyItem(atPath: ws.path(file), toPath: published + "/" + name)
    }

    /// Root -> intermediate (published at its AIA URL, with a CRL) -> alice and bob.
    func makePKI(publishCRL: Bool = true) async throws {
        try hisp(["ca", "create", "--subject", "CN=Trust Root,O=Example", "--out-cert", "root.pem", "--out-key", "root.key"])
        try hisp(["ca", "create", "--subject", "CN=Trust Issuing CA,O=Example", "--issuer-cert", "root.pem", "--issuer-key", "root.key",
                  "--out-cert", "inter.pem", "--out-key", "inter.key"])
        for (name, usage) in [("alice", "both"), ("bob", "encrypt")] {
            try hisp(["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key", "--address", "\(name)@direct.example.org",
                      "--usage", usage, "--crl-url", server.url("inter.crl"), "--aia-url", server.url("inter.cer"),
                      "--out-cert", "\(name).pem", "--out-key", "\(name).key"])
        }
        try await ws.mustRun("openssl", ["x509", "-in", "inter.pem", "-outform", "DER", "-out", "inter.der"])
        try publish("inter.der", as: "inter.cer")
        if publishCRL {
            try hisp(["crl", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key", "--out", "inter.crl"])
            try publish("inter.crl", as: "inter.crl")
        }
    }

    func check(_ args: [String]) async throws -> ProcessResult {
        try await ws.run(Tools.hisp, ["trust", "check"] + args)
    }

    func expectRefused(_ r: ProcessResult, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("error: not trusted: "), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(reason), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stdoutText.contains("verdict: not trusted"), sourceLocation: sourceLocation)
    }

    @Test func trustsAValidChainAfterCheckingItsCRL() async throws {
        try await makePKI()
        let r = try await check(["--cert", "alice.pem", "--address", "alice@direct.example.org", "--anchor", "root.pem",
                           "--intermediate", "inter.pem"])
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        #expect(r.stdoutText.contains("binding            passed  address-bound to alice@direct.example.org"))
        #expect(r.stdoutText.contains("revocation         passed  CN=alice@direct.example.org not revoked (CRL \(server.url("inter.crl")))"))
        #expect(r.stdoutText.contains("verdict: trusted; chain: CN=alice@direct.example.org <- CN=Trust Issuing CA,O=Example <- CN=Trust Root,O=Example"))
    }

    @Test func fetchesAMissingIntermediateFromAIA() async throws {
        try await makePKI()
        let r = try await check(["--cert", "alice.pem", "--anchor", "root.pem"])
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        #expect(r.stdoutText.contains("AIA                passed  fetched CN=Trust Issuing CA,O=Example from \(server.url("inter.cer"))"))
        // Offline, the same question has no answer: the intermediate is missing.
        await expectRefused(try check(["--cert", "alice.pem", "--anchor", "root.pem", "--offline", "--revocation-unreachable", "accept"]),
                      "chain failed for subject CN=alice@direct.example.org")
    }

    @Test func rejectsARevokedCertificateAsOpenSSLDoes() async throws {
        try await makePKI()
        try hisp(["crl", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key", "--revoke-cert", "alice.pem",
                  "--out", "revoked.crl"])
        try FileManager.default.removeItem(atPath: published + "/inter.crl")
        try publish("revoked.crl", as: "inter.crl")
        let r = try await check(["--cert", "alice.pem", "--anchor", "root.pem", "--intermediate", "inter.pem"])
        expectRefused(r, "revocation failed for subject CN=alice@direct.example.org")
        #expect(r.stderr.contains("is revoked (CRL \(server.url("inter.crl")))"))
        // Bob, on the same CRL, is not revoked.
        #expect(try await check(["--cert", "bob.pem", "--purpose", "encrypt", "--anchor", "root.pem", "--intermediate", "inter.pem"]).status == 0)
        // OpenSSL, given the same CRL, agrees on both.
        try await ws.mustRun("openssl", ["crl", "-inform", "DER", "-in", "revoked.crl", "-out", "revoked-crl.pem"])
        let args = ["verify", "-crl_check", "-CRLfile", "revoked-crl.pem", "-CAfile", "root.pem", "-untrusted", "inter.pem"]
        #expect(try await ws.run("openssl", args + ["alice.pem"]).status != 0)
        #expect(try await ws.run("openssl", args + ["bob.pem"]).status == 0)
    }

    @Test func anUnreachableCRLFailsClosedUnlessConfiguredOtherwise() async throws {
        try await makePKI(publishCRL: false)  // the distribution point answers 404
        let args = ["--cert", "alice.pem", "--anchor", "root.pem", "--intermediate", "inter.pem"]
        let r = try await check(args)
        expectRefused(r, "revocation failed")
        #expect(r.stderr.contains("HTTP 404") && r.stderr.contains("(policy: fail closed)"))
        let accepted = try await check(args + ["--revocation-unreachable", "accept"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(accepted.stdoutText.contains("revocation         warning") && accepted.stdoutText.contains("accepted without revocation check"))
    }

    @Test func namesTheFailedCheckForEachDCDTShapedCase() async throws {
        try await makePKI()
        let base = ["--anchor", "root.pem", "--intermediate", "inter.pem"]
        // Wrong SAN.
        await expectRefused(try check(["--cert", "alice.pem", "--address", "bob@direct.example.org"] + base),
                      "binding failed for subject CN=alice@direct.example.org, serial ")
        // Wrong key usage: bob's certificate is for encryption only.
        await expectRefused(try check(["--cert", "bob.pem", "--purpose", "sign"] + base), "key usage failed")
        // Expired.
        try hisp(["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key", "--address", "old@direct.example.org",
                  "--not-before", "2020-01-01T00:00:00Z", "--not-after", "2021-01-01T00:00:00Z", "--out-cert", "old.pem", "--out-key", "old.key"])
        await expectRefused(try check(["--cert", "old.pem"] + base), "validity failed for subject CN=old@direct.example.org")
        // A valid certificate evaluated at a time after it expires (--at) is refused the same way.
        await expectRefused(try check(["--cert", "alice.pem", "--at", "2200-01-01T00:00:00Z"] + base), "validity failed for subject CN=alice@direct.example.org")
        // An incoming-only anchor does not let us encrypt (send) to the certificate.
        let r = try await check(["--cert", "bob.pem", "--purpose", "encrypt", "--incoming-anchor", "root.pem", "--intermediate", "inter.pem"])
        expectRefused(r, "trust anchor failed")
        #expect(r.stderr.contains("no outgoing trust anchor (1 anchor(s) configured for the other direction only)"))
        #expect(try await check(["--cert", "bob.pem", "--purpose", "encrypt", "--outgoing-anchor", "root.pem", "--intermediate", "inter.pem"]).status == 0)
        // A required policy the certificate does not assert.
        await expectRefused(try check(["--cert", "alice.pem", "--policy", "1.3.6.1.4.1.41179.1.3"] + base), "certificate policy failed")
    }

    @Test func refusesWeakCertificatesByName() async throws {
        let pki = TestPKI(ws)
        try await pki.ca("ca")
        try await pki.leaf("small", ca: "ca", ["--bits", "1024", "--email", "small@direct.example.org"])
        await expectRefused(try check(["--cert", "small.pem", "--anchor", "ca.pem"]), "RSA key of 1024 bits is below the 2048-bit minimum")
        try await pki.leaf("alice", ca: "ca", ["--email", "alice@direct.example.org"])
        try await pki.sha1Leaf("sha1cert", key: "alice", ca: "ca")
        await expectRefused(try check(["--cert", "sha1cert.pem", "--anchor", "ca.pem"]), "certificate signed with SHA-1 with RSA refused")
        // Signed by a CA that is not an anchor.
        try await pki.ca("other")
        await expectRefused(try check(["--cert", "alice.pem", "--anchor", "other.pem"]), "does not chain to an incoming trust anchor")
    }

    @Test func readsAnchorsFromAPKCS7Bundle() async throws {
        try await makePKI()
        try await ws.mustRun("openssl", ["crl2pkcs7", "-nocrl", "-certfile", "root.pem", "-outform", "DER", "-out", "bundle.p7b"])
        #expect(try await check(["--cert", "alice.pem", "--bundle", "bundle.p7b", "--intermediate", "inter.pem"]).status == 0)
        // Over plain HTTP an unsigned bundle could have been swapped on the way: refused, naming why.
        try publish("bundle.p7b", as: "bundle.p7b")
        let plain = try await check(["--cert", "alice.pem", "--bundle", server.url("bundle.p7b")])
        #expect(plain.status == 1)
        #expect(plain.stderr.contains("bundle transport failed: an unsigned bundle must come from a file or an https:// URL"), "\(plain.stderr)")
    }

    /// A bundle wrapped in CMS SignedData by OpenSSL, its signer issued by a bundle-signing root.
    func makeSignedBundle(signerRoot: String, name: String) async throws {
        try hisp(["ca", "create", "--subject", "CN=\(signerRoot),O=Bundle Operator", "--out-cert", "\(signerRoot).pem", "--out-key", "\(signerRoot).key"])
        try hisp(["cert", "issue", "--issuer-cert", "\(signerRoot).pem", "--issuer-key", "\(signerRoot).key", "--domain", "bundles.example.net",
                  "--usage", "sign", "--out-cert", "\(name)-signer.pem", "--out-key", "\(name)-signer.key"])
        try await ws.mustRun("openssl", ["crl2pkcs7", "-nocrl", "-certfile", "root.pem", "-outform", "DER", "-out", "\(name).p7b"])
        try await ws.mustRun("openssl", ["cms", "-sign", "-nodetach", "-binary", "-in", "\(name).p7b", "-signer", "\(name)-signer.pem",
                                   "-inkey", "\(name)-signer.key", "-outform", "DER", "-out", "\(name).p7m"])
        try publish("\(name).p7m", as: "\(name).p7m")
    }

    @Test func acceptsASignedBundleOnlyFromItsSigner() async throws {
        try await makePKI()
        try await makeSignedBundle(signerRoot: "Bundle Signing Root", name: "signed")
        let url = server.url("signed.p7m")
        let ok = try await check(["--cert", "alice.pem", "--bundle", url, "--bundle-signer", "Bundle Signing Root.pem"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdoutText.contains("bundle \(url): signed by CN=bundles.example.net"))
        // Signed, but nothing configured to check the signature with.
        let unchecked = try await check(["--cert", "alice.pem", "--bundle", url])
        #expect(unchecked.status == 1 && unchecked.stderr.contains("bundle signature failed: the bundle is signed, but no bundle-signing anchor"),
                "\(unchecked.stderr)")
        // Signed by someone who does not chain to the configured bundle-signing anchor.
        try await makeSignedBundle(signerRoot: "Impostor Root", name: "forged")
        let forged = try await check(["--cert", "alice.pem", "--bundle", server.url("forged.p7m"), "--bundle-signer", "Bundle Signing Root.pem"])
        #expect(forged.status == 1, "\(forged.stderr)")
        #expect(forged.stderr.contains("bundle signer failed: chain failed for subject CN=bundles.example.net"), "\(forged.stderr)")
        // A signing anchor configured but the bundle unsigned.
        let unsigned = try await check(["--cert", "alice.pem", "--bundle", "signed.p7b", "--bundle-signer", "Bundle Signing Root.pem"])
        #expect(unsigned.status == 1 && unsigned.stderr.contains("the bundle is not signed"), "\(unsigned.stderr)")
    }

    @Test func asksTheOCSPResponderTheCertificateNames() async throws {
        try hisp(["ca", "create", "--subject", "CN=OCSP Root", "--out-cert", "root.pem", "--out-key", "root.key"])
        let port = try OCSPTestResponder.freePort(ws)
        for name in ["carol", "dave"] {
            try hisp(["cert", "issue", "--issuer-cert", "root.pem", "--issuer-key", "root.key", "--address", "\(name)@direct.example.org",
                      "--ocsp-url", "http://127.0.0.1:\(port)", "--out-cert", "\(name).pem", "--out-key", "\(name).key"])
        }
        func serial(_ cert: String) async throws -> String {
            try await ws.mustRun("openssl", ["x509", "-in", cert, "-noout", "-serial"]).stdoutText.split(separator: "=")[1]
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try await ws.write("index.txt", OCSPTestResponder.index([(try serial("carol.pem"), false), (try serial("dave.pem"), true)]))
        let responder = try await offThePool { try OCSPTestResponder(workspace: ws, index: "index.txt", caCert: "root.pem", caKey: "root.key", port: port) }

        let good = try await check(["--cert", "carol.pem", "--anchor", "root.pem"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdoutText.contains("OCSP               passed  CN=carol@direct.example.org good (responder http://127.0.0.1:\(port))"))
        // OpenSSL's own client agrees with both answers.
        let opensslGood = try await ws.mustRun("openssl", ["ocsp", "-issuer", "root.pem", "-cert", "carol.pem", "-url", responder.url, "-CAfile", "root.pem"])
        #expect(opensslGood.stdoutText.contains("carol.pem: good"))
        let revoked = try await check(["--cert", "dave.pem", "--anchor", "root.pem"])
        expectRefused(revoked, "OCSP failed for subject CN=dave@direct.example.org")
        #expect(revoked.stderr.contains("is revoked through OCSP"), "\(revoked.stderr)")
        let opensslRevoked = try await ws.mustRun("openssl", ["ocsp", "-issuer", "root.pem", "-cert", "dave.pem", "-url", responder.url, "-CAfile", "root.pem"])
        #expect(opensslRevoked.stdoutText.contains("dave.pem: revoked"))

        // The responder gone: fail closed by default, a warning when configured to accept.
        responder.stop()
        let down = try await check(["--cert", "carol.pem", "--anchor", "root.pem"])
        expectRefused(down, "OCSP failed")
        #expect(down.stderr.contains("OCSP responder http://127.0.0.1:\(port) unreachable") && down.stderr.contains("(policy: fail closed)"), "\(down.stderr)")
        let accepted = try await check(["--cert", "carol.pem", "--anchor", "root.pem", "--revocation-unreachable", "accept"])
        #expect(accepted.status == 0 && accepted.stdoutText.contains("OCSP               warning"), "\(accepted.stdoutText)")
    }
}
