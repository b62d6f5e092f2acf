import Foundation
import HISPTesting
import Testing

/// `hisp ca create`, `hisp cert issue` and `hisp crl issue`, checked by
/// OpenSSL: the chains verify, the Direct profile is in the certificates,
/// and OpenSSL applies our CRLs.
@Suite struct CertificateAuthorityTests {
    let ws: Workspace

    init() throws { ws = try Workspace() }

    @discardableResult
    func hisp(_ args: [String]) throws -> ProcessResult { try ws.mustRun(Tools.hisp, args) }

    /// Root (RSA) -> intermediate -> address- and domain-bound leaves.
    func makeChain(rootKey: String = "rsa2048", leafKey: String = "rsa2048", pointers: Bool = true) async throws {
        let interPointers = pointers ? ["--crl-url", "http://127.0.0.1:1/root.crl", "--aia-url", "http://127.0.0.1:1/root.cer"] : []
        let leafPointers = pointers ? ["--crl-url", "http://127.0.0.1:1/inter.crl", "--aia-url", "http://127.0.0.1:1/inter.cer"] : []
        try hisp(["ca", "create", "--subject", "CN=Example Direct Root,O=Example Clinic,C=US", "--key", rootKey,
                  "--out-cert", "root.pem", "--out-key", "root.key"])
        try hisp(["ca", "create", "--subject", "CN=Example Direct Issuing CA,O=Example Clinic", "--key", rootKey,
                  "--issuer-cert", "root.pem", "--issuer-key", "root.key"] + interPointers + [
                  "--out-cert", "inter.pem", "--out-key", "inter.key"])
        try hisp(["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key",
                  "--address", "alice@direct.example.org", "--key", leafKey, "--usage", leafKey.hasPrefix("p") ? "sign" : "both",
                  "--policy", "1.3.6.1.4.1.41179.1.3", "--out-cert", "alice.pem", "--out-key", "alice.key"] + leafPointers)
        try hisp(["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key",
                  "--domain", "direct.example.org", "--usage", "encrypt", "--out-cert", "org.pem", "--out-key", "org.key"])
    }

