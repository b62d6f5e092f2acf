import Foundation
import HISPTesting
import Testing

/// `hisp dns serve` against dig, dnspython and raw sockets; `hisp dns zone`
/// against NSD serving the same zone.
@Suite struct DNSServerTests {
    let ws: Workspace
    let domain = "direct.example-dental.com"
    let keyArgs = ["--data", "data", "--key-file", "master.key"]

    init() throws {
        ws = try Workspace()
        try ws.mustRun(Tools.hisp, ["init"] + keyArgs)
        try ws.mustRun(Tools.hisp, ["domain", "add", domain, "--ipv4", "127.0.0.1", "--ipv6", "::1"] + keyArgs)
        try ws.mustRun(Tools.hisp, ["address", "add", "alice@\(domain)"] + keyArgs)
    }

    /// Our server on a free port; returns it and the port.
    func serve(_ extra: [String] = []) async throws -> (BackgroundProcess, Int) {
        let server = try await offThePool { try BackgroundProcess(ws, Tools.hisp, ["dns", "serve", "--listen", "127.0.0.1:0"] + extra + keyArgs, readyMarker: "serving DNS") }
        let line = server.log.split(separator: "\n").first { $0.hasPrefix("serving DNS") } ?? ""
        let port = Int(line.split(separator: "tcp/").last ?? "") ?? 0
        #expect(port > 0)
        return (server, port)
    }

    func dig(_ port: Int, _ args: [String]) async throws -> String {
        try await ws.mustRun("dig", ["@127.0.0.1", "-p", "\(port)", "+norec", "+time=2", "+tries=1"] + args).stdoutText
    }

    /// The DER of a certificate `hisp cert export` writes, base64, as dig prints CERT data (without spaces).
    func exportedBase64(_ target: String) async throws -> String {
        let pem = try await ws.mustRun(Tools.hisp, ["cert", "export", target] + keyArgs).stdoutText
        let first = pem.components(separatedBy: "-----END CERTIFICATE-----").first ?? ""
        return first.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    }

