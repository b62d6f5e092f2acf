import Foundation

/// Reads one command (as `IMAPCommandInput` cut it) into an `IMAPCommand`
/// (RFC 9051 9, formal syntax). Every refusal says what was wrong; nothing
/// recurses deeper than `maxDepth`.
public struct IMAPParser {
    /// Parenthesis nesting (search keys, lists) at most.
    public static let maxDepth = 32
    /// Items in one parenthesized list at most (flags, fetch attributes, header names).
    public static let maxListItems = 1000

    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0
    private var tag: String?

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    public static func parse(_ bytes: [UInt8]) -> Result<TaggedCommand, IMAPParseError> {
        var p = IMAPParser(bytes)
        do {
            return .success(try p.command())
        } catch let e as Failure {
            return .failure(IMAPParseError(tag: p.tag, message: e.message))
        } catch {
            return .failure(IMAPParseError(tag: p.tag, message: "\(error)"))
        }
    }

    struct Failure: Error {
        let message: String
    }

    private func fail(_ message: String) -> Failure { Failure(message: message) }

    // MARK: the command

    private mutating func command() throws -> TaggedCommand {
        let t = try atom(what: "a tag", allow: IMAPSyntax.isTagChar)
        tag = t
        try space()
        let name = try atom(what: "a command name").uppercased()
        let command = try body(name)
        guard i == bytes.count else { throw fail("unexpected text after the command: \(preview())") }
        return TaggedCommand(tag: t, command: command)
    }

