import Foundation
import HISPTesting
import Testing

/// The ONC Direct Certificate Discovery Tool's discovery cases D1-D18,
/// reproduced with certificates made at test time, NSD serving the DNS side
/// and two slapd servers the LDAP side; and the hosting cases H1-H2 against
/// our own DNS server. Each case asks `hisp discover` and checks exactly which
/// certificates it chose.
@Suite struct DCDTTests {
    let ws: Workspace
    let zone = "dcdt.test"

    init() throws { ws = try Workspace() }

    /// Issues a certificate from `issuer`; returns its DER.
    @discardableResult
    func issue(_ name: String, address: String? = nil, domain: String? = nil, expired: Bool = false, issuer: String = "root",
               key: String = "rsa2048", extra: [String] = []) throws -> [UInt8] {
        var args = ["cert", "issue", "--issuer-cert", "\(issuer).pem", "--issuer-key", "\(issuer).key", "--key", key,
                    "--out-cert", "\(name).pem", "--out-key", "\(name).key"] + extra
        if let address { args += ["--address", address] }
        if let domain { args += ["--domain", domain] }
        if expired { args += ["--not-before", "2020-01-01T00:00:00Z", "--not-after", "2021-01-01T00:00:00Z"] }
        try ws.mustRun(Tools.hisp, args)
        return try der("\(name).pem")
    }

    /// The DER of the first certificate in a PEM file.
    func der(_ pemFile: String) throws -> [UInt8] {
        let text = String(decoding: try ws.read(pemFile), as: UTF8.self)
        let first = text.components(separatedBy: "-----END CERTIFICATE-----").first ?? ""
        let body = first.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Array(Data(base64Encoded: body) ?? Data())
    }

    func sha256(_ der: [UInt8]) async throws -> String {
        _ = try ws.write("fp.der", der)
        let out = try await ws.mustRun("openssl", ["dgst", "-sha256", "-r", "fp.der"]).stdoutText
        return String(out.prefix(64))
    }

    func cert(_ owner: String, _ der: [UInt8]) -> String { "\(owner) 300 IN CERT PKIX 0 0 \(Data(der).base64EncodedString())\n" }

    struct Outcome: Decodable {
        struct Candidate: Decodable { let source: String; let sha256: String; let verdict: String; let reason: String? }
        let candidates: [Candidate]
        let chosen: [String]
        let errors: [String]
    }

    func discover(_ address: String, dns: Int, anchor: String = "root.pem") async throws -> (status: Int32, outcome: Outcome?) {
        let r = try await ws.run(Tools.hisp, ["discover", address, "--dns-server", "127.0.0.1:\(dns)", "--anchor", anchor, "--timeout", "2", "--json"])
        return (r.status, try? JSONDecoder().decode(Outcome.self, from: Data(r.stdout)))
    }