    func certData(_ digShort: String) -> String {
        // "PKIX 0 0 MIIB... ..." -> the base64 without spaces.
        digShort.split(separator: " ").dropFirst(3).joined().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func answersDigOverUDPAndTCP() async throws {
        let (server, port) = try await serve()
        defer { server.stop() }
        let alice = try await exportedBase64("alice@\(domain)")
        // Address-bound CERT at local-part.domain, over TCP and over UDP with EDNS.
        await #expect(certData(try dig(port, ["+tcp", "+short", "alice.\(domain)", "CERT"])) == alice)
        let udp = try await dig(port, ["+ignore", "alice.\(domain)", "CERT"])
        #expect(udp.contains("flags: qr aa;") && udp.contains("ANSWER: 1,"), "\(udp)")
        // Domain-bound CERT at the domain.
        await #expect(certData(try dig(port, ["+short", domain, "CERT"])) == (try exportedBase64(domain)))
        // Without EDNS the answer does not fit 512 octets: TC set, then dig's own retry over TCP gets it.
        let classic = try await dig(port, ["+noedns", "+ignore", "alice.\(domain)", "CERT"])
        #expect(classic.contains("flags: qr aa tc;") && classic.contains("ANSWER: 0,"), "\(classic)")
        let retried = try await dig(port, ["+noedns", "alice.\(domain)", "CERT"])
        #expect(retried.contains("ANSWER: 1,"))
        // SOA, NS, MX, and the host's glue.
        #expect(try await dig(port, ["+short", domain, "SOA"]).hasPrefix("hisp.\(domain). hostmaster.\(domain). "))
        #expect(try await dig(port, ["+short", domain, "NS"]) == "hisp.\(domain).\n")
        #expect(try await dig(port, ["+short", domain, "MX"]) == "10 hisp.\(domain).\n")
        #expect(try await dig(port, ["+short", "hisp.\(domain)", "A"]) == "127.0.0.1\n")
        #expect(try await dig(port, ["+short", "hisp.\(domain)", "AAAA"]) == "::1\n")
        let mx = try await dig(port, [domain, "MX"])
        #expect(mx.contains("ADDITIONAL: 3"), "glue A and AAAA with the MX answer (and OPT): \(mx)")
        // NXDOMAIN and NODATA both carry the SOA (RFC 2308).
        let nx = try await dig(port, ["bob.\(domain)", "CERT"])
        #expect(nx.contains("status: NXDOMAIN") && nx.contains("AUTHORITY: 1") && nx.contains("IN\tSOA"))
        let nodata = try await dig(port, [domain, "TXT"])
        #expect(nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0,") && nodata.contains("IN\tSOA"))
        // Never a resolver, never a zone transfer.
        #expect(try await dig(port, ["example.com", "A"]).contains("status: REFUSED"))
        #expect(try await dig(port, ["+recurse", "example.com", "A"]).contains("status: REFUSED"))
        let axfr = try await ws.run("dig", ["@127.0.0.1", "-p", "\(port)", domain, "AXFR"]).stdoutText
        #expect(axfr.contains("Transfer failed") && !axfr.contains("CERT"), "\(axfr)")
    }

    /// RFC 8482: ANY at the apex (which holds the domain's CERT) is no amplifier.
    @Test func anyQueriesGetOneRRsetNotEveryRecord() async throws {
        let (server, port) = try await serve()
        defer { server.stop() }
        func size(_ output: String) -> Int {
            Int(output.components(separatedBy: "MSG SIZE  rcvd: ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        }
        let apex = try await dig(port, ["+bufsize=4096", "+ignore", domain, "ANY"])
        // The smallest usual RRset (the apex has no A: its MX), not SOA+NS+MX+CERT.
        #expect(apex.contains("ANSWER: 1,") && apex.contains("IN\tMX") && !apex.contains("CERT"), "\(apex)")
        let sent = 12 + domain.utf8.count + 2 + 4 + 11
        #expect(size(apex) > 0 && size(apex) <= sent * 4, "ANY answered \(size(apex)) bytes to a \(sent)-byte query")
        // A name with only a CERT: the synthesized HINFO of RFC 8482 4.2.
        let alice = try await dig(port, ["+bufsize=4096", "+ignore", "alice.\(domain)", "ANY"])
        #expect(alice.contains("HINFO") && alice.contains("\"RFC8482\"") && !alice.contains("CERT\t"), "\(alice)")
        // The CERT itself is still served to a CERT query.
        await #expect(certData(try dig(port, ["+short", "alice.\(domain)", "CERT"])) == (try exportedBase64("alice@\(domain)")))
    }

    /// TCP connections that announce a long query and trickle it are cut within the
    /// query deadline (3 s), a client address holds at most 8 connections, and TCP
    /// answers go on for everyone else (issue "Hold under attack", item 2).
    @Test func tricklingTCPClientsAreCutOffAndCapped() async throws {
        let (server, port) = try await serve()
        defer { server.stop() }
        let script = """
            import socket, time, json
            conns = []
            for i in range(12):
                s = socket.create_connection(("127.0.0.1", \(port)))
                s.settimeout(0.05)
                s.sendall(b"\\xff\\xff")
                conns.append([s, None])
            start = time.time()
            while time.time() - start < 12 and any(c[1] is None for c in conns):
                for c in conns:
                    if c[1] is not None: continue
                    try:
                        c[0].sendall(b"x")
                        if c[0].recv(1) == b"": c[1] = time.time() - start
                    except socket.timeout:
                        pass
                    except OSError:
                        c[1] = time.time() - start
                time.sleep(0.4)
            print(json.dumps([c[1] for c in conns]))
            """
        let out = try await ws.mustRun("python3", ["-c", script]).stdoutText
        let closed = (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [Any]) ?? []
        let times = closed.compactMap { $0 as? Double }
        #expect(times.count == 12, "connections still open after 12 s of trickling: \(out)")
        // Four were refused at once (more than 8 from one address); eight were cut at their query deadline.
        #expect(times.filter { $0 < 1 }.count >= 4, "\(times)")
        #expect(times.allSatisfy { $0 < 8 }, "\(times)")
        // TCP answers still come.
        await #expect(certData(try dig(port, ["+tcp", "+short", "alice.\(domain)", "CERT"])) == (try exportedBase64("alice@\(domain)")))
    }

    @Test func malformedPacketsGetFormErrOrSilenceAndTheServerGoesOn() async throws {
        let (server, port) = try await serve()
        defer { server.stop() }
        let script = """
            import socket, struct, sys
            import dns.message
            def ask(data):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
                s.sendto(data, ("127.0.0.1", \(port)))
                try:
                    return s.recv(65535)
                except socket.timeout:
                    return None
            header = lambda qd: struct.pack(">HHHHHH", 0x4242, 0x0100, qd, 0, 0, 0)
            cases = {
                "short": b"\\x01\\x02\\x03",
                "cut-question": header(1) + b"\\x05alice",
                "loop": header(1) + b"\\xc0\\x0c\\x00\\x01\\x00\\x01",
                "response": struct.pack(">HHHHHH", 0x4242, 0x8400, 0, 0, 0, 0),
                "garbage": bytes(range(256)) * 3,
            }
            for name, data in cases.items():
                r = ask(data)
                if r is None:
                    print(name, "silence")
                else:
                    print(name, "rcode", r[3] & 0x0F, "id", struct.unpack(">H", r[:2])[0], "qr", r[2] >> 7)
            q = dns.message.make_query("alice.\(domain)", "CERT", use_edns=0)
            r = dns.message.from_wire(ask(q.to_wire()))
            print("valid", r.rcode(), len(r.answer))
            """
        let out = try await ws.mustRun("python3", ["-c", script]).stdoutText
        #expect(out.contains("short silence"))
        #expect(out.contains("cut-question rcode 1 id 16962 qr 1"), "\(out)")
        #expect(out.contains("loop rcode 1 id 16962 qr 1"))
        #expect(out.contains("response silence"))
        #expect(out.contains("valid 0 1"), "the server still answers: \(out)")
        #expect(server.process.isRunning)
    }

    @Test func storeChangesAreServedWithoutARestart() async throws {
        let (server, port) = try await serve()
        defer { server.stop() }
        #expect(try await dig(port, ["bob.\(domain)", "CERT"]).contains("NXDOMAIN"))
        try await ws.mustRun(Tools.hisp, ["address", "add", "bob@\(domain)"] + keyArgs)
        let bob = try await exportedBase64("bob@\(domain)")
        var served = ""
        for _ in 0..<50 {
            served = await certData(try dig(port, ["+tcp", "+short", "bob.\(domain)", "CERT"]))
            if !served.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(served == bob)
    }

    @Test func responsesArePerSourceRateLimited() async throws {
        let (server, port) = try await serve(["--rate-limit", "20"])
        defer { server.stop() }
        let script = """
            import socket, time
            import dns.message
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
            q = dns.message.make_query("alice.\(domain)", "CERT", use_edns=0).to_wire()
            for i in range(300):
                s.sendto(q, ("127.0.0.1", \(port)))
            full = slipped = 0
            try:
                while True:
                    r = dns.message.from_wire(s.recv(65535))
                    if r.flags & 0x0200: slipped += 1
                    else: full += 1
            except socket.timeout:
                pass
            print(full, slipped)
            """
        let counts = try await ws.mustRun("python3", ["-c", script]).stdoutText.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(counts.count == 2)
        guard counts.count == 2 else { return }
        // About one second's worth of full answers (20 plus what refills while sending), some empty TC "slips", most dropped.
        #expect(counts[0] >= 15 && counts[0] < 100, "full answers: \(counts[0])")
        #expect(counts[1] > 0 && counts[0] + counts[1] < 300, "slipped: \(counts[1])")
    }

    @Test func theZoneFileLoadsIntoNSDWhichServesTheSameAnswers() async throws {
        try await ws.mustRun(Tools.hisp, ["dns", "zone", domain, "--out", "zone.txt"] + keyArgs)
        let check = try await ws.mustRun("nsd-checkzone", [domain, "zone.txt"])
        #expect(check.stdoutText.contains("is ok"))
        let nsd = try await offThePool { try NSDServer(ws, zones: [(domain, "zone.txt")]) }
        let nsdPort = nsd.port
        defer { nsd.stop() }
        let (server, port) = try await serve()
        defer { server.stop() }
        for (name, type) in [(domain, "SOA"), (domain, "NS"), (domain, "MX"), (domain, "CERT"), ("alice.\(domain)", "CERT"),
                             ("hisp.\(domain)", "A"), ("hisp.\(domain)", "AAAA")] {
            let ours = try await dig(port, ["+tcp", "+short", name, type])
            let theirs = try await dig(nsdPort, ["+tcp", "+short", name, type])
            #expect(!ours.isEmpty && ours == theirs, "\(name) \(type): ours \(ours) NSD \(theirs)")
        }
        for (name, type) in [("bob.\(domain)", "CERT"), (domain, "TXT")] {
            let status = { (out: String) in out.split(separator: "\n").first { $0.contains("status:") }.map { String($0.split(separator: ",")[1]) } }
            await #expect(status(try dig(port, [name, type])) == status(try dig(nsdPort, [name, type])))
        }
    }
}
