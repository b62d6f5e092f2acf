import DirectCore
import Foundation
import Synchronization

/// The folders every mailbox has (RFC 6154 special-use, and INBOX).
public enum SpecialFolder: String, Sendable, CaseIterable {
    case inbox, sent, drafts, trash, archive

    /// The folder's name as mail clients see it.
    public var name: String {
        switch self {
        case .inbox: return "INBOX"
        case .sent: return "Sent"
        case .drafts: return "Drafts"
        case .trash: return "Trash"
        case .archive: return "Archive"
        }
    }

    /// The special-use attribute (RFC 6154 2); INBOX has none.
    public var attribute: String? {
        switch self {
        case .inbox: return nil
        case .sent: return "\\Sent"
        case .drafts: return "\\Drafts"
        case .trash: return "\\Trash"
        case .archive: return "\\Archive"
        }
    }

    /// The special folder a name means: INBOX in any case (RFC 9051 5.1), the others exactly.
    public init?(name: String) {
        if name.uppercased() == "INBOX" {
            self = .inbox
            return
        }
        guard let f = Self.allCases.first(where: { $0 != .inbox && $0.name == name }) else { return nil }
        self = f
    }
}

/// The system flags of a message (RFC 9051 2.3.2), stored as bits.
public struct MessageFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    public static let seen = MessageFlags(rawValue: 1)
    public static let answered = MessageFlags(rawValue: 2)
    public static let flagged = MessageFlags(rawValue: 4)
    public static let deleted = MessageFlags(rawValue: 8)
    public static let draft = MessageFlags(rawValue: 16)

    public static let all: [(MessageFlags, String)] = [
        (.seen, "\\Seen"), (.answered, "\\Answered"), (.flagged, "\\Flagged"), (.deleted, "\\Deleted"), (.draft, "\\Draft"),
    ]

    /// The flags' names, in a fixed order (`\Seen \Flagged`).
    public var names: [String] { Self.all.filter { contains($0.0) }.map(\.1) }

    /// The system flag a name means, in any case (RFC 9051 2.3.2: flags are case-insensitive).
    public init?(name: String) {
        guard let f = Self.all.first(where: { $0.1.lowercased() == name.lowercased() }) else { return nil }
        self = f.0
    }
}

/// What a flag update does (RFC 9051 6.4.6: FLAGS, +FLAGS, -FLAGS).
public enum FlagChange: Sendable {
    case replace, add, remove
}

/// A folder and its counters.
public struct FolderStatus: Sendable, Equatable {
    public let id: String
    public let name: String
    public let special: SpecialFolder?
    /// RFC 9051 2.3.1.1: UIDs are valid while this stays the same.
    public let uidValidity: UInt32
    /// The UID the next message will get.
    public let uidNext: UInt32
    /// RFC 7162 3.1.1: the highest modification sequence of any message in the folder (or of an expunge).
    public let highestModSeq: UInt64
    public let messages: Int
    public let unseen: Int
    /// The messages' sizes together (RFC 8438 STATUS SIZE).
    public let bytes: Int
    public let subscribed: Bool
}

/// A message's place and state in its folder.
public struct MessageState: Sendable, Equatable {
    public let uid: UInt32
    public let flags: MessageFlags
    public let keywords: [String]
    public let modSeq: UInt64
}

/// What changed in a folder after a modification sequence (RFC 7162).
public struct FolderChanges: Sendable {
    public let status: FolderStatus
    /// Messages added or changed after the sequence, by UID.
    public let changed: [MessageState]
    /// UIDs expunged after the sequence.
    public let expunged: [UInt32]
}

/// UIDs as ranges (an IMAP UID set, `1:5,9`), at most `StoreLimits.maxUIDRanges` of them.
public typealias UIDRanges = [ClosedRange<UInt32>]

/// UIDs as ranges of consecutive numbers (each once), cut into sets the store takes (`StoreLimits.maxUIDRanges` each).
public func uidRangeChunks(_ uids: [UInt32]) -> [UIDRanges] {
    var ranges: UIDRanges = []
    for n in uids.sorted() {
        if let last = ranges.last, last.contains(n) { continue }
        if let last = ranges.last, last.upperBound &+ 1 == n { ranges[ranges.count - 1] = last.lowerBound...n } else { ranges.append(n...n) }
    }
    return stride(from: 0, to: ranges.count, by: StoreLimits.maxUIDRanges).map { Array(ranges[$0..<min(ranges.count, $0 + StoreLimits.maxUIDRanges)]) }
}

/// Folder names: what a mailbox may call a folder.
public enum FolderName {
    /// The hierarchy separator (RFC 9051 5.1.1).
    public static let separator: Character = "/"
    public static let maxBytes = 255
    public static let maxFolders = 1000

    /// The name as stored, or why it cannot be one.
    public static func validate(_ name: String) throws -> String {
        guard !name.isEmpty, name.utf8.count <= maxBytes else {
            throw StoreError.invalid("a folder name has 1 to \(maxBytes) bytes")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "*" || $0 == "%" || $0 == "\\" || $0 == "\"" }) else {
            throw StoreError.invalid("a folder name may not hold control characters, *, %, \\ or \"")
        }
        guard !name.hasPrefix("/"), !name.hasSuffix("/"), !name.contains("//") else {
            throw StoreError.invalid("\(SafeText.escape(name)): \"/\" separates folder levels; a level cannot be empty")
        }
        return name
    }
}

/// Tells who waits on a mailbox that it changed: each write that adds, flags,
/// moves or expunges messages signals the mailbox after its transaction is
/// durable. Waiters read what changed from the store (`changes(mailbox:folder:since:)`),
/// so a signal carries nothing and several collapse into one.
public final class MailboxSignals: Sendable {
    private let waiters = Mutex<[String: [UInt64: AsyncStream<Void>.Continuation]]>([:])
    private let nextID = Atomic<UInt64>(1)

    public init() {}

    /// A stream that yields after each change to the mailbox (`AddressRecord.id`), until it is cancelled or dropped.
    public func subscribe(_ mailboxID: String) -> AsyncStream<Void> {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { [weak self] _ in
            self?.waiters.withLock { w in
                w[mailboxID]?[id] = nil
                if w[mailboxID]?.isEmpty == true { w[mailboxID] = nil }
            }
        }
        waiters.withLock { $0[mailboxID, default: [:]][id] = continuation }
        return stream
    }

    public func signal(_ mailboxIDs: some Sequence<String>) {
        let targets = waiters.withLock { w in mailboxIDs.flatMap { w[$0].map { Array($0.values) } ?? [] } }
        for c in targets { c.yield() }
    }

    /// How many waiters a mailbox has (for tests and metrics).
    public func waiting(_ mailboxID: String) -> Int { waiters.withLock { $0[mailboxID]?.count ?? 0 } }
}

/// The mailboxes a write transaction changed, signalled once it is durable.
final class MailboxTouches: Sendable {
    private let ids = Mutex<Set<String>>([])
    func touch(_ id: String) { ids.withLock { _ = $0.insert(id) } }
    var touched: Set<String> { ids.withLock { $0 } }
}