    @Test func discoveryCasesD1ToD18() async throws {
        // Revocation (D17) and AIA (D18) are fetched over HTTP.
        let www = ws.path("www")
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        let http = try await offThePool { try HTTPTestServer(directory: www) }
        try await ws.mustRun(Tools.hisp, ["ca", "create", "--subject", "CN=DCDT Root", "--out-cert", "root.pem", "--out-key", "root.key"])
        try await ws.mustRun(Tools.hisp, ["ca", "create", "--subject", "CN=DCDT Intermediate", "--issuer-cert", "root.pem", "--issuer-key", "root.key",
                                    "--out-cert", "inter.pem", "--out-key", "inter.key"])
        _ = try ws.write("www/inter.der", try der("inter.pem"))
        let crlURL = http.url("root.crl")

        var z = "$ORIGIN \(zone).\n$TTL 300\n@ IN SOA ns.\(zone). hostmaster.\(zone). 1 3600 600 86400 60\n@ IN NS ns.\(zone).\n"
        z += "ns IN A 127.0.0.1\nldap IN A 127.0.0.1\n"
        var ldapA: [SlapdServer.Entry] = []
        var ldapB: [SlapdServer.Entry] = []
        let suffix = "dc=dcdt,dc=test"
        var expected: [String: [[UInt8]]] = [:]
        func addr(_ n: Int) -> String { "user@d\(n).\(zone)" }
        func dom(_ n: Int) -> String { "d\(n).\(zone)" }
        func person(_ cn: String, _ mail: String, _ certs: [[UInt8]]) -> SlapdServer.Entry {
            SlapdServer.person(cn, suffix: suffix, mail: mail, certificates: certs)
        }

        // D1: a valid address-bound certificate in DNS, an expired domain-bound one in DNS and one in LDAP around it.
        let d1 = try issue("d1", address: addr(1))
        z += cert("user.d1", d1) + cert("d1", try issue("d1dom", domain: dom(1), expired: true))
        ldapA.append(person("d1", addr(1), [try issue("d1ldap", address: addr(1), expired: true)]))
        expected["D1"] = [d1]
        // D2: a valid domain-bound certificate in DNS.
        let d2 = try issue("d2", domain: dom(2))
        z += cert("d2", d2)
        expected["D2"] = [d2]
        // D3 / D4: address- / domain-bound in LDAP, found through SRV.
        let d3 = try issue("d3", address: addr(3))
        ldapA.append(person("d3", addr(3), [d3]))
        let d4 = try issue("d4", domain: dom(4))
        ldapA.append(person("d4", dom(4), [d4]))
        expected["D3"] = [d3]
        expected["D4"] = [d4]
        // D5: an expired address-bound certificate in DNS, a valid domain-bound one behind it: do not send.
        z += cert("user.d5", try issue("d5", address: addr(5), expired: true)) + cert("d5", try issue("d5dom", domain: dom(5)))
        expected["D5"] = []
        // D6: an expired domain-bound certificate in DNS, a valid one in LDAP behind it: do not send.
        z += cert("d6", try issue("d6", domain: dom(6), expired: true))
        ldapA.append(person("d6", addr(6), [try issue("d6ldap", address: addr(6))]))
        expected["D6"] = []
        // D7 / D8: expired in LDAP (address-bound, with a valid domain-bound behind it; domain-bound): do not send.
        ldapA.append(person("d7", addr(7), [try issue("d7", address: addr(7), expired: true)]))
        ldapA.append(person("d7dom", dom(7), [try issue("d7dom", domain: dom(7))]))
        ldapA.append(person("d8", dom(8), [try issue("d8", domain: dom(8), expired: true)]))
        expected["D7"] = []
        expected["D8"] = []
        // D9: one valid and one expired address-bound certificate in DNS: the valid one.
        let d9 = try issue("d9", address: addr(9))
        z += cert("user.d9", d9) + cert("user.d9", try issue("d9old", address: addr(9), expired: true))
        expected["D9"] = [d9]
        // D10: the first LDAP server (priority 0) is down: the next priority answers.
        let d10 = try issue("d10", address: addr(10))
        ldapA.append(person("d10", addr(10), [d10]))
        expected["D10"] = [d10]
        // D11: no CERT and no SRV. D12: the only LDAP server is down. D13: an LDAP server with nothing.
        expected["D11"] = []
        expected["D12"] = []
        expected["D13"] = []
        // D14: a certificate far over 512 octets (RSA 4096): the answer comes over TCP.
        let d14 = try issue("d14", address: addr(14), key: "rsa4096")
        z += cert("user.d14", d14)
        expected["D14"] = [d14]
        // D15: the lowest SRV priority wins. D16: equal priority, the higher weight wins.
        let d15a = try issue("d15a", address: addr(15)), d15b = try issue("d15b", address: addr(15))
        ldapA.append(person("d15", addr(15), [d15a]))
        ldapB.append(person("d15", addr(15), [d15b]))
        let d16a = try issue("d16a", address: addr(16)), d16b = try issue("d16b", address: addr(16))
        ldapA.append(person("d16", addr(16), [d16a]))
        ldapB.append(person("d16", addr(16), [d16b]))
        expected["D15"] = [d15a]
        expected["D16"] = [d16b]
        // D17: two revoked certificates (CRL) and one good one: the good one.
        let crl = ["--crl-url", crlURL]
        let d17r1 = try issue("d17r1", address: addr(17), extra: crl), d17r2 = try issue("d17r2", address: addr(17), extra: crl)
        let d17 = try issue("d17", address: addr(17), extra: crl)
        try await ws.mustRun(Tools.hisp, ["crl", "issue", "--issuer-cert", "root.pem", "--issuer-key", "root.key",
                                    "--revoke-cert", "d17r1.pem", "--revoke-cert", "d17r2.pem", "--out", "www/root.crl"])
        z += cert("user.d17", d17r1) + cert("user.d17", d17r2) + cert("user.d17", d17)
        expected["D17"] = [d17]
        // D18: issued by an intermediate reachable only through the certificate's AIA.
        let d18 = try issue("d18", address: addr(18), issuer: "inter", extra: ["--aia-url", http.url("inter.der")])
        z += cert("user.d18", d18)
        expected["D18"] = [d18]

        let slapdA = try await offThePool { [ldapA] in try SlapdServer(ws, suffix: suffix, entries: ldapA) }
        let slapdB = try await offThePool { [ldapB] in try SlapdServer(ws, suffix: suffix, entries: ldapB) }
        let dead = try OCSPTestResponder.freePort(ws)
        for n in [1, 3, 4, 6, 7, 8, 13] { z += "_ldap._tcp.d\(n) IN SRV 0 0 \(slapdA.port) ldap.\(zone).\n" }
        z += "_ldap._tcp.d10 IN SRV 0 0 \(dead) ldap.\(zone).\n_ldap._tcp.d10 IN SRV 1 0 \(slapdA.port) ldap.\(zone).\n"
        z += "_ldap._tcp.d12 IN SRV 0 0 \(dead) ldap.\(zone).\n"
        z += "_ldap._tcp.d15 IN SRV 0 0 \(slapdA.port) ldap.\(zone).\n_ldap._tcp.d15 IN SRV 1 0 \(slapdB.port) ldap.\(zone).\n"
        z += "_ldap._tcp.d16 IN SRV 0 0 \(slapdA.port) ldap.\(zone).\n_ldap._tcp.d16 IN SRV 0 100 \(slapdB.port) ldap.\(zone).\n"
        _ = try ws.write("dcdt.zone", z)
        let nsd = try await offThePool { try NSDServer(ws, zones: [(zone, "dcdt.zone")]) }
        defer {
            nsd.stop()
            slapdA.stop()
            slapdB.stop()
        }

        for n in 1...18 {
            let name = "D\(n)"
            let (status, outcome) = try await discover(addr(n), dns: nsd.port)
            var want: [String] = []
            for der in expected[name] ?? [] { want.append(try await sha256(der)) }
            #expect(outcome != nil, "\(name): hisp discover printed JSON")
            guard let outcome else { continue }
            #expect(outcome.chosen.sorted() == want.sorted(), "\(name): chose \(outcome.chosen), expected \(want); candidates \(outcome.candidates.map { "\($0.source) \($0.verdict) \($0.reason ?? "")" })")
            #expect(status == (want.isEmpty ? 1 : 0), "\(name): exit \(status)")
            switch n {
            case 5, 6:
                // Not fallen through to the valid certificate behind.
                #expect(outcome.candidates.count == 1 && outcome.candidates[0].verdict == "not trusted", "\(name)")
            case 7:
                #expect(outcome.candidates.count == 1 && outcome.candidates[0].source == "ldap", "\(name)")
            case 10, 12:
                #expect(outcome.errors.contains { $0.contains(":\(dead)") }, "\(name): the dead server is reported: \(outcome.errors)")
            case 17:
                #expect(outcome.candidates.filter { $0.reason?.contains("revoked") == true }.count == 2, "\(name)")
            default:
                break
            }
        }
    }