    private mutating func body(_ name: String) throws -> IMAPCommand {
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "STARTTLS": return .startTLS
        case "NAMESPACE": return .namespace
        case "IDLE": return .idle
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge
        case "AUTHENTICATE":
            try space()
            let mechanism = try atom(what: "a SASL mechanism").uppercased()
            var initial: String? = nil
            if try optionalSpace() { initial = try atom(what: "an initial response", allow: { IMAPSyntax.isAtomChar($0) || $0 == 0x3D }) }
            return .authenticate(mechanism: mechanism, initialResponse: initial)
        case "LOGIN":
            try space()
            let user = try astring()
            try space()
            return .login(user: user, password: try astring())
        case "ENABLE":
            var caps: [String] = []
            while try optionalSpace() { caps.append(try atom(what: "a capability").uppercased()) }
            guard !caps.isEmpty else { throw fail("ENABLE needs at least one capability") }
            return .enable(caps)
        case "ID":
            try space()
            if try optionalNil() { return .id(nil) }
            var fields: [IDField] = []
            try list { p in
                let name = try p.string()
                try p.space()
                fields.append(IDField(name: name, value: try p.nstring()))
                guard fields.count <= 30 else { throw p.fail("ID takes at most 30 fields (RFC 2971 3.3)") }
            }
            return .id(fields)
        case "SELECT", "EXAMINE":
            try space()
            let mailbox = try astring()
            var condStore = false
            if try optionalSpace() {
                try list { p in
                    let param = try p.atom(what: "a select parameter").uppercased()
                    guard param == "CONDSTORE" else { throw p.fail("unknown select parameter \(param)") }
                    condStore = true
                }
            }
            return name == "SELECT" ? .select(mailbox, condStore: condStore) : .examine(mailbox, condStore: condStore)
        case "CREATE":
            try space()
            let mailbox = try astring()
            if try optionalSpace() { try list { p in _ = try p.atom(what: "a create parameter"); if try p.optionalSpace() { try p.skipValue() } } }
            return .create(mailbox)
        case "DELETE": try space(); return .delete(try astring())
        case "RENAME":
            try space()
            let from = try astring()
            try space()
            return .rename(from, try astring())
        case "SUBSCRIBE": try space(); return .subscribe(try astring())
        case "UNSUBSCRIBE": try space(); return .unsubscribe(try astring())
        case "LIST": return try listCommand()
        case "LSUB":
            try space()
            let reference = try astring()
            try space()
            return .lsub(reference: reference, pattern: try listMailbox())
        case "STATUS":
            try space()
            let mailbox = try astring()
            try space()
            var items: [String] = []
            try list { p in items.append(try p.atom(what: "a status item").uppercased()) }
            return .status(mailbox, items)
        case "APPEND":
            try space()
            let mailbox = try astring()
            try space()
            var flags: [String] = []
            var date: Date? = nil
            if peek == 0x28 {
                flags = try flagList()
                try space()
            }
            if peek == 0x22 {
                date = try dateTime()
                try space()
            }
            guard let message = try literal() else { throw fail("APPEND needs the message as a literal") }
            return .append(mailbox, flags: flags, date: date, message: message)
        case "UID":
            try space()
            let sub = try atom(what: "a UID command").uppercased()
            switch sub {
            case "FETCH", "STORE", "COPY", "MOVE", "SEARCH": return try messageCommand(sub, uid: true)
            case "EXPUNGE":
                try space()
                return .uidExpunge(try sequenceSet())
            default: throw fail("UID \(sub) is not a command")
            }
        case "FETCH", "STORE", "COPY", "MOVE", "SEARCH":
            return try messageCommand(name, uid: false)
        default:
            throw fail("unknown command \(String(name.prefix(30)))")
        }
    }

    private mutating func messageCommand(_ name: String, uid: Bool) throws -> IMAPCommand {
        try space()
        if name == "SEARCH" { return try search(uid: uid) }
        let set = try sequenceSet()
        try space()
        switch name {
        case "FETCH":
            let attributes = try fetchAttributes()
            var changedSince: UInt64? = nil
            var vanished = false
            if try optionalSpace() {
                try list { p in
                    let modifier = try p.atom(what: "a fetch modifier").uppercased()
                    switch modifier {
                    case "CHANGEDSINCE":
                        try p.space()
                        changedSince = try p.number64()
                    case "VANISHED": vanished = true
                    default: throw p.fail("unknown fetch modifier \(modifier)")
                    }
                }
            }
            return .fetch(uid: uid, set, attributes, changedSince: changedSince, vanished: vanished)
        case "STORE":
            var unchangedSince: UInt64? = nil
            if peek == 0x28 {
                try list { p in
                    let modifier = try p.atom(what: "a store modifier").uppercased()
                    guard modifier == "UNCHANGEDSINCE" else { throw p.fail("unknown store modifier \(modifier)") }
                    try p.space()
                    unchangedSince = try p.number64()
                }
                try space()
            }
            let item = try atom(what: "FLAGS, +FLAGS or -FLAGS").uppercased()
            let mode: StoreMode
            var rest = Substring(item)
            if rest.hasPrefix("+") { mode = .add; rest = rest.dropFirst() } else if rest.hasPrefix("-") { mode = .remove; rest = rest.dropFirst() } else { mode = .replace }
            let silent: Bool
            switch rest {
            case "FLAGS": silent = false
            case "FLAGS.SILENT": silent = true
            default: throw fail("STORE takes FLAGS, +FLAGS or -FLAGS (with .SILENT), not \(item.prefix(30))")
            }
            try space()
            let flags: [String]
            if peek == 0x28 {
                flags = try flagList()
            } else {
                var f = [try flag()]
                while try optionalSpace() { f.append(try flag()) }
                flags = f
            }
            return .store(uid: uid, set, mode, silent: silent, flags: flags, unchangedSince: unchangedSince)
        case "COPY": return .copy(uid: uid, set, try astring())
        default: return .move(uid: uid, set, try astring())
        }
    }

    // MARK: LIST

    private mutating func listCommand() throws -> IMAPCommand {
        try space()
        var selectSubscribed = false, selectSpecialUse = false
        if peek == 0x28 {
            try list { p in
                let option = try p.atom(what: "a LIST selection option").uppercased()
                switch option {
                case "SUBSCRIBED": selectSubscribed = true
                case "SPECIAL-USE": selectSpecialUse = true
                case "REMOTE", "RECURSIVEMATCH": break
                default: throw p.fail("unknown LIST selection option \(option)")
                }
            }
            try space()
        }
        let reference = try astring()
        try space()
        var patterns: [String] = []
        if peek == 0x28 {
            try list { p in patterns.append(try p.listMailbox()) }
        } else {
            patterns = [try listMailbox()]
        }
        var returnSubscribed = false, returnSpecialUse = false, returnChildren = false
        var returnStatus: [String]? = nil
        if try optionalSpace() {
            let word = try atom(what: "RETURN").uppercased()
            guard word == "RETURN" else { throw fail("expected RETURN, not \(word.prefix(20))") }
            try space()
            try list { p in
                let option = try p.atom(what: "a LIST return option").uppercased()
                switch option {
                case "SUBSCRIBED": returnSubscribed = true
                case "SPECIAL-USE": returnSpecialUse = true
                case "CHILDREN": returnChildren = true
                case "STATUS":
                    try p.space()
                    var items: [String] = []
                    try p.list { q in items.append(try q.atom(what: "a status item").uppercased()) }
                    returnStatus = items
                default: throw p.fail("unknown LIST return option \(option)")
                }
            }
        }
        return .list(reference: reference, patterns: patterns, selectSubscribed: selectSubscribed, selectSpecialUse: selectSpecialUse,
                     returnSubscribed: returnSubscribed, returnSpecialUse: returnSpecialUse, returnChildren: returnChildren, returnStatus: returnStatus)
    }

    /// list-mailbox: 1*list-char / string.
    private mutating func listMailbox() throws -> String {
        if peek == 0x22 || peek == 0x7B || peek == 0x7E { return try string() }
        return try atom(what: "a mailbox pattern", allow: IMAPSyntax.isListChar)
    }

    // MARK: FETCH

    private mutating func fetchAttributes() throws -> [FetchAttribute] {
        if peek == 0x28 {
            var out: [FetchAttribute] = []
            try list { p in out += try p.fetchAttribute() }
            guard !out.isEmpty else { throw fail("FETCH needs at least one item") }
            return out
        }
        return try fetchAttribute()
    }

    private mutating func fetchAttribute() throws -> [FetchAttribute] {
        let name = try atom(what: "a fetch item", allow: { IMAPSyntax.isAtomChar($0) && $0 != 0x5B && $0 != 0x3C }).uppercased()
        switch name {
        case "ALL": return [.flags, .internalDate, .size, .envelope]
        case "FAST": return [.flags, .internalDate, .size]
        case "FULL": return [.flags, .internalDate, .size, .envelope, .body]
        case "UID": return [.uid]
        case "FLAGS": return [.flags]
        case "INTERNALDATE": return [.internalDate]
        case "RFC822.SIZE": return [.size]
        case "ENVELOPE": return [.envelope]
        case "BODYSTRUCTURE": return [.bodyStructure]
        case "MODSEQ": return [.modSeq]
        case "RFC822": return [.section(BodySection(), partial: nil, peek: false, legacy: .rfc822)]
        case "RFC822.HEADER": return [.section(BodySection(text: .header), partial: nil, peek: true, legacy: .header)]
        case "RFC822.TEXT": return [.section(BodySection(text: .text), partial: nil, peek: false, legacy: .text)]
        case "BODY", "BODY.PEEK":
            guard peek == 0x5B else {
                if name == "BODY" { return [.body] }
                throw fail("BODY.PEEK needs a section")
            }
            let section = try bodySection()
            return [.section(section, partial: try partial(), peek: name == "BODY.PEEK", legacy: nil)]
        case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
            guard peek == 0x5B else { throw fail("\(name) needs a section") }
            i += 1
            var part: [Int] = []
            if peek != 0x5D { part = try partNumbers() }
            try expect(0x5D, "]")
            if name == "BINARY.SIZE" { return [.binarySize(part)] }
            return [.binary(part, partial: try partial(), peek: name == "BINARY.PEEK")]
        default:
            throw fail("unknown fetch item \(name.prefix(30))")
        }
    }

    private mutating func bodySection() throws -> BodySection {
        try expect(0x5B, "[")
        var section = BodySection()
        if peek == 0x5D {
            i += 1
            return section
        }
        if let b = peek, b >= 0x30 && b <= 0x39 {
            section.part = try partNumbers()
            if peek == 0x2E { i += 1 } else {
                try expect(0x5D, "]")
                return section
            }
        }
        let word = try atom(what: "a section", allow: { IMAPSyntax.isAtomChar($0) && $0 != 0x5D }).uppercased()
        switch word {
        case "HEADER": section.text = .header
        case "TEXT": section.text = .text
        case "MIME":
            guard !section.part.isEmpty else { throw fail("MIME needs a part number") }
            section.text = .mime
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try space()
            var names: [String] = []
            try list { p in names.append(try p.astring()) }
            guard !names.isEmpty else { throw fail("\(word) needs header names") }
            section.text = word == "HEADER.FIELDS" ? .headerFields(names) : .headerFieldsNot(names)
        default: throw fail("unknown section \(word.prefix(30))")
        }
        try expect(0x5D, "]")
        return section
    }

    private mutating func partNumbers() throws -> [Int] {
        var out = [try number(what: "a part number", nonZero: true)]
        while peek == 0x2E, let next = at(i + 1), next >= 0x30 && next <= 0x39 {
            i += 1
            out.append(try number(what: "a part number", nonZero: true))
            guard out.count <= 32 else { throw fail("a part number has at most 32 levels") }
        }
        return out
    }

    /// `<start.count>`
    private mutating func partial() throws -> ClosedRange<Int>? {
        guard peek == 0x3C else { return nil }
        i += 1
        let start = try number(what: "a partial start")
        try expect(0x2E, ".")
        let count = try number(what: "a partial length", nonZero: true)
        try expect(0x3E, ">")
        return start...(start + count - 1)
    }

    // MARK: SEARCH

    private mutating func search(uid: Bool) throws -> IMAPCommand {
        var returnOptions: [String]? = nil
        // RFC 4731 / RFC 9051 6.4.4: RETURN (MIN MAX ALL COUNT SAVE).
        if matchWord("RETURN") {
            try space()
            var options: [String] = []
            try list { p in options.append(try p.atom(what: "a search return option").uppercased()) }
            returnOptions = options
            try space()
        }
        if matchWord("CHARSET") {
            try space()
            let charset = try astring().uppercased()
            guard charset == "UTF-8" || charset == "US-ASCII" else {
                throw fail("[BADCHARSET (UTF-8 US-ASCII)] charset \(charset.prefix(30)) is not supported")
            }
            try space()
        }
        var keys = [try searchKey()]
        while try optionalSpace() { keys.append(try searchKey()) }
        return .search(uid: uid, returnOptions: returnOptions, key: keys.count == 1 ? keys[0] : .and(keys))
    }

    private mutating func searchKey() throws -> SearchKey {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("search keys nest deeper than \(Self.maxDepth)") }
        if peek == 0x28 {
            var keys: [SearchKey] = []
            try list { p in
                keys.append(try p.searchKey())
                while try p.optionalSpace() { keys.append(try p.searchKey()) }
            }
            guard !keys.isEmpty else { throw fail("an empty search key list") }
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if let b = peek, (b >= 0x30 && b <= 0x39) || b == 0x2A || b == 0x24 { return .sequence(try sequenceSet()) }
        let word = try atom(what: "a search key").uppercased()
        func arg() throws -> String { try space(); return try astring() }
        func day() throws -> IMAPDay { try space(); return try date() }
        switch word {
        case "ALL": return .all
        case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
            return .flag("\\" + word.prefix(1) + word.dropFirst().lowercased(), set: true)
        case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
            let f = word.dropFirst(2)
            return .flag("\\" + f.prefix(1) + f.dropFirst().lowercased(), set: false)
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        case "KEYWORD": return .keyword(try arg(), set: true)
        case "UNKEYWORD": return .keyword(try arg(), set: false)
        case "BEFORE": return .before(try day())
        case "ON": return .on(try day())
        case "SINCE": return .since(try day())
        case "SENTBEFORE": return .sentBefore(try day())
        case "SENTON": return .sentOn(try day())
        case "SENTSINCE": return .sentSince(try day())
        case "LARGER": try space(); return .larger(try number(what: "a size"))
        case "SMALLER": try space(); return .smaller(try number(what: "a size"))
        case "FROM", "TO", "CC", "BCC", "SUBJECT": return .header(word, try arg())
        case "HEADER":
            let name = try arg()
            return .header(name, try arg())
        case "BODY": return .body(try arg())
        case "TEXT": return .text(try arg())
        case "UID": try space(); return .uid(try sequenceSet())
        case "NOT": try space(); return .not(try searchKey())
        case "OR":
            try space()
            let a = try searchKey()
            try space()
            return .or(a, try searchKey())
        case "MODSEQ":
            try space()
            // RFC 7162 3.1.5: an optional entry name and type before the value.
            if peek == 0x22 {
                _ = try string()
                try space()
                _ = try atom(what: "priv, shared or all")
                try space()
            }
            return .modSeq(try number64())
        default: throw fail("unknown search key \(word.prefix(30))")
        }
    }

    /// date: `1-Feb-2026` or `"1-Feb-2026"`.
    private mutating func date() throws -> IMAPDay {
        let quoted = peek == 0x22
        if quoted { i += 1 }
        let text = String(decoding: bytes[i...].prefix { IMAPSyntax.isAtomChar($0) }.prefix(11), as: UTF8.self)
        i += text.utf8.count
        if quoted { try expect(0x22, "\"") }
        let parts = text.split(separator: "-")
        guard parts.count == 3, let d = Int(parts[0]), (1...31).contains(d), let m = Self.months.firstIndex(of: parts[1].lowercased()),
              parts[2].count == 4, let y = Int(parts[2]) else { throw fail("\(text) is not a date like 1-Feb-2026") }
        return IMAPDay(year: y, month: m + 1, day: d)
    }

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// date-time: `"17-Jul-1996 02:44:25 -0700"` (RFC 9051 9).
    private mutating func dateTime() throws -> Date {
        let text = try quoted()
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 3 else { throw fail("\(text.prefix(40)) is not a date-time like \"17-Jul-1996 02:44:25 -0700\"") }
        let day = fields[0].split(separator: "-"), time = fields[1].split(separator: ":"), zone = fields[2]
        guard day.count == 3, let d = Int(day[0]), let m = Self.months.firstIndex(of: day[1].lowercased()), let y = Int(day[2]),
              time.count == 3, let hh = Int(time[0]), let mm = Int(time[1]), let ss = Int(time[2]),
              zone.count == 5, let sign = zone.first, sign == "+" || sign == "-", let z = Int(zone.dropFirst()),
              (1...31).contains(d), (0...23).contains(hh), (0...59).contains(mm), (0...60).contains(ss) else {
            throw fail("\(text.prefix(40)) is not a date-time like \"17-Jul-1996 02:44:25 -0700\"")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        guard let utc = calendar.date(from: DateComponents(year: y, month: m + 1, day: d, hour: hh, minute: mm, second: ss)) else {
            throw fail("\(text.prefix(40)) is not a valid date")
        }
        let offset = (z / 100 * 3600 + z % 100 * 60) * (sign == "-" ? -1 : 1)
        return utc.addingTimeInterval(TimeInterval(-offset))
    }

    // MARK: sequence sets, flags

    private mutating func sequenceSet() throws -> SequenceSet {
        if peek == 0x24 {
            i += 1
            return SequenceSet(ranges: [], isSaved: true)
        }
        var ranges: [SequenceSet.Range] = []
        repeat {
            let from = try seqNumber()
            var to = from
            if peek == 0x3A {
                i += 1
                to = try seqNumber()
            }
            ranges.append(SequenceSet.Range(from: from, to: to))
            guard ranges.count <= SequenceSet.maxRanges else { throw fail("a sequence set has at most \(SequenceSet.maxRanges) ranges") }
        } while try optionalByte(0x2C)
        return SequenceSet(ranges: ranges)
    }

    private mutating func seqNumber() throws -> SequenceSet.Bound {
        if try optionalByte(0x2A) { return .last }
        let n = try number(what: "a message number", nonZero: true)
        guard n <= Int(UInt32.max) else { throw fail("\(n) is larger than a message number can be") }
        return .number(UInt32(n))
    }

    private mutating func flagList() throws -> [String] {
        var flags: [String] = []
        try list { p in flags.append(try p.flag()) }
        return flags
    }

    /// flag: "\" atom, or a keyword atom.
    private mutating func flag() throws -> String {
        if peek == 0x5C {
            i += 1
            let name = try atom(what: "a flag")
            return "\\" + name
        }
        return try atom(what: "a flag or keyword")
    }

    // MARK: tokens

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }
    private func at(_ n: Int) -> UInt8? { n < bytes.count ? bytes[n] : nil }

    private func preview() -> String {
        String(decoding: bytes[i...].prefix(30).map { $0 >= 0x20 && $0 < 0x7F ? $0 : 0x3F }, as: UTF8.self)
    }

    private mutating func space() throws {
        guard peek == 0x20 else { throw fail(peek == nil ? "the command ends too early" : "expected a space before \(preview())") }
        i += 1
    }

    private mutating func optionalSpace() throws -> Bool { try optionalByte(0x20) }

    private mutating func optionalByte(_ b: UInt8) throws -> Bool {
        guard peek == b else { return false }
        i += 1
        return true
    }

    private mutating func expect(_ b: UInt8, _ what: String) throws {
        guard peek == b else { throw fail("expected \(what) before \(preview())") }
        i += 1
    }

    private mutating func matchWord(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, zip(bytes[i..<(i + w.count)], w).allSatisfy({ ($0 | 0x20) == ($1 | 0x20) }),
              i + w.count == bytes.count || bytes[i + w.count] == 0x20 || bytes[i + w.count] == 0x29 else { return false }
        i += w.count
        return true
    }

    private mutating func optionalNil() throws -> Bool { matchWord("NIL") }

    private mutating func atom(what: String, allow: (UInt8) -> Bool = IMAPSyntax.isAtomChar) throws -> String {
        let s = i
        while let b = peek, allow(b) { i += 1 }
        guard i > s else { throw fail(peek == nil ? "the command ends before \(what)" : "expected \(what) before \(preview())") }
        guard i - s <= 1024 else { throw fail("\(what) is longer than 1024 octets") }
        return String(decoding: bytes[s..<i], as: UTF8.self)
    }

    private mutating func number(what: String, nonZero: Bool = false) throws -> Int {
        let s = i
        while let b = peek, b >= 0x30 && b <= 0x39 { i += 1 }
        guard i > s else { throw fail("expected \(what) before \(preview())") }
        guard i - s <= 10 else { throw fail("\(what) is too large") }
        let n = bytes[s..<i].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        if nonZero && n == 0 { throw fail("\(what) cannot be 0") }
        return n
    }

    private mutating func number64() throws -> UInt64 {
        let s = i
        while let b = peek, b >= 0x30 && b <= 0x39 { i += 1 }
        guard i > s, i - s <= 19 else { throw fail("expected a modification sequence (a number) before \(preview())") }
        return bytes[s..<i].reduce(0) { $0 * 10 + UInt64($1 - 0x30) }
    }

    /// astring: atom (with "]"), quoted string or literal.
    private mutating func astring() throws -> String {
        if peek == 0x22 || peek == 0x7B || peek == 0x7E { return try string() }
        return try atom(what: "a string", allow: IMAPSyntax.isAStringChar)
    }

    private mutating func nstring() throws -> String? {
        if try optionalNil() { return nil }
        return try string()
    }

    private mutating func string() throws -> String {
        if peek == 0x22 { return try quoted() }
        guard let l = try literal() else { throw fail("expected a string before \(preview())") }
        guard l.count <= 65_536 else { throw fail("a string literal here is at most 65536 octets") }
        return String(decoding: l, as: UTF8.self)
    }

    private mutating func quoted() throws -> String {
        try expect(0x22, "a quoted string")
        var out: [UInt8] = []
        while true {
            guard let b = peek else { throw fail("a quoted string is not closed") }
            i += 1
            switch b {
            case 0x22: return String(decoding: out, as: UTF8.self)
            case 0x5C:
                guard let next = peek, next == 0x22 || next == 0x5C else { throw fail("a backslash in a quoted string escapes only \" and \\") }
                out.append(next)
                i += 1
            case 0x0D, 0x0A, 0x00: throw fail("a quoted string cannot hold CR, LF or NUL")
            default: out.append(b)
            }
            guard out.count <= 8192 else { throw fail("a quoted string is longer than 8192 octets") }
        }
    }

    /// `{n}` or `{n+}` (or `~{n}`, RFC 3516), CRLF, n octets.
    private mutating func literal() throws -> [UInt8]? {
        if peek == 0x7E { i += 1 }
        guard peek == 0x7B else { return nil }
        i += 1
        let n = try number(what: "a literal's length")
        _ = try optionalByte(0x2B)
        try expect(0x7D, "}")
        if peek == 0x0D { i += 1 }
        try expect(0x0A, "a line end after the literal's length")
        guard i + n <= bytes.count else { throw fail("the literal is shorter than announced") }
        defer { i += n }
        return Array(bytes[i..<(i + n)])
    }

    /// Skips one value of any kind (an unknown parameter's).
    private mutating func skipValue() throws {
        if peek == 0x28 {
            try list { p in try p.skipValue() }
        } else {
            _ = try astring()
        }
    }

    /// `(` items separated by spaces `)`, each read by `item`.
    private mutating func list(_ item: (inout IMAPParser) throws -> Void) throws {
        try expect(0x28, "(")
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("lists nest deeper than \(Self.maxDepth)") }
        if try optionalByte(0x29) { return }
        var count = 0
        repeat {
            count += 1
            guard count <= Self.maxListItems else { throw fail("a list has more than \(Self.maxListItems) items") }
            try item(&self)
        } while try optionalSpace()
        try expect(0x29, ")")
    }
}
