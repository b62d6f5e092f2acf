import Foundation
import Storage
import Testing

@testable import Delivery

/// Overlapping delivery passes must never send one queue row twice, and must
/// keep to the connection limit per domain.
@Suite struct DeliveryClaimsTests {
    func due(_ id: String, domain: String = "b.example", kind: OutboundKind = .message, created: Date = Date(timeIntervalSince1970: 0),
             recipient: UInt8 = 1) -> DueDelivery {
        DueDelivery(id: id, outboundID: "o-\(id)", kind: kind, domain: domain, created: created, recipientIndex: [recipient])
    }

    @Test func aPassPlansOnlyFreeConnectionsAndRowsNotOnTheWire() {
        let claims = DeliveryClaims()
        #expect(claims.claim(["1"], domain: "b.example", limit: 2))
        let due = [due("1"), due("2"), due("3"), due("4", domain: "c.example")]
        let plan = DirectGateway.plan(due, snapshot: claims.snapshot(), limit: 2)
        // b.example: one connection is open (row 1), so one more share; row 1 is on the wire.
        #expect(plan.map(\.domain) == ["b.example", "c.example"])
        #expect(plan.first?.ids == ["2"], "a share of half of what is due, for the one free connection")
        #expect(plan.last?.ids == ["4"])
        #expect(claims.claim(["2"], domain: "b.example", limit: 2))
        #expect(DirectGateway.plan(due, snapshot: claims.snapshot(), limit: 2).map(\.domain) == ["c.example"], "no free connection to b.example")
        #expect(!claims.claim(["3", "1"], domain: "c.example", limit: 2), "a share holding a row on the wire is refused whole")
    }

    @Test func connectionsPerDomainAreLimited() {
        let claims = DeliveryClaims()
        #expect(claims.claim(["1"], domain: "b.example", limit: 2))
        #expect(claims.claim(["2"], domain: "b.example", limit: 2))
        #expect(!claims.claim(["3"], domain: "b.example", limit: 2))
        #expect(claims.claim(["4"], domain: "c.example", limit: 2), "another domain has its own limit")
        claims.release(["1"], domain: "b.example")
        #expect(claims.openConnections("b.example") == 1)
        #expect(claims.claim(["3"], domain: "b.example", limit: 2))
    }

    @Test func sharesKeepQueueOrderAndNotificationPairs() {
        let t = Date(timeIntervalSince1970: 100)
        let groups: [[DueDelivery]] = [
            [due("1")], [due("2")],
            // A processed and a dispatched MDN queued together for one recipient.
            [due("3", kind: .notification, created: t, recipient: 7)], [due("4", kind: .notification, created: t, recipient: 7)],
            [due("5")],
        ]
        let shares = DirectGateway.shares(groups, size: 3)
        #expect(shares.map { $0.map { $0[0].id } } == [["1", "2", "3", "4"], ["5"]])
        let small = DirectGateway.shares(groups, size: 1)
        #expect(small.map { $0.map { $0[0].id } } == [["1"], ["2"], ["3", "4"], ["5"]])
    }
}
