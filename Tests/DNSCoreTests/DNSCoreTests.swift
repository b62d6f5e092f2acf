import DNSCore
import Foundation
import HISPTesting
import Testing

/// The DNS wire format against dnspython as a peer, and against broken input.
@Suite struct DNSCoreTests {
    let ws: Workspace
    init() throws { ws = try Workspace() }

    static let peer = Tools.packageRoot.appendingPathComponent("Tests/Support/dnspeer.py").path

    func name(_ s: String) throws -> DNSName { try DNSName(s) }

    func sampleResponse(certificate: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x01]) throws -> DNSMessage {
        let zone = try name("direct.example.org")
        return DNSMessage(
            id: 0xBEEF, isResponse: true, authoritative: true, rcode: .noError,
            questions: [DNSQuestion(name: try name("alice.direct.example.org"), type: .cert)],
            answers: [DNSRecord(name: try name("alice.direct.example.org"), ttl: 3600, data: .cert(CERTData(certificateType: CERTData.pkix, certificate: certificate)))],
            authorities: [DNSRecord(name: zone, ttl: 3600, data: .ns(try name("ns1.direct.example.org")))],
            additionals: [
                DNSRecord(name: try name("ns1.direct.example.org"), ttl: 3600, data: .a([192, 0, 2, 53])),
                DNSRecord(name: try name("ns1.direct.example.org"), ttl: 3600, data: .aaaa([0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x53])),
                DNSRecord(name: zone, ttl: 300, data: .mx(preference: 10, exchange: try name("mail.direct.example.org"))),
                DNSRecord(name: zone, ttl: 300, data: .soa(SOAData(mname: try name("ns1.direct.example.org"), rname: try name("hostmaster.direct.example.org"),
                                                                   serial: 2026112301, refresh: 3600, retry: 600, expire: 604800, minimum: 300))),
                DNSRecord(name: try name("_ldap._tcp.direct.example.org"), ttl: 300, data: .srv(priority: 0, weight: 5, port: 389, target: try name("ldap.direct.example.org"))),
                DNSRecord(name: zone, ttl: 300, data: .txt([Array("v=spf1 -all".utf8), Array("second".utf8)])),
            ],
            edns: EDNS(udpPayloadSize: 1232))
    }

    @Test func encodesWhatDnspythonReadsAndReadsBackTheSame() async throws {
        let message = try sampleResponse()
        let wire = message.encoded()
        #expect(try DNSMessage(parsing: wire) == message)
        let text = try await ws.mustRun("python3", [Self.peer, "parse"], stdin: Array(wire.map { String(format: "%02x", $0) }.joined().utf8)).stdoutText
        #expect(text.contains("id 48879"))
        #expect(text.contains("flags QR AA"))
        #expect(text.contains("alice.direct.example.org. 3600 IN CERT PKIX 0 0 MAMCAQE="), "\(text)")
        #expect(text.contains("_ldap._tcp.direct.example.org. 300 IN SRV 0 5 389 ldap.direct.example.org."))
        #expect(text.contains("direct.example.org. 300 IN SOA ns1.direct.example.org. hostmaster.direct.example.org. 2026112301 3600 600 604800 300"))
        #expect(text.contains("ns1.direct.example.org. 3600 IN AAAA 2001:db8::53"))
        #expect(text.contains("direct.example.org. 300 IN TXT \"v=spf1 -all\" \"second\""))
        #expect(text.contains("edns 0") && text.contains("payload 1232"))
        // Compression: "direct.example.org" is written in full once, and once more inside
        // the SRV target, which RFC 2782 says is never compressed.
        let full = Array("\u{6}direct\u{7}example\u{3}org\u{0}".utf8)
        #expect(occurrences(of: full, in: wire) == 2)
        #expect(occurrences(of: Array("\u{4}ldap".utf8) + full, in: wire) == 1)
    }

    func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        guard haystack.count >= needle.count else { return 0 }
        return (0...(haystack.count - needle.count)).filter { Array(haystack[$0..<($0 + needle.count)]) == needle }.count
    }

    @Test func readsWhatDnspythonWrites() async throws {
        let hex = try await ws.mustRun("python3", [Self.peer, "response"]).stdoutText
        let wire = try #require(hexBytes(hex))
        let m = try DNSMessage(parsing: wire)
        #expect(m.isResponse && m.authoritative && m.questions.first?.type == .cert)
        #expect(m.answers.first?.data == .cert(CERTData(certificateType: 1, certificate: [0x30, 0x03, 0x02, 0x01, 0x01])))
        #expect(m.authorities.first?.data == .ns(try name("ns1.direct.example.org")))
        #expect(m.additionals.contains { $0.data == .srv(priority: 0, weight: 5, port: 389, target: try! name("ldap.direct.example.org")) })
        #expect(m.additionals.contains { $0.data == .mx(preference: 10, exchange: try! name("mail.direct.example.org")) })
        #expect(m.edns?.udpPayloadSize == 1232)
        // And what we re-encode, dnspython reads as the same message.
        let again = try await ws.mustRun("python3", [Self.peer, "parse"], stdin: Array(m.encoded().map { String(format: "%02x", $0) }.joined().utf8)).stdoutText
        let original = try await ws.mustRun("python3", [Self.peer, "parse"], stdin: Array(hex.utf8)).stdoutText
        #expect(again == original)
    }

    func hexBytes(_ s: String) -> [UInt8]? {
        let chars = Array(s.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard chars.count % 2 == 0 else { return nil }
        return stride(from: 0, to: chars.count, by: 2).compactMap { UInt8(String(decoding: chars[$0..<($0 + 2)], as: UTF8.self), radix: 16) }
    }

    @Test func anAnswerTooBigForUDPIsTruncatedToQuestionAndOPT() async throws {
        let big = try sampleResponse(certificate: [UInt8](repeating: 0x42, count: 1200))
        let udp = big.encoded(maxSize: 512)
        #expect(udp.count <= 512)
        let m = try DNSMessage(parsing: udp)
        #expect(m.truncated && m.answers.isEmpty && m.questions == big.questions && m.edns != nil)
        #expect(try DNSMessage(parsing: big.encoded()).answers == big.answers)
    }

    @Test func everyPrefixOfAMessageIsRejectedNotCrashedOn() async throws {
        let wire = try sampleResponse().encoded()
        for n in 0..<wire.count {
            #expect(throws: DNSError.self) { try DNSMessage(parsing: Array(wire.prefix(n))) }
        }
    }

    @Test func everySingleByteCorruptionParsesOrFailsCleanly() async throws {
        let wire = try sampleResponse().encoded()
        for i in 0..<wire.count {
            for v: UInt8 in [0x00, 0xFF, 0xC0, 0x3F] {
                var w = wire
                w[i] = v
                _ = try? DNSMessage(parsing: w)
            }
        }
    }

    func header(qd: UInt16 = 1, an: UInt16 = 0) -> [UInt8] {
        [0x12, 0x34, 0x01, 0x00, UInt8(qd >> 8), UInt8(qd & 0xFF), UInt8(an >> 8), UInt8(an & 0xFF), 0, 0, 0, 0]
    }

    @Test func compressionLoopsAndForwardPointersAreRefused() async throws {
        // A name that points at itself.
        #expect { try DNSMessage(parsing: header() + [0xC0, 12, 0, 1, 0, 1]) } throws: { "\($0)".contains("does not point backwards") }
        // A pointer forward into the question's type.
        #expect { try DNSMessage(parsing: header() + [0xC0, 14, 0, 1, 0, 1]) } throws: { "\($0)".contains("does not point backwards") }
        // Label type 0x40 (extended labels) is refused.
        #expect { try DNSMessage(parsing: header() + [0x41, 0, 0, 1, 0, 1]) } throws: { "\($0)".contains("label type 1") }
    }

    @Test func limitsAndInconsistenciesAreNamed() async throws {
        #expect { try DNSMessage(parsing: header(qd: 5)) } throws: { "\($0)".contains("5 questions") }
        // RDLENGTH says 5 for an A record.
        let q: [UInt8] = [0, 0, 1, 0, 1]
        let a: [UInt8] = [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5]
        #expect { try DNSMessage(parsing: header(an: 1) + q + a) } throws: { "\($0)".contains("A RDATA of 5 octets") }
        // Octets after the last record.
        #expect { try DNSMessage(parsing: header() + q + [0]) } throws: { "\($0)".contains("1 octets after the last record") }
        // A 64-octet label.
        #expect(throws: DNSError.self) { try DNSName(String(repeating: "a", count: 64) + ".example") }
        #expect(throws: DNSError.self) { try DNSName((0..<60).map { _ in "abcd" }.joined(separator: ".")) }
        // Even a message cut inside its question still yields the ID a FORMERR answer needs.
        #expect(DNSMessage.headerID(header() + [0xC0]) == 0x1234)
    }

    @Test func namesCompareWithoutCaseAndPrintEscaped() async throws {
        #expect(try name("Alice.Direct.Example.ORG") == name("alice.direct.example.org."))
        #expect(try name("alice.direct.example.org").isSubdomain(of: name("example.org")))
        #expect(try !name("alice.direct.example.org").isSubdomain(of: name("ample.org")))
        #expect(try DNSName(labels: [Array("a.b".utf8), Array("c".utf8)]).description == "a\\.b.c.")
        #expect(try name("a\\.b.c").labels.count == 2)
    }

    @Test func cachedAnswersFittedToAQueryEqualAnsweringItDirectly() async throws {
        let origin = try name("direct.example.org")
        let zone = Zone(
            origin: origin,
            soa: SOAData(mname: try name("hisp.direct.example.org"), rname: try name("hostmaster.direct.example.org"), serial: 7,
                         refresh: 3600, retry: 600, expire: 86400, minimum: 300),
            ttl: 3600,
            records: [
                DNSRecord(name: origin, ttl: 3600, data: .ns(try name("hisp.direct.example.org"))),
                DNSRecord(name: try name("hisp.direct.example.org"), ttl: 3600, data: .a([192, 0, 2, 1])),
                DNSRecord(name: try name("alice.direct.example.org"), ttl: 3600,
                          data: .cert(CERTData(certificateType: 1, certificate: [UInt8](repeating: 7, count: 900)))),
            ])
        let responder = AuthoritativeResponder(zones: [zone])
        var checked = 0
        for (qname, type) in [("ALICE.Direct.Example.ORG", DNSType.cert), ("direct.example.org", .ns), ("Hisp.direct.example.org", .a),
                              ("nobody.direct.example.org", .cert), ("direct.example.org", .txt), ("example.com", .a)] {
            for edns in [nil, EDNS(udpPayloadSize: 4096), EDNS(udpPayloadSize: 700)] {
                for transport in [AuthoritativeResponder.Transport.udp, .tcp] {
                    var q = DNSMessage.query(id: UInt16.random(in: 0...UInt16.max), name: try name(qname), type: type,
                                             recursionDesired: Bool.random(), edns: edns)
                    q.checkingDisabled = Bool.random()
                    let wire = q.encoded()
                    let fast = try #require(QueryKey.read(wire, transport: transport))
                    let template = try #require(responder.respond(to: fast.key.query(), over: transport))
                    #expect(QueryKey.fit(template, to: wire, nameEnd: fast.nameEnd) == responder.respond(to: wire, over: transport),
                            "\(qname) \(type) edns \(edns?.udpPayloadSize ?? 0) \(transport)")
                    checked += 1
                }
            }
        }
        #expect(checked == 36)
        // Anything unusual is left to the full parser.
        var two = DNSMessage.query(id: 1, name: try name("a.example"), type: .a)
        two.questions.append(two.questions[0])
        #expect(QueryKey.read(two.encoded(), transport: .udp) == nil)
        var response = DNSMessage.query(id: 1, name: try name("a.example"), type: .a)
        response.isResponse = true
        #expect(QueryKey.read(response.encoded(), transport: .udp) == nil)
        #expect(QueryKey.read(DNSMessage.query(id: 1, name: try name("a.example"), type: .a, edns: EDNS(version: 1)).encoded(), transport: .udp) == nil)
    }
}
