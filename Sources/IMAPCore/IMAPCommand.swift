import Foundation

/// A calendar day as SEARCH names one (RFC 9051 9 `date`: `1-Feb-2026`).
public struct IMAPDay: Sendable, Equatable, Comparable {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public static func < (a: IMAPDay, b: IMAPDay) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }
}

/// An ID parameter (RFC 2971).
public struct IDField: Sendable, Equatable {
    public var name: String
    public var value: String?
}

/// A message set (RFC 9051 9 `sequence-set`): numbers and ranges, `*` as the
/// largest number in use. Bounded: at most `maxRanges` ranges.
public struct SequenceSet: Sendable, Equatable {
    public enum Bound: Sendable, Equatable {
        case number(UInt32)
        /// `*`
        case last
    }

    public struct Range: Sendable, Equatable {
        public var from: Bound
        public var to: Bound
    }

    public var ranges: [Range]
    /// `$` (RFC 9051 6.4.4.1 / RFC 5182): the result of the last SEARCH.
    public var isSaved: Bool

    public static let maxRanges = 1000

    public init(ranges: [Range], isSaved: Bool = false) {
        self.ranges = ranges
        self.isSaved = isSaved
    }

    /// The ranges with `*` read as `largest` (0 for an empty mailbox), each low to high.
    public func resolved(largest: UInt32) -> [ClosedRange<UInt32>] {
        ranges.map { r in
            let a = Self.value(r.from, largest), b = Self.value(r.to, largest)
            return min(a, b)...max(a, b)
        }
    }

    static func value(_ b: Bound, _ largest: UInt32) -> UInt32 {
        switch b {
        case .number(let n): return n
        case .last: return largest
        }
    }
}

/// A FETCH item (RFC 9051 6.4.5).
public enum FetchAttribute: Sendable, Equatable, Hashable {
    case uid, flags, internalDate, size, envelope, bodyStructure
    /// BODY without a section: the structure without extension data.
    case body
    /// RFC 7162 3.1.4.1.
    case modSeq
    /// BODY[section]<partial> and BODY.PEEK (`peek` does not set \Seen); RFC822, RFC822.HEADER, RFC822.TEXT are sections too.
    case section(BodySection, partial: ClosedRange<Int>?, peek: Bool, legacy: LegacyName?)
    /// BINARY[part]<partial>, BINARY.PEEK (RFC 3516): the decoded content.
    case binary([Int], partial: ClosedRange<Int>?, peek: Bool)
    case binarySize([Int])

    /// The RFC 822 names answered under their own names (RFC 9051 6.4.5).
    public enum LegacyName: String, Sendable, Hashable {
        case rfc822 = "RFC822", header = "RFC822.HEADER", text = "RFC822.TEXT"
    }
}

/// `section-spec` (RFC 9051 6.4.5): a part (`1.2`) and what of it.
public struct BodySection: Sendable, Equatable, Hashable {
    public enum Text: Sendable, Equatable, Hashable {
        case whole
        case header
        case headerFields([String])
        case headerFieldsNot([String])
        case text
        case mime
    }

    public var part: [Int]
    public var text: Text

    public init(part: [Int] = [], text: Text = .whole) {
        self.part = part
        self.text = text
    }
}

/// A SEARCH key (RFC 9051 6.4.4), after its arguments are read.
public indirect enum SearchKey: Sendable, Equatable {
    case all
    case flag(String, set: Bool)
    case keyword(String, set: Bool)
    case new, old, recent
    case before(IMAPDay), on(IMAPDay), since(IMAPDay)
    case sentBefore(IMAPDay), sentOn(IMAPDay), sentSince(IMAPDay)
    case larger(Int), smaller(Int)
    /// FROM, TO, CC, BCC, SUBJECT: a header's value contains the text.
    case header(String, String)
    case body(String)
    case text(String)
    case uid(SequenceSet)
    case sequence(SequenceSet)
    case not(SearchKey)
    case or(SearchKey, SearchKey)
    case and([SearchKey])
    case modSeq(UInt64)
}

/// `+FLAGS`, `-FLAGS` or `FLAGS`.
public enum StoreMode: Sendable, Equatable {
    case add, remove, replace
}

/// One client command (RFC 9051 6; RFC 3501 for LSUB and CHECK; extensions named at each).
public enum IMAPCommand: Sendable, Equatable {
    case capability, noop, logout
    case startTLS
    case authenticate(mechanism: String, initialResponse: String?)
    case login(user: String, password: String)
    /// RFC 5161.
    case enable([String])
    /// RFC 2971: the client's parameters (nil for NIL).
    case id([IDField]?)
    /// RFC 2342.
    case namespace
    /// RFC 2177.
    case idle
    case select(String, condStore: Bool)
    case examine(String, condStore: Bool)
    case create(String)
    case delete(String)
    case rename(String, String)
    case subscribe(String)
    case unsubscribe(String)
    /// LIST with RFC 5258 selection and return options (SUBSCRIBED, SPECIAL-USE, CHILDREN, STATUS).
    case list(reference: String, patterns: [String], selectSubscribed: Bool, selectSpecialUse: Bool, returnSubscribed: Bool,
              returnSpecialUse: Bool, returnChildren: Bool, returnStatus: [String]?)
    case lsub(reference: String, pattern: String)
    case status(String, [String])
    case append(String, flags: [String], date: Date?, message: [UInt8])
    case check, close, unselect, expunge
    case uidExpunge(SequenceSet)
    case search(uid: Bool, returnOptions: [String]?, key: SearchKey)
    case fetch(uid: Bool, SequenceSet, [FetchAttribute], changedSince: UInt64?, vanished: Bool)
    case store(uid: Bool, SequenceSet, StoreMode, silent: Bool, flags: [String], unchangedSince: UInt64?)
    case copy(uid: Bool, SequenceSet, String)
    case move(uid: Bool, SequenceSet, String)
}

/// A tagged command, or why it could not be read.
public struct TaggedCommand: Sendable, Equatable {
    public let tag: String
    public let command: IMAPCommand
}

public struct IMAPParseError: Error, Equatable, Sendable {
    /// The command's tag when it could be read (the BAD goes to it, else to "*").
    public let tag: String?
    public let message: String
}
