/// The selected mailbox as one IMAP session knows it (RFC 9051 2.3.1): its
/// messages by sequence number and UID, their flags, and the changes other
/// sessions made that this one has not yet been told of. Changes are told
/// as untagged responses at the moments the RFC allows: EXISTS and FETCH
/// FLAGS after any command, EXPUNGE only where message numbers may shift
/// (RFC 9051 7.5.1: never while answering FETCH, STORE or SEARCH by
/// sequence number, nor during a command that takes sequence numbers).
public struct SelectedMailbox: Sendable {
    public struct Message: Sendable, Equatable {
        public var uid: UInt32
        public var flags: [String]
        public var modSeq: UInt64

        public init(uid: UInt32, flags: [String], modSeq: UInt64) {
            self.uid = uid
            self.flags = flags
            self.modSeq = modSeq
        }
    }

    /// What the mail store says changed (the change stream, or this session's own commands).
    public enum Change: Sendable, Equatable {
        case added(Message)
        case flags(Message)
        case expunged(uid: UInt32)
    }

    /// An untagged response to send.
    public enum Update: Sendable, Equatable {
        case expunge(sequence: Int)
        /// RFC 7162 3.2.10 / RFC 5162: with QRESYNC (not offered) this would be VANISHED.
        case exists(Int)
        case fetchFlags(sequence: Int, uid: UInt32, flags: [String], modSeq: UInt64?)
    }

    public let uidValidity: UInt32
    public let readOnly: Bool
    /// The messages the client knows of, in sequence order (UIDs ascending).
    public private(set) var messages: [Message]
    public private(set) var uidNext: UInt32
    public private(set) var highestModSeq: UInt64
    /// UIDs expunged by someone but not yet told (they keep their sequence numbers until then).
    private var pendingExpunges: Set<UInt32> = []
    /// Messages added but not yet told by EXISTS.
    private var pendingAdded: [Message] = []
    /// UIDs whose flags changed and are not yet told.
    private var pendingFlags: [UInt32] = []
    /// RFC 7162 3.1: report MODSEQ with FETCH FLAGS once the client used CONDSTORE.
    public var condStore = false

    public init(uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, messages: [Message], readOnly: Bool) {
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModSeq = highestModSeq
        self.messages = messages.sorted { $0.uid < $1.uid }
        self.readOnly = readOnly
    }

    public var count: Int { messages.count }

    public func sequence(of uid: UInt32) -> Int? {
        // Binary search: UIDs ascend with sequence numbers.
        var lo = 0, hi = messages.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if messages[mid].uid == uid { return mid + 1 }
            if messages[mid].uid < uid { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }

    /// The messages a set names, in sequence order, each once: by sequence
    /// number, or by UID (`*` is the largest UID; a range of UIDs that do not
    /// exist names nothing, RFC 9051 6.4.8).
    public func resolve(_ set: SequenceSet, byUID: Bool) -> [(sequence: Int, message: Message)] {
        guard !messages.isEmpty else { return [] }
        var picked = Set<Int>()
        if byUID {
            for r in set.resolved(largest: messages[messages.count - 1].uid) {
                // The first message at or above the range's start, then on while within it.
                var lo = 0, hi = messages.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if messages[mid].uid < r.lowerBound { lo = mid + 1 } else { hi = mid }
                }
                var i = lo
                while i < messages.count && messages[i].uid <= r.upperBound {
                    picked.insert(i)
                    i += 1
                }
            }
        } else {
            for r in set.resolved(largest: UInt32(messages.count)) where r.lowerBound >= 1 {
                let upper = min(Int(r.upperBound), messages.count)
                guard Int(r.lowerBound) <= upper else { continue }
                for i in (Int(r.lowerBound) - 1)..<upper { picked.insert(i) }
            }
        }
        return picked.sorted().map { ($0 + 1, messages[$0]) }
    }

    /// Whether every number of a sequence set (by sequence number) exists (RFC 9051 6.4.5: else BAD).
    public func isValid(_ set: SequenceSet) -> Bool {
        set.resolved(largest: UInt32(messages.count)).allSatisfy { $0.upperBound <= UInt32(messages.count) }
    }

    // MARK: changes

    public mutating func apply(_ change: Change) {
        switch change {
        case .added(let m):
            guard sequence(of: m.uid) == nil, !pendingAdded.contains(where: { $0.uid == m.uid }) else { return }
            pendingAdded.append(m)
            uidNext = max(uidNext, m.uid &+ 1)
            highestModSeq = max(highestModSeq, m.modSeq)
        case .flags(let m):
            highestModSeq = max(highestModSeq, m.modSeq)
            if let i = pendingAdded.firstIndex(where: { $0.uid == m.uid }) {
                pendingAdded[i] = m
                return
            }
            guard let s = sequence(of: m.uid), !pendingExpunges.contains(m.uid) else { return }
            guard messages[s - 1] != m else { return }
            messages[s - 1] = m
            if !pendingFlags.contains(m.uid) { pendingFlags.append(m.uid) }
        case .expunged(let uid):
            if let i = pendingAdded.firstIndex(where: { $0.uid == uid }) {
                pendingAdded.remove(at: i)
                return
            }
            if sequence(of: uid) != nil { pendingExpunges.insert(uid) }
        }
    }

    /// The untagged responses owed now. With `expungesAllowed` false (a
    /// command by sequence number is under way), expunges wait: the numbers
    /// the client knows stay as they are, and EXISTS still counts the
    /// messages whose EXPUNGE is pending (RFC 9051 7.4.1, 7.5.1).
    public mutating func updates(expungesAllowed: Bool) -> [Update] {
        var out: [Update] = []
        if expungesAllowed && !pendingExpunges.isEmpty {
            // Highest sequence first, so each number is still right when told.
            for s in (1...messages.count).reversed() where pendingExpunges.contains(messages[s - 1].uid) {
                out.append(.expunge(sequence: s))
                messages.remove(at: s - 1)
            }
            pendingExpunges = []
        }
        if !pendingAdded.isEmpty {
            messages += pendingAdded.sorted { $0.uid < $1.uid }
            pendingAdded = []
            out.append(.exists(messages.count))
        }
        for uid in pendingFlags {
            guard let s = sequence(of: uid) else { continue }
            let m = messages[s - 1]
            out.append(.fetchFlags(sequence: s, uid: uid, flags: m.flags, modSeq: condStore ? m.modSeq : nil))
        }
        pendingFlags = []
        return out
    }

    /// Flags this session set itself (its STORE's answer tells them, or .SILENT hides them): no update is owed.
    public mutating func stored(_ m: Message) {
        highestModSeq = max(highestModSeq, m.modSeq)
        guard let s = sequence(of: m.uid) else { return }
        messages[s - 1] = m
        pendingFlags.removeAll { $0 == m.uid }
    }

    /// UIDs this session expunged itself and has answered with EXPUNGE responses (RFC 9051 6.4.3):
    /// removed at once, in the order told. Returns the sequence numbers to send, each as it is at its turn.
    public mutating func expungedHere(_ uids: [UInt32]) -> [Int] {
        var out: [Int] = []
        for uid in Set(uids).sorted(by: >) {
            guard let s = sequence(of: uid) else { continue }
            out.append(s)
            messages.remove(at: s - 1)
            pendingExpunges.remove(uid)
            pendingFlags.removeAll { $0 == uid }
        }
        return out
    }
}
