import Storage
import Synchronization

/// This process's side of sending: the queue rows its connections are
/// sending now, and its connections open per domain (a limit of this
/// process's, not of the database's).
///
/// The database's lease on a row (`HISPStore.claimDue`) is what keeps two
/// senders from taking one row. The rows here are only a second guard:
/// a delivery that outlasts its lease (a very slow peer) is not taken again
/// by this process while it is still on the wire.
final class DeliveryClaims: Sendable {
    private struct State {
        var inFlight: Set<String> = []
        var connections: [String: Int] = [:]
    }
    private let state = Mutex(State())

    /// What a pass plans with: the connections open per domain, and the rows on the wire.
    struct Snapshot: Sendable {
        let connections: [String: Int]
        let inFlight: Set<String>
    }

    func snapshot() -> Snapshot {
        state.withLock { Snapshot(connections: $0.connections, inFlight: $0.inFlight) }
    }

    /// Takes the rows for a new connection to `domain`; false (and nothing taken) when
    /// `limit` connections to it are already open or one of the rows is on the wire.
    func claim(_ ids: [String], domain: String, limit: Int) -> Bool {
        state.withLock { s in
            guard s.connections[domain, default: 0] < limit, !ids.contains(where: s.inFlight.contains) else { return false }
            s.connections[domain, default: 0] += 1
            s.inFlight.formUnion(ids)
            return true
        }
    }

    /// After the connection's outcomes are committed (or it failed).
    func release(_ ids: [String], domain: String) {
        state.withLock { s in
            s.inFlight.subtract(ids)
            let open = s.connections[domain, default: 1] - 1
            s.connections[domain] = open > 0 ? open : nil
        }
    }

    func openConnections(_ domain: String) -> Int {
        state.withLock { $0.connections[domain, default: 0] }
    }

    var inFlightCount: Int { state.withLock { $0.inFlight.count } }
}
