import DNSCore
import DNSResolver
import Foundation
import HISPTesting
import Testing

/// The stub resolver against NSD serving zones the test writes.
@Suite struct DNSResolverTests {
    let ws: Workspace
    let nsd: NSDServer
    /// A CERT record too big for a 1232-octet UDP answer.
    let bigCert = (0..<1500).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    init() throws {
        ws = try Workspace()
        let b64 = Data(bigCert).base64EncodedString()
        _ = try ws.write("example.test.zone", """
            $ORIGIN example.test.
            $TTL 300
            @ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 120
            @ IN NS ns.example.test.
            ns IN A 127.0.0.1
            big IN CERT PKIX 0 0 \(b64)
            small IN CERT PKIX 0 0 MAMCAQE=
            alias IN CNAME small.example.test.
            outside IN CNAME host.other.test.
            _ldap._tcp IN SRV 0 5 389 ldap.example.test.

            """)
        _ = try ws.write("other.test.zone", """
            $ORIGIN other.test.
            $TTL 300
            @ IN SOA ns.other.test. hostmaster.other.test. 1 3600 600 86400 120
            @ IN NS ns.other.test.
            host IN A 192.0.2.7

            """)
        nsd = try NSDServer(ws, zones: [("example.test", "example.test.zone"), ("other.test", "other.test.zone")])
    }

    func resolver(_ servers: [String], zones: [(String, [String])] = [], timeout: Duration = .seconds(1)) throws -> DNSResolver {
        DNSResolver(configuration: ResolverConfiguration(
            servers: servers.compactMap(DNSServerAddress.init),
            zoneServers: try zones.map { (try DNSName($0.0), $0.1.compactMap(DNSServerAddress.init)) },
            timeout: timeout, attempts: 1))
    }

    @Test func aTruncatedAnswerIsAskedAgainOverTCP() async throws {
        let r = try resolver([nsd.address])
        let big = try await r.resolve(try DNSName("big.example.test"), .cert)
        #expect(big.transport == "tcp after truncation")
        #expect(big.records.first?.data == .cert(CERTData(certificateType: CERTData.pkix, certificate: bigCert)))
        let small = try await r.resolve(try DNSName("small.example.test"), .cert)
        #expect(small.transport == "udp" && small.records.count == 1)
    }

    @Test func cnamesAreFollowedInsideTheAnswerAndBeyondIt() async throws {
        let r = try resolver([nsd.address])
        let alias = try await r.resolve(try DNSName("alias.example.test"), .cert)
        #expect(alias.aliases == [try DNSName("small.example.test")])
        #expect(alias.records.count == 1)
        // NSD does not add another zone's data to the answer: the resolver asks for the target itself.
        let outside = try await r.resolve(try DNSName("outside.example.test"), .a)
        #expect(outside.aliases == [try DNSName("host.other.test")])
        #expect(outside.records.first?.data == .a([192, 0, 2, 7]))
    }

    @Test func nxdomainAndNodataAreAnswersNotErrors() async throws {
        let r = try resolver([nsd.address])
        let nx = try await r.resolve(try DNSName("nobody.example.test"), .cert)
        #expect(nx.rcode == .nxDomain && nx.records.isEmpty)
        let nodata = try await r.resolve(try DNSName("ns.example.test"), .cert)
        #expect(nodata.rcode == .noError && nodata.records.isEmpty)
        let srv = try await r.resolve(try DNSName("_ldap._tcp.example.test"), .srv)
        #expect(srv.records.first?.data == .srv(priority: 0, weight: 5, port: 389, target: try DNSName("ldap.example.test")))
    }

    @Test func aDeadServerIsSkippedAndAPerZoneServerIsUsed() async throws {
        let dead = "127.0.0.1:\(try OCSPTestResponder.freePort(ws))"
        let r = try resolver([dead, nsd.address], timeout: .milliseconds(500))
        let a = try await r.resolve(try DNSName("small.example.test"), .cert)
        #expect(a.server?.description == nsd.address)
        // Only a dead default server, but example.test is pointed at NSD.
        let zoned = try resolver([dead], zones: [("example.test", [nsd.address])], timeout: .milliseconds(500))
        #expect(try await zoned.resolve(try DNSName("small.example.test"), .cert).records.count == 1)
        await #expect { try await zoned.resolve(try DNSName("host.other.test"), .a) } throws: { error in
            guard let e = error as? ResolverError, case .unreachable(let text) = e else { return false }
            return text.contains(dead)
        }
    }

    @Test func refusedFromEveryServerIsAFailureNamingIt() async throws {
        let r = try resolver([nsd.address])
        await #expect { try await r.resolve(try DNSName("example.com"), .a) } throws: { error in
            "\(error)".contains("answered REFUSED")
        }
    }

    @Test func answersAreCachedForTheirTTL() async throws {
        let r = try resolver([nsd.address])
        let first = try await r.resolve(try DNSName("small.example.test"), .cert)
        #expect(!first.fromCache)
        nsd.stop()
        let second = try await r.resolve(try DNSName("small.example.test"), .cert)
        #expect(second.fromCache && second.records == first.records)
        let negative = try resolver([nsd.address])
        await #expect(throws: ResolverError.self) { try await negative.resolve(try DNSName("small.example.test"), .cert) }
    }

    @Test func resolvConfNameserversAreRead() async throws {
        let servers = ResolverConfiguration.nameservers(resolvConf: "# comment\nnameserver 10.0.0.1\nsearch x\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver 9.9.9.9\nnameserver 1.1.1.1\n")
        #expect(servers.map(\.description) == ["10.0.0.1:53", "[::1]:53", "9.9.9.9:53"])
        #expect(DNSServerAddress("[::1]:5353")?.port == 5353)
        #expect(DNSServerAddress("resolver.example:53") == nil)
    }
}