    @Test func hostingCasesH1AndH2AgainstOurOwnDNSServer() async throws {
        let keyArgs = ["--data", "data", "--key-file", "master.key"]
        let domain = "h.example-dental.test"
        try await ws.mustRun(Tools.hisp, ["init"] + keyArgs)
        try await ws.mustRun(Tools.hisp, ["domain", "add", domain, "--ipv4", "127.0.0.1"] + keyArgs)
        try await ws.mustRun(Tools.hisp, ["address", "add", "dr.smith@\(domain)"] + keyArgs)
        try await ws.mustRun(Tools.hisp, ["cert", "export", domain, "--ca", "--out", "ca.pem"] + keyArgs)
        try await ws.mustRun(Tools.hisp, ["cert", "export", "dr.smith@\(domain)", "--out", "smith.pem"] + keyArgs)
        try await ws.mustRun(Tools.hisp, ["cert", "export", domain, "--out", "domain.pem"] + keyArgs)
        let server = try await offThePool { try BackgroundProcess(ws, Tools.hisp, ["dns", "serve", "--listen", "127.0.0.1:0"] + keyArgs, readyMarker: "serving DNS") }
        defer { server.stop() }
        let port = Int(server.log.split(separator: "tcp/").last?.prefix { $0.isNumber } ?? "") ?? 0
        // H1: address-bound (the local part with a dot is one DNS label).
        let h1 = try await discover("dr.smith@\(domain)", dns: port, anchor: "ca.pem")
        #expect(h1.status == 0)
        await #expect(h1.outcome?.chosen == [try sha256(try der("smith.pem"))])
        // H2: domain-bound, for an address without its own certificate.
        let h2 = try await discover("front.desk@\(domain)", dns: port, anchor: "ca.pem")
        #expect(h2.status == 0)
        await #expect(h2.outcome?.chosen == [try sha256(try der("domain.pem"))])
    }
}
