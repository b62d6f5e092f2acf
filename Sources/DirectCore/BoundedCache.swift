import Synchronization

/// A dictionary behind a lock, with a bound on its entries so that a flood
/// of distinct keys (senders, certificates, owners) cannot grow it: when it
/// is full, it is emptied before a new key goes in. A capacity of zero
/// keeps nothing. What an entry means and when it goes stale is its user's
/// business (`update` can drop it).
public final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    public let capacity: Int
    private let entries = Mutex<[Key: Value]>([:])

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    public func value(_ key: Key) -> Value? {
        entries.withLock { $0[key] }
    }

    /// Reads and changes the entry of `key` in place (nil: none; setting nil removes it).
    public func update<R>(_ key: Key, _ body: (inout Value?) -> R) -> R {
        entries.withLock { entries in
            var value = entries[key]
            let result = body(&value)
            if let value, capacity > 0 {
                if entries[key] == nil, entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
                entries[key] = value
            } else {
                entries[key] = nil
            }
            return result
        }
    }

    public func set(_ key: Key, _ value: Value?) {
        update(key) { $0 = value }
    }

    public var count: Int { entries.withLock { $0.count } }
}
