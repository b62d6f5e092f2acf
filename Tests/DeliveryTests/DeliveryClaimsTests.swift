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

    @Test func aRowBeingSentIsNotHandedOutAgain() {
        let claims = DeliveryClaims()
        _ = claims.beginRead()
        let first = claims.endRead([due("1"), due("2")])
        #expect(first.map(\.id) == ["1", "2"])
        #expect(claims.claim(["1"], domain: "b.example", limit: 4))
        // A second pass while 1 is on the wire: the store is told to skip it, and it is filtered out anyway.
        let skipping = claims.beginRead()
        #expect(skipping == ["1"])
        #expect(claims.endRead([due("1"), due("2")]).map(\.id) == ["2"])
        #expect(!claims.claim(["2", "1"], domain: "b.example", limit: 4), "a share holding a claimed row is refused whole")
        #expect(claims.inFlightCount == 1)
    }

    @Test func aRowReleasedDuringARead_isLeftOutOfThatRead() {
        // The read may have begun before the release's outcome was committed, so it may
        // still show the row as due; only the next read can be trusted about it.
        let claims = DeliveryClaims()
        #expect(claims.claim(["1"], domain: "b.example", limit: 4))
        _ = claims.beginRead()
        claims.release(["1"], domain: "b.example")
        #expect(claims.endRead([due("1"), due("2")]).map(\.id) == ["2"])
        _ = claims.beginRead()
        #expect(claims.endRead([due("1")]).map(\.id) == ["1"], "a read begun after the release sees the committed outcome")
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