    @Test(arguments: [("rsa2048", "rsa2048"), ("p384", "p256"), ("rsa3072", "p384")])
    func opensslVerifiesTheChainsWeIssue(keys: (String, String)) async throws {
        try await makeChain(rootKey: keys.0, leafKey: keys.1)
        for leaf in ["alice.pem", "org.pem"] {
            let r = try await ws.mustRun("openssl", ["verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "inter.pem", leaf])
            #expect(r.stdoutText.contains("\(leaf): OK"))
        }
        // Without the intermediate the chain does not verify: the leaf is not signed by the root.
        #expect(try await ws.run("openssl", ["verify", "-CAfile", "root.pem", "alice.pem"]).status != 0)
    }

    @Test func certificatesFollowTheDirectProfile() async throws {
        try await makeChain()
        let alice = try await ws.mustRun("openssl", ["x509", "-in", "alice.pem", "-noout", "-text"]).stdoutText
        #expect(alice.contains("email:alice@direct.example.org"))
        #expect(alice.contains("Key Usage: critical"))
        #expect(alice.contains("Digital Signature, Key Encipherment"))
        #expect(alice.contains("CA:FALSE"))
        #expect(alice.contains("URI:http://127.0.0.1:1/inter.crl"))
        #expect(alice.contains("CA Issuers - URI:http://127.0.0.1:1/inter.cer"))
        #expect(alice.contains("Policy: 1.3.6.1.4.1.41179.1.3"))
        #expect(alice.contains("Signature Algorithm: sha256WithRSAEncryption"))
        #expect(alice.contains("Subject Key Identifier") && alice.contains("Authority Key Identifier"))
        let org = try await ws.mustRun("openssl", ["x509", "-in", "org.pem", "-noout", "-text"]).stdoutText
        #expect(org.contains("DNS:direct.example.org"))
        #expect(org.contains("Key Encipherment") && !org.contains("Digital Signature"))
        let root = try await ws.mustRun("openssl", ["x509", "-in", "root.pem", "-noout", "-text"]).stdoutText
        #expect(root.contains("CA:TRUE") && root.contains("Certificate Sign, CRL Sign"))
        // RFC 4514 writes the most specific RDN first; the Name holds it last.
        #expect(root.contains("Subject: C = US, O = Example Clinic, CN = Example Direct Root"))
        // Serial numbers come from a CSPRNG: 20 bytes, never repeated.
        let serials = try ["root.pem", "inter.pem", "alice.pem", "org.pem"].map {
            try ws.mustRun("openssl", ["x509", "-in", $0, "-noout", "-serial"]).stdoutText
        }
        #expect(Set(serials).count == 4)
        // Private keys are PKCS#8, readable by OpenSSL, and only by their owner.
        try await ws.mustRun("openssl", ["pkey", "-in", "alice.key", "-noout"])
        let mode = try FileManager.default.attributesOfItem(atPath: ws.path("alice.key"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func certificatesWeIssueSignAndEncryptDirectMessages() async throws {
        // No CRL distribution points here: revocation is exercised in TrustTests.
        try await makeChain(pointers: false)
        let message = sampleMessage()
        _ = try ws.write("msg.eml", message)
        try hisp(["smime", "sign", "--cert", "alice.pem", "--key", "alice.key", "--chain", "inter.pem", "--in", "msg.eml", "--out", "s.eml"])
        try hisp(["smime", "encrypt", "--to", "alice.pem", "--in", "s.eml", "--out", "e.eml"])
        try hisp(["smime", "decrypt", "--cert", "alice.pem", "--key", "alice.key", "--in", "e.eml", "--out", "d.eml"])
        try hisp(["smime", "verify", "--anchor", "root.pem", "--in", "d.eml", "--out", "v.eml"])
        #expect(try ws.read("v.eml") == message)
    }

    @Test func opensslAppliesOurCRL() async throws {
        try await makeChain()
        try hisp(["crl", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key",
                  "--revoke-cert", "alice.pem", "--revoke-serial", "0a:ff", "--out", "inter.crl"])
        let text = try await ws.mustRun("openssl", ["crl", "-inform", "DER", "-in", "inter.crl", "-noout", "-text"]).stdoutText
        #expect(text.contains("Version 2"))
        #expect(text.contains("CRL Number"))
        #expect(text.contains("Serial Number: 0AFF"))
        try await ws.mustRun("openssl", ["crl", "-inform", "DER", "-in", "inter.crl", "-out", "inter-crl.pem"])
        try hisp(["crl", "issue", "--issuer-cert", "root.pem", "--issuer-key", "root.key", "--format", "pem", "--out", "root-crl.pem"])
        let both = try String(contentsOfFile: ws.path("inter-crl.pem"), encoding: .utf8)
            + String(contentsOfFile: ws.path("root-crl.pem"), encoding: .utf8)
        _ = try ws.write("crls.pem", both)
        let revoked = try await ws.run("openssl", ["verify", "-crl_check_all", "-CRLfile", "crls.pem", "-CAfile", "root.pem",
                                              "-untrusted", "inter.pem", "alice.pem"])
        #expect(revoked.status != 0)
        #expect((revoked.stdoutText + revoked.stderr).contains("certificate revoked"))
        let valid = try await ws.run("openssl", ["verify", "-crl_check_all", "-CRLfile", "crls.pem", "-CAfile", "root.pem",
                                            "-untrusted", "inter.pem", "org.pem"])
        #expect(valid.status == 0, "\(valid.stdoutText) \(valid.stderr)")
    }

    @Test func refusesWhatCannotBeIssued() async throws {
        try await makeChain()
        func refused(_ args: [String], _ reason: String, status: Int32 = 2, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let r = try await ws.hisp(args)
            #expect(r.status == status, "\(r.status) \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.contains(reason), "\(r.stderr)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: ws.path("x.pem")), sourceLocation: sourceLocation)
        }
        let issue = ["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key", "--out-cert", "x.pem"]
        try await refused(issue + ["--address", "a@direct.example.org", "--key", "p256", "--usage", "encrypt", "--out-key", "x1.key"],
                    "an EC key can only sign")
        try await refused(issue + ["--address", "not-an-address", "--out-key", "x2.key"], "not a Direct address")
        try await refused(issue + ["--domain", "bad_domain", "--out-key", "x3.key"], "not a domain name")
        try await refused(issue + ["--address", "a@direct.example.org", "--policy", "DirectTrust", "--out-key", "x4.key"], "not a dotted OID")
        try await refused(issue + ["--address", "a@direct.example.org", "--crl-url", "ftp://x", "--out-key", "x5.key"], "not an http:// or https:// URL")
        // A leaf is not a CA: it cannot issue.
        try await refused(["cert", "issue", "--issuer-cert", "alice.pem", "--issuer-key", "alice.key", "--address", "b@direct.example.org",
                     "--out-cert", "x.pem", "--out-key", "x6.key"], "is not a CA certificate")
        // The key must belong to the issuer certificate.
        try await refused(["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "root.key", "--address", "b@direct.example.org",
                     "--out-cert", "x.pem", "--out-key", "x7.key"], "does not belong to the issuer certificate")
        // An existing key is never overwritten.
        try await refused(issue + ["--address", "b@direct.example.org", "--out-key", "alice.key"], "a private key is never overwritten")
        try await refused(["ca", "create", "--subject", "CN=x,Q=y", "--out-cert", "x.pem", "--out-key", "x8.key"], "unknown attribute type \"Q\"")
        try await refused(["ca", "create", "--subject", "CN=x,C=USA", "--out-cert", "x.pem", "--out-key", "x9.key"], "two-letter code")
    }

    @Test func datesOutsideTheIssuerAreTakenWithAWarning() async throws {
        try await makeChain()
        let r = try await ws.hisp(["cert", "issue", "--issuer-cert", "inter.pem", "--issuer-key", "inter.key",
                             "--address", "old@direct.example.org", "--not-before", "2020-01-01T00:00:00Z",
                             "--not-after", "2021-01-01T00:00:00Z", "--out-cert", "old.pem", "--out-key", "old.key"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: the validity 2020-01-01 to 2021-01-01 is outside the issuer's"))
        let dates = try await ws.mustRun("openssl", ["x509", "-in", "old.pem", "-noout", "-dates"]).stdoutText
        #expect(dates.contains("notBefore=Jan  1 00:00:00 2020 GMT") && dates.contains("notAfter=Jan  1 00:00:00 2021 GMT"))
        // OpenSSL agrees the certificate is expired.
        #expect(try await ws.run("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "old.pem"]).status != 0)
    }
}
