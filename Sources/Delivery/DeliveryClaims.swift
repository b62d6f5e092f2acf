import Storage
import Synchronization

/// The queue rows being sent right now, and the connections open per domain,
/// so that delivery passes can overlap (a new pass starts while earlier
/// connections are still sending) without sending a row twice.
///
/// A row is claimed before its connection starts and released after the
/// outcome is committed. A pass reads the due rows in a transaction of its
/// own, which may have begun before a release committed: rows released while
/// a read is under way are therefore also left out of that read's result.
final class DeliveryClaims: Sendable {
    private struct State {
        var inFlight: Set<String> = []
        var connections: [String: Int] = [:]
        var reading = false
        var releasedWhileReading: Set<String> = []
    }
    private let state = Mutex(State())

    /// Before reading the due rows: the rows being sent now, for the read to skip.
    func beginRead() -> Set<String> {
        state.withLock {
            $0.reading = true
            $0.releasedWhileReading = []
            return $0.inFlight
        }
    }

    /// After reading: the rows that are neither being sent nor were released during the read.
    func endRead(_ due: [DueDelivery]) -> [DueDelivery] {
        state.withLock { s in
            let fresh = due.filter { !s.inFlight.contains($0.id) && !s.releasedWhileReading.contains($0.id) }
            s.reading = false
            s.releasedWhileReading = []
            return fresh
        }
    }

    /// Claims the rows for a new connection to `domain`; false (and nothing claimed) when
    /// `limit` connections to it are already open or one of the rows is taken.
    func claim(_ ids: [String], domain: String, limit: Int) -> Bool {
        state.withLock { s in
            guard s.connections[domain, default: 0] < limit, !ids.contains(where: s.inFlight.contains) else { return false }
            s.connections[domain, default: 0] += 1
            s.inFlight.formUnion(ids)
            return true
        }
    }

    /// After the connection's outcomes are committed.
    func release(_ ids: [String], domain: String) {
        state.withLock { s in
            s.inFlight.subtract(ids)
            if s.reading { s.releasedWhileReading.formUnion(ids) }
            let open = s.connections[domain, default: 1] - 1
            s.connections[domain] = open > 0 ? open : nil
        }
    }

    func openConnections(_ domain: String) -> Int {
        state.withLock { $0.connections[domain, default: 0] }
    }

    var inFlightCount: Int { state.withLock { $0.inFlight.count } }
}
