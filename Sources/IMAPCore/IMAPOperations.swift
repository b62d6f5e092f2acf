import Foundation

/// A folder as LIST shows it.
public struct IMAPFolderInfo: Sendable, Equatable {
    /// The name in UTF-8 (the session writes modified UTF-7 for IMAP4rev1 clients).
    public var name: String
    /// RFC 6154 special-use attribute (`\Sent`), if any.
    public var specialUse: String?
    public var subscribed: Bool
    public var hasChildren: Bool

    public init(name: String, specialUse: String?, subscribed: Bool, hasChildren: Bool) {
        self.name = name
        self.specialUse = specialUse
        self.subscribed = subscribed
        self.hasChildren = hasChildren
    }
}

/// A folder's counters (STATUS, SELECT).
public struct IMAPFolderCounts: Sendable, Equatable {
    public var messages: Int
    public var unseen: Int
    public var uidNext: UInt32
    public var uidValidity: UInt32
    public var highestModSeq: UInt64
    public var size: Int

    public init(messages: Int, unseen: Int, uidNext: UInt32, uidValidity: UInt32, highestModSeq: UInt64, size: Int) {
        self.messages = messages
        self.unseen = unseen
        self.uidNext = uidNext
        self.uidValidity = uidValidity
        self.highestModSeq = highestModSeq
        self.size = size
    }
}

/// A message's stored facts, with its bytes when they were asked for.
public struct IMAPStoredMessage: Sendable, Equatable {
    public var uid: UInt32
    public var internalDate: Date
    public var size: Int
    public var bytes: [UInt8]?

    public init(uid: UInt32, internalDate: Date, size: Int, bytes: [UInt8]?) {
        self.uid = uid
        self.internalDate = internalDate
        self.size = size
        self.bytes = bytes
    }
}

/// What the session asks of the mail store (the handler runs it and feeds the outcome back).
public enum IMAPOperation: Sendable, Equatable {
    case list
    case status(String)
    case select(String)
    case create(String)
    case delete(String)
    case rename(String, String)
    case subscribe(String, Bool)
    /// The messages `uids` (ascending) of the selected folder, their bytes when `bodies`; `markSeen` get \Seen first
    /// (a FETCH of a body). With bodies, the first messages whose sizes add up to at most `maxBytes` (always one at
    /// least); the outcome names the UIDs left, which the session asks for next.
    case fetch(folder: String, uids: [UInt32], bodies: Bool, markSeen: [UInt32], maxBytes: Int)
    case store(folder: String, uids: [UInt32], StoreMode, flags: [String], unchangedSince: UInt64?)
    case copy(folder: String, uids: [UInt32], to: String)
    case move(folder: String, uids: [UInt32], to: String)
    /// Messages flagged \Deleted, all or only those in `uids`.
    case expunge(folder: String, uids: [UInt32]?)
    case append(folder: String, flags: [String], date: Date?, message: [UInt8])
}

/// Why an operation failed, as the client is told (RFC 5530 response codes).
public enum IMAPFailureCode: String, Sendable, Equatable {
    case nonexistent = "NONEXISTENT"
    case alreadyExists = "ALREADYEXISTS"
    case cannot = "CANNOT"
    case tooBig = "TOOBIG"
    case unavailable = "UNAVAILABLE"
    case limit = "LIMIT"
    case serverBug = "SERVERBUG"
}

/// What an operation came to.
public enum IMAPOutcome: Sendable, Equatable {
    case folders([IMAPFolderInfo])
    case counts(IMAPFolderCounts)
    case selected(IMAPFolderCounts, [SelectedMailbox.Message])
    case done
    /// `changed`: the messages whose flags the fetch changed (\Seen set); `rest`: the UIDs not read yet (a byte budget met).
    case fetched([IMAPStoredMessage], changed: [SelectedMailbox.Message], rest: [UInt32])
    case stored(updated: [SelectedMailbox.Message], failed: [UInt32])
    case copied(uidValidity: UInt32, pairs: [UInt32Pair])
    case expunged([UInt32])
    case appended(uidValidity: UInt32, uid: UInt32)
    case failed(IMAPFailureCode, String)
}

public struct UInt32Pair: Sendable, Equatable {
    public var from: UInt32
    public var to: UInt32

    public init(_ from: UInt32, _ to: UInt32) {
        self.from = from
        self.to = to
    }
}
