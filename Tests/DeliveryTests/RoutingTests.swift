import DirectCore
import Synchronization
import Testing
@testable import Delivery

/// DNS as a table.
struct TableDNS: MailExchangerLookup {
    var mx: [String: [(preference: UInt16, exchange: String)]] = [:]
    var hosts: [String: [String]] = [:]
    func mailExchangers(of domain: String) async throws -> [(preference: UInt16, exchange: String)] { mx[domain] ?? [] }
    func addresses(of host: String) async throws -> [String] { hosts[host] ?? [] }
}

/// Hosts that take mail, fail for now, or refuse the session, by address; records who was tried.
final class ScriptedHosts: HostSender {
    enum Behaviour { case accept, failAfter(Int), refuse }
    let behaviour: [String: Behaviour]
    private let tried = Mutex<[String]>([])
    var attempts: [String] { tried.withLock { $0 } }

    init(_ behaviour: [String: Behaviour]) { self.behaviour = behaviour }

    func send(_ messages: [OutboundMessage], to host: MailHost, domain: String, routed: Bool) async throws(HostFailure) -> [[String: RecipientOutcome]] {
        tried.withLock { $0.append("\(host.name)/\(host.address):\(host.port)") }
        let accepted = messages.map { Dictionary(uniqueKeysWithValues: $0.recipients.map { ($0, RecipientOutcome.accepted) }) }
        switch behaviour[host.address] ?? .failAfter(0) {
        case .accept: return accepted
        case .failAfter(let n):
            throw HostFailure(outcomes: Array(accepted.prefix(n)), refusal: Refusal(.delivery, code: 421, enhanced: "4.4.1", "connection lost"))
        case .refuse:
            throw HostFailure(outcomes: [], refusal: Refusal(.delivery, code: 554, enhanced: "5.7.1", "go away"))
        }
    }
}

/// Where the queue sends a domain's mail and how it fails over (RFC 5321 5.1, RFC 7505), without sockets.
@Suite struct RoutingTests {
    let messages = (1...3).map { OutboundMessage(from: "a@x.example", recipients: ["r\($0)@y.example"], message: Array("m\($0)".utf8)) }

    @Test func mxHostsAreTriedByPreferenceAndAFailingOneHandsOverWhatItDidNotSend() async throws {
        let dns = TableDNS(mx: ["y.example": [(20, "backup.y.example."), (10, "mx.y.example.")]],
                           hosts: ["mx.y.example": ["192.0.2.1"], "backup.y.example": ["192.0.2.2"]])
        let hosts = ScriptedHosts(["192.0.2.1": .failAfter(1), "192.0.2.2": .accept])
        let router = Router(routes: [:], mxPort: 25, dns: dns, sender: hosts)
        #expect(try await router.hosts(for: "y.example").map(\.name) == ["mx.y.example", "backup.y.example"])
        let outcomes = await router.send(domain: "y.example", messages: messages)
        #expect(outcomes.count == 3 && outcomes.allSatisfy { $0.values.allSatisfy { $0 == .accepted } })
        #expect(hosts.attempts == ["mx.y.example/192.0.2.1:25", "backup.y.example/192.0.2.2:25"])
    }

    @Test func noMXMeansTheDomainItselfAndANullMXFailsAtOnce() async throws {
        let implicit = Router(routes: [:], mxPort: 2525, dns: TableDNS(hosts: ["y.example": ["192.0.2.9"]]), sender: ScriptedHosts([:]))
        #expect(try await implicit.hosts(for: "y.example") == [MailHost(name: "y.example", address: "192.0.2.9", port: 2525)])

        let hosts = ScriptedHosts([:])
        let null = Router(routes: [:], mxPort: 25, dns: TableDNS(mx: ["y.example": [(0, ".")]]), sender: hosts)
        let outcomes = await null.send(domain: "y.example", messages: messages)
        for o in outcomes {
            guard case .permanent(let r) = o.values.first else { Issue.record("\(o)"); continue }
            #expect(r.code == 556 && r.enhanced == "5.1.10")
        }
        #expect(hosts.attempts.isEmpty)
    }

    @Test func aRouteWinsOverMXAndAPermanentRefusalStopsTheFailover() async throws {
        let dns = TableDNS(mx: ["y.example": [(10, "mx.y.example")]], hosts: ["relay.example": ["192.0.2.5", "192.0.2.6"], "mx.y.example": ["192.0.2.1"]])
        let hosts = ScriptedHosts(["192.0.2.5": .refuse, "192.0.2.6": .accept])
        let router = Router(routes: ["y.example": Route(host: "relay.example", port: 587)], mxPort: 25, dns: dns, sender: hosts)
        let outcomes = await router.send(domain: "y.example", messages: messages)
        #expect(hosts.attempts == ["relay.example/192.0.2.5:587"])
        #expect(outcomes.allSatisfy { if case .permanent(let r) = $0.values.first { return r.enhanced == "5.7.1" } else { return false } })
    }

    @Test func everyHostFailingLeavesTheMessagesForTheNextAttempt() async throws {
        let dns = TableDNS(mx: ["y.example": [(10, "mx.y.example")]], hosts: ["mx.y.example": ["192.0.2.1", "192.0.2.3"]])
        let hosts = ScriptedHosts(["192.0.2.1": .failAfter(0), "192.0.2.3": .failAfter(2)])
        let outcomes = await Router(routes: [:], mxPort: 25, dns: dns, sender: hosts).send(domain: "y.example", messages: messages)
        #expect(outcomes.map { $0.values.first } == [.accepted, .accepted, .transient(Refusal(.delivery, code: 421, enhanced: "4.4.1", "connection lost"))])
    }
}
