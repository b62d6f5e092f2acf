import DirectTrust
import Foundation
import HISPTesting
import LDAPClient
import LDAPCore
import Testing

/// The LDAP client against slapd, and the message codec against itself.
@Suite struct LDAPClientTests {
    let ws: Workspace
    init() throws { ws = try Workspace() }

    let certA: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x01]
    let certB: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x02]

    @Test func findsCertificatesByMailUnderTheNamingContext() async throws {
        let slapd = try await offThePool { try SlapdServer(ws, entries: [
            SlapdServer.person("alice", suffix: "dc=example,dc=test", mail: "alice@example.test", certificates: [certA, certB]),
            SlapdServer.person("domain", suffix: "dc=example,dc=test", mail: "example.test", certificates: [certB], attribute: "userSMIMECertificate"),
            SlapdServer.person("bob", suffix: "dc=example,dc=test", mail: "bob@example.test", certificates: []),
        ]) }
        let client = LDAPDiscoveryClient(timeout: .seconds(5))
        let alice = try await client.certificates(host: "127.0.0.1", port: slapd.port, mail: "alice@example.test")
        #expect(alice.map(\.value).sorted { $0.lexicographicallyPrecedes($1) } == [certA, certB])
        #expect(alice.allSatisfy { $0.dn == "cn=alice,dc=example,dc=test" && $0.attribute.lowercased() == "usercertificate;binary" })
        let domain = try await client.certificates(host: "127.0.0.1", port: slapd.port, mail: "example.test")
        #expect(domain.map(\.value) == [certB])
        #expect(try await client.certificates(host: "127.0.0.1", port: slapd.port, mail: "bob@example.test").isEmpty)
        #expect(try await client.certificates(host: "127.0.0.1", port: slapd.port, mail: "nobody@example.test").isEmpty)
    }

    @Test func aDeadServerOrANonLDAPServerIsAnError() async throws {
        let client = LDAPDiscoveryClient(timeout: .seconds(2))
        let dead = try OCSPTestResponder.freePort(ws)
        await #expect { try await client.certificates(host: "127.0.0.1", port: dead, mail: "a@b.c") } throws: { error in
            "\(error)".contains("cannot connect to 127.0.0.1:\(dead)")
        }
        // An HTTP server answers with something that is not BER.
        let http = try await offThePool { try HTTPTestServer(directory: ws.path(".")) }
        await #expect(throws: LDAPError.self) { try await client.certificates(host: "127.0.0.1", port: http.port, mail: "a@b.c") }
    }

    @Test func messagesRoundTripAndFramesAreMeasured() async throws {
        // Requests are checked by slapd reading them (above); responses round-trip through our parser.
        let messages = [
            LDAPMessage(id: 3, operation: .searchResultEntry(dn: "cn=a", attributes: [(type: "userCertificate;binary", values: [certA, certB])])),
            LDAPMessage(id: 3, operation: .searchResultDone(LDAPResult(code: 0))),
            LDAPMessage(id: 4, operation: .bindResponse(LDAPResult(code: 49, diagnostic: "invalid credentials"))),
        ]
        for m in messages {
            let bytes = try m.encoded()
            #expect(try LDAPMessage(parsing: ArraySlice(bytes)) == m)
            #expect(try LDAPMessage.frameLength(ArraySlice(bytes)) == bytes.count)
            #expect(try LDAPMessage.frameLength(ArraySlice(bytes.prefix(1))) == nil)
        }
        // An indefinite length is not LDAP; a huge one is over the limit.
        #expect(throws: LDAPError.self) { try LDAPMessage.frameLength([0x30, 0x80, 0, 0]) }
        #expect(throws: LDAPError.self) { try LDAPMessage.frameLength([0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: LDAPError.self) { try LDAPMessage(parsing: [0x30, 0x03, 0x02, 0x01, 0x01]) }
    }
}
