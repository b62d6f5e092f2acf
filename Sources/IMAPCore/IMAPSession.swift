import Foundation
import InternetMessage
import SMTPCore

/// The server side of one IMAP session (RFC 9051 IMAP4rev2 and RFC 3501
/// IMAP4rev1, with the extensions in `capabilities`) as a state machine:
/// feed it commands (as `IMAPCommandInput` cuts them) and the outcomes of
/// what it asks for, send what it returns. It opens no socket and waits for nothing.
public struct IMAPSession: Sendable {
    public struct Policy: Sendable {
        public var hostname: String
        /// A TLS certificate is configured, so STARTTLS is offered.
        public var tlsAvailable: Bool
        /// Commands refused in a row before the session is closed.
        public var maxErrors: Int
        public var maxAuthFailures: Int
        /// Messages a SEARCH reads at most.
        public var maxSearch: Int
        /// Message bytes a FETCH or SEARCH holds at once: larger answers are read and sent in parts of this size
        /// (a part holds one message at least, so one of up to the message size limit).
        public var maxBytesPerRead: Int

        public init(hostname: String, tlsAvailable: Bool = true, maxErrors: Int = 20, maxAuthFailures: Int = 3, maxSearch: Int = 20_000,
                    maxBytesPerRead: Int = 4 << 20) {
            self.hostname = hostname
            self.tlsAvailable = tlsAvailable
            self.maxErrors = maxErrors
            self.maxAuthFailures = maxAuthFailures
            self.maxSearch = maxSearch
            self.maxBytesPerRead = max(1, maxBytesPerRead)
        }
    }

    public enum State: Sendable, Equatable {
        case notAuthenticated, authenticated, selected, logout
    }

    public enum Action: Sendable, Equatable {
        case send([UInt8])
        /// The OK to STARTTLS was sent: drop buffered input and start the TLS handshake.
        case startTLS
        case close
        /// Check credentials (feed `authenticated`).
        case authenticate(user: String, password: String)
        /// Run it against the mail store (feed `completed`).
        case perform(IMAPOperation)
        /// Tell the session of changes to this folder from now on (`changed`); nil: stop.
        case watch(String?)
    }

    private enum Pending: Sendable {
        case saslResponse(tag: String)
        case authentication(tag: String, user: String)
        case operation(tag: String, Context)
        case idle(tag: String)
    }

    private enum Context: Sendable {
        case list(reference: String, patterns: [String], lsub: Bool, selectSubscribed: Bool, selectSpecialUse: Bool,
                  returnSubscribed: Bool, returnSpecialUse: Bool, returnChildren: Bool, returnStatus: [String]?)
        case listStatus(lines: [[UInt8]], names: [String], items: [String])
        case status(String, items: [String])
        case select(String, readOnly: Bool, condStore: Bool)
        case simple(String)
        /// `seenNow`: messages this FETCH set \Seen on (told with their FLAGS, RFC 9051 6.4.5).
        case fetch(uid: Bool, targets: [Int: SelectedMailbox.Message], attributes: [FetchAttribute], seenNow: Set<UInt32>)
        case store(uid: Bool, silent: Bool, unchangedSince: UInt64?)
        case copy(uid: Bool, move: Bool)
        case expunge(uid: Bool, closing: Bool)
        case append
        case search(uid: Bool, key: SearchKey, returnOptions: [String]?, sequences: [UInt32: Int], hits: [UInt32])
    }

    public let policy: Policy
    public private(set) var state: State = .notAuthenticated
    public private(set) var tls: Bool
    public private(set) var user: String?
    public private(set) var selected: SelectedMailbox?
    public private(set) var selectedName: String?
    /// RFC 9051 / RFC 5161: the client enabled IMAP4rev2 (UTF-8 names, ESEARCH) or UTF8=ACCEPT.
    private var rev2 = false
    private var utf8 = false
    private var pending: Pending?
    private var errors = 0
    private var authFailures = 0

    public init(policy: Policy, tls: Bool = false) {
        self.policy = policy
        self.tls = tls
    }

    /// Something was handed out and its result is awaited: read nothing meanwhile (except an IDLE's DONE).
    public var isWaiting: Bool {
        switch pending {
        case .authentication, .operation: return true
        default: return false
        }
    }

    public var isIdling: Bool { if case .idle = pending { return true } else { return false } }
    /// The next line is a SASL response, not a command.
    public var isAwaitingSASL: Bool { if case .saslResponse = pending { return true } else { return false } }

    public func greeting() -> [UInt8] {
        line("* OK [CAPABILITY \(capabilities().joined(separator: " "))] \(policy.hostname) IMAP DirectHISP ready")
    }

    public func capabilities() -> [String] {
        var caps = ["IMAP4rev1", "IMAP4rev2"]
        if state == .notAuthenticated {
            if tls { caps += ["AUTH=PLAIN", "SASL-IR"] } else {
                if policy.tlsAvailable { caps.append("STARTTLS") }
                caps.append("LOGINDISABLED")
            }
        }
        caps += ["IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID", "ENABLE", "LITERAL+", "SPECIAL-USE", "CONDSTORE", "UNSELECT", "CHILDREN",
                 "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "UTF8=ACCEPT"]
        return caps
    }

    // MARK: input

    /// A command line over the limit (`IMAPCommandInput` skipped it).
    public mutating func lineTooLong() -> [Action] { error(nil, "the command line is too long") }

    /// A synchronizing literal over the limit: refused, it will not be sent.
    public mutating func literalTooLarge(tag: String?, size: Int) -> [Action] {
        if let tag { return [.send(line("\(tag) NO [TOOBIG] a literal of \(size) octets is larger than this server takes"))] }
        return error(nil, "a literal of \(size) octets is larger than this server takes")
    }

    /// One whole command (or a SASL response, or IDLE's DONE).
    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        guard state != .logout else { return [] }
        switch pending {
        case .saslResponse(let tag):
            pending = nil
            return saslResponse(tag: tag, String(decoding: bytes, as: UTF8.self))
        case .idle(let tag):
            guard String(decoding: bytes, as: UTF8.self).uppercased() == "DONE" else {
                // RFC 2177 3: anything but DONE ends the IDLE with BAD.
                pending = nil
                return [.send(line("\(tag) BAD expected DONE to end IDLE"))]
            }
            pending = nil
            return [.send(line("\(tag) OK IDLE terminated"))]
        case .authentication, .operation:
            return []
        case nil:
            break
        }
        switch IMAPParser.parse(bytes) {
        case .failure(let e):
            return error(e.tag, e.message)
        case .success(let c):
            errors = 0
            return execute(c.tag, c.command)
        }
    }

    private mutating func execute(_ tag: String, _ command: IMAPCommand) -> [Action] {
        switch command {
        case .capability:
            return [.send(line("* CAPABILITY \(capabilities().joined(separator: " "))")), ok(tag, "CAPABILITY completed")]
        case .noop, .check:
            return updates(expunges: true) + [ok(tag, "\(command == .noop ? "NOOP" : "CHECK") completed")]
        case .logout:
            state = .logout
            return [.send(line("* BYE \(policy.hostname) logging out")), ok(tag, "LOGOUT completed"), .close]
        case .id:
            return [.send(line("* ID (\"name\" \"DirectHISP\")")), ok(tag, "ID completed")]
        case .startTLS:
            guard state == .notAuthenticated else { return bad(tag, "STARTTLS is only for a session not yet signed in") }
            guard !tls else { return bad(tag, "TLS is already active") }
            guard policy.tlsAvailable else { return bad(tag, "TLS is not available") }
            return [ok(tag, "begin TLS negotiation now"), .startTLS]
        case .login(let user, let password):
            guard state == .notAuthenticated else { return bad(tag, "already signed in") }
            // RFC 9051 6.2.3: LOGINDISABLED before TLS.
            guard tls else { return no(tag, "[PRIVACYREQUIRED] sign in after STARTTLS (or on the TLS port)") }
            pending = .authentication(tag: tag, user: user)
            return [.authenticate(user: user, password: password)]
        case .authenticate(let mechanism, let initial):
            guard state == .notAuthenticated else { return bad(tag, "already signed in") }
            guard tls else { return no(tag, "[PRIVACYREQUIRED] sign in after STARTTLS (or on the TLS port)") }
            guard mechanism == "PLAIN" else { return no(tag, "only AUTHENTICATE PLAIN is offered") }
            if let initial { return saslResponse(tag: tag, initial) }
            pending = .saslResponse(tag: tag)
            return [.send(Array("+ \r\n".utf8))]
        case .enable(let caps):
            guard state != .notAuthenticated else { return bad(tag, "sign in first") }
            var enabled: [String] = []
            for c in caps {
                switch c {
                case "IMAP4REV2": rev2 = true; utf8 = true; enabled.append("IMAP4rev2")
                case "UTF8=ACCEPT": utf8 = true; enabled.append("UTF8=ACCEPT")
                case "CONDSTORE": selected?.condStore = true; enabled.append("CONDSTORE")
                default: break
                }
            }
            return [.send(line("* ENABLED" + enabled.map { " " + $0 }.joined())), ok(tag, "ENABLE completed")]
        case .namespace:
            guard state != .notAuthenticated else { return bad(tag, "sign in first") }
            return [.send(line("* NAMESPACE ((\"\" \"/\")) NIL NIL")), ok(tag, "NAMESPACE completed")]
        default:
            guard state == .authenticated || state == .selected else {
                return state == .notAuthenticated ? bad(tag, "sign in first") : []
            }
            return authenticatedCommand(tag, command)
        }
    }

    // MARK: sign-in

    private mutating func saslResponse(tag: String, _ text: String) -> [Action] {
        if text == "*" { return [.send(line("\(tag) BAD authentication cancelled"))] }
        guard let decoded = Base64Text.decode(text) else { return failAuth(tag, "the response is not base64") }
        switch SASLPlain.credentials(decoded) {
        case .success(let c) where !c.user.isEmpty:
            pending = .authentication(tag: tag, user: c.user)
            return [.authenticate(user: c.user, password: c.password)]
        case .failure(.otherIdentity):
            return failAuth(tag, "acting for another user is not allowed")
        default:
            return failAuth(tag, "the response is not authzid NUL user NUL password")
        }
    }

    private mutating func failAuth(_ tag: String, _ why: String) -> [Action] {
        authFailures += 1
        var out: [Action] = [.send(line("\(tag) NO [AUTHENTICATIONFAILED] \(why)"))]
        if authFailures >= policy.maxAuthFailures {
            state = .logout
            out += [.send(line("* BYE too many failed sign-ins")), .close]
        }
        return out
    }

    /// The result of `.authenticate`: the user's name as the HISP knows it, or nil when refused.
    /// RFC 9051 7.1: the same answer for an unknown user and a wrong password.
    public mutating func authenticated(_ name: String?) -> [Action] {
        guard case .authentication(let tag, _) = pending else { return [] }
        pending = nil
        guard let name else { return failAuth(tag, "the user name or password is wrong, or sign-in is locked for a while") }
        user = name
        state = .authenticated
        return [.send(line("\(tag) OK [CAPABILITY \(capabilities().joined(separator: " "))] signed in"))]
    }

    /// The credentials were right but the user holds as many sessions as allowed:
    /// RFC 5530 3 [LIMIT]; not a failed sign-in (no lockout count), the session stays unauthenticated.
    public mutating func signInRefused(_ why: String) -> [Action] {
        guard case .authentication(let tag, _) = pending else { return [] }
        pending = nil
        return [.send(line("\(tag) NO [LIMIT] \(why)"))]
    }

    public mutating func tlsEstablished() { tls = true }

    // MARK: commands after sign-in

    private mutating func authenticatedCommand(_ tag: String, _ command: IMAPCommand) -> [Action] {
        switch command {
        case .select(let name, let condStore), .examine(let name, let condStore):
            let readOnly: Bool
            if case .examine = command { readOnly = true } else { readOnly = false }
            guard let folder = folderName(name) else { return no(tag, "[CANNOT] \(name.prefix(60)) is not valid modified UTF-7") }
            // RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected.
            var out: [Action] = []
            if selected != nil {
                out += [.send(line("* OK [CLOSED] the previous mailbox is closed")), .watch(nil)]
                selected = nil
                selectedName = nil
                state = .authenticated
            }
            pending = .operation(tag: tag, .select(folder, readOnly: readOnly, condStore: condStore))
            return out + [.perform(.select(folder))]
        case .create(let name):
            guard let folder = folderName(name) else { return no(tag, "[CANNOT] \(name.prefix(60)) is not valid modified UTF-7") }
            // RFC 9051 6.3.4: a trailing separator only says the folder will hold others.
            let trimmed = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
            return operation(tag, .simple("CREATE completed"), .create(trimmed))
        case .delete(let name):
            guard let folder = folderName(name) else { return no(tag, "[NONEXISTENT] no such folder") }
            return operation(tag, .simple("DELETE completed"), .delete(folder))
        case .rename(let from, let to):
            guard let a = folderName(from), let b = folderName(to) else { return no(tag, "[CANNOT] a name is not valid modified UTF-7") }
            return operation(tag, .simple("RENAME completed"), .rename(a, b))
        case .subscribe(let name), .unsubscribe(let name):
            guard let folder = folderName(name) else { return no(tag, "[NONEXISTENT] no such folder") }
            let on: Bool
            if case .subscribe = command { on = true } else { on = false }
            return operation(tag, .simple("\(on ? "SUBSCRIBE" : "UNSUBSCRIBE") completed"), .subscribe(folder, on))
        case .list(let reference, let patterns, let selectSubscribed, let selectSpecialUse, let returnSubscribed, _,
                   let returnChildren, let returnStatus):
            if patterns == [""] {
                // RFC 9051 6.3.9: the hierarchy separator and the root.
                return [.send(line("* LIST (\\Noselect) \"/\" \"\"")), ok(tag, "LIST completed")]
            }
            return operation(tag, .list(reference: reference, patterns: patterns, lsub: false, selectSubscribed: selectSubscribed,
                                        selectSpecialUse: selectSpecialUse, returnSubscribed: returnSubscribed || selectSubscribed,
                                        returnSpecialUse: true, returnChildren: returnChildren, returnStatus: returnStatus), .list)
        case .lsub(let reference, let pattern):
            return operation(tag, .list(reference: reference, patterns: [pattern], lsub: true, selectSubscribed: true, selectSpecialUse: false,
                                        returnSubscribed: false, returnSpecialUse: false, returnChildren: false, returnStatus: nil), .list)
        case .status(let name, let items):
            guard let folder = folderName(name) else { return no(tag, "[NONEXISTENT] no such folder") }
            return operation(tag, .status(folder, items: items), .status(folder))
        case .append(let name, let flags, let date, let message):
            guard let folder = folderName(name) else { return no(tag, "[TRYCREATE] no such folder") }
            return operation(tag, .append, .append(folder: folder, flags: flags, date: date, message: message))
        case .idle:
            pending = .idle(tag: tag)
            return [.send(Array("+ idling\r\n".utf8))] + updates(expunges: true)
        default:
            guard state == .selected, let box = selected, let folder = selectedName else { return bad(tag, "select a mailbox first") }
            return selectedCommand(tag, command, box, folder)
        }
    }

    private mutating func selectedCommand(_ tag: String, _ command: IMAPCommand, _ box: SelectedMailbox, _ folder: String) -> [Action] {
        switch command {
        case .close, .unselect:
            let close = command == .close
            selected = nil
            selectedName = nil
            state = .authenticated
            // RFC 9051 6.4.1: CLOSE expunges silently (not in a read-only mailbox).
            if close && !box.readOnly {
                pending = .operation(tag: tag, .expunge(uid: false, closing: true))
                return [.watch(nil), .perform(.expunge(folder: folder, uids: nil))]
            }
            return [.watch(nil), ok(tag, "\(close ? "CLOSE" : "UNSELECT") completed")]
        case .expunge, .uidExpunge:
            guard !box.readOnly else { return no(tag, "[READ-ONLY] the mailbox is open read-only") }
            var uids: [UInt32]? = nil
            if case .uidExpunge(let set) = command { uids = box.resolve(set, byUID: true).map(\.message.uid) }
            return operation(tag, .expunge(uid: uids != nil, closing: false), .expunge(folder: folder, uids: uids))
        case .fetch(let uid, let set, var attributes, let changedSince, _):
            if !uid && !box.isValid(set) { return bad(tag, "no such message number") }
            if uid && !attributes.contains(.uid) { attributes.insert(.uid, at: 0) }
            if changedSince != nil {
                selected?.condStore = true
                if !attributes.contains(.modSeq) { attributes.append(.modSeq) }
            }
            var targets = box.resolve(set, byUID: uid)
            if let since = changedSince { targets = targets.filter { $0.message.modSeq > since } }
            guard !targets.isEmpty else { return updates(expunges: uid) + [ok(tag, "FETCH completed")] }
            let bodies = attributes.contains { a in
                switch a {
                case .flags, .uid, .internalDate, .size, .modSeq: return false
                default: return true
                }
            }
            let marks = box.readOnly ? [] : attributes.contains { a in
                switch a {
                case .section(_, _, let peek, _), .binary(_, _, let peek): return !peek
                default: return false
                }
            } ? targets.filter { !$0.message.flags.contains("\\Seen") }.map(\.message.uid) : []
            let byUID = Dictionary(targets.map { (Int($0.message.uid), $0.message) }, uniquingKeysWith: { a, _ in a })
            return operation(tag, .fetch(uid: uid, targets: byUID, attributes: attributes, seenNow: []),
                             .fetch(folder: folder, uids: targets.map(\.message.uid), bodies: bodies, markSeen: marks, maxBytes: policy.maxBytesPerRead))
        case .store(let uid, let set, let mode, let silent, let flags, let unchangedSince):
            guard !box.readOnly else { return no(tag, "[READ-ONLY] the mailbox is open read-only") }
            if !uid && !box.isValid(set) { return bad(tag, "no such message number") }
            if unchangedSince != nil { selected?.condStore = true }
            let targets = box.resolve(set, byUID: uid)
            guard !targets.isEmpty else { return ok(tag, "STORE completed").asList }
            return operation(tag, .store(uid: uid, silent: silent, unchangedSince: unchangedSince),
                             .store(folder: folder, uids: targets.map(\.message.uid), mode, flags: flags, unchangedSince: unchangedSince))
        case .copy(let uid, let set, let name), .move(let uid, let set, let name):
            let move: Bool
            if case .move = command { move = true } else { move = false }
            if move && box.readOnly { return no(tag, "[READ-ONLY] the mailbox is open read-only") }
            if !uid && !box.isValid(set) { return bad(tag, "no such message number") }
            guard let to = folderName(name) else { return no(tag, "[TRYCREATE] no such folder") }
            let uids = box.resolve(set, byUID: uid).map(\.message.uid)
            guard !uids.isEmpty else { return ok(tag, "\(move ? "MOVE" : "COPY") completed").asList }
            return operation(tag, .copy(uid: uid, move: move),
                             move ? .move(folder: folder, uids: uids, to: to) : .copy(folder: folder, uids: uids, to: to))
        case .search(let uid, let returnOptions, let key):
            let all = box.messages.prefix(policy.maxSearch)
            guard all.count == box.count else { return no(tag, "[LIMIT] the mailbox has more than \(policy.maxSearch) messages to search") }
            let sequences = Dictionary(all.enumerated().map { ($0.element.uid, $0.offset + 1) }, uniquingKeysWith: { a, _ in a })
            if Self.needsModSeq(key) { selected?.condStore = true }
            return operation(tag, .search(uid: uid, key: key, returnOptions: returnOptions, sequences: sequences, hits: []),
                             .fetch(folder: folder, uids: all.map(\.uid), bodies: Self.needsContent(key), markSeen: [],
                                    maxBytes: policy.maxBytesPerRead))
        default:
            return bad(tag, "not a command for the selected state")
        }
    }

    private mutating func operation(_ tag: String, _ context: Context, _ op: IMAPOperation) -> [Action] {
        pending = .operation(tag: tag, context)
        return [.perform(op)]
    }

    // MARK: outcomes

    /// The outcome of `.perform`.
    public mutating func completed(_ outcome: IMAPOutcome) -> [Action] {
        guard case .operation(let tag, let context) = pending else { return [] }
        pending = nil
        if case .failed(let code, let text) = outcome {
            if case .select = context { return no(tag, "[\(code.rawValue)] \(text)") }
            if case .append = context, code == .nonexistent { return no(tag, "[TRYCREATE] \(text)") }
            if case .copy = context, code == .nonexistent { return no(tag, "[TRYCREATE] \(text)") }
            if case .expunge(_, true) = context { return ok(tag, "CLOSE completed (\(text))").asList }
            return no(tag, "[\(code.rawValue)] \(text)")
        }
        switch (context, outcome) {
        case (.simple(let text), .done):
            return updates(expunges: true) + [ok(tag, text)]
        case (.list(let reference, let patterns, let lsub, let selectSubscribed, let selectSpecialUse, let returnSubscribed, _, _,
                    let returnStatus), .folders(let folders)):
            var lines: [[UInt8]] = []
            var names: [String] = []
            for f in folders where patterns.contains(where: { Self.matches(f.name, pattern: reference + $0) }) {
                if selectSubscribed && !f.subscribed { continue }
                if selectSpecialUse && f.specialUse == nil { continue }
                var attributes = [f.hasChildren ? "\\HasChildren" : "\\HasNoChildren"]
                if let s = f.specialUse, !lsub { attributes.append(s) }
                if returnSubscribed && f.subscribed { attributes.append("\\Subscribed") }
                lines.append(Array("* \(lsub ? "LSUB" : "LIST") (\(attributes.joined(separator: " "))) \"/\" ".utf8) + IMAPString.astring(mailboxText(f.name)) + [13, 10])
                names.append(f.name)
            }
            if let items = returnStatus, !names.isEmpty {
                pending = .operation(tag: tag, .listStatus(lines: lines, names: names, items: items))
                return [.send(lines.flatMap { $0 }), .perform(.status(names[0]))]
            }
            return [.send(lines.flatMap { $0 }), ok(tag, "\(lsub ? "LSUB" : "LIST") completed")]
        case (.listStatus(let lines, var names, let items), .counts(let counts)):
            let name = names.removeFirst()
            let out: [Action] = [.send(statusLine(name, items, counts))]
            if let next = names.first {
                pending = .operation(tag: tag, .listStatus(lines: lines, names: names, items: items))
                return out + [.perform(.status(next))]
            }
            return out + [ok(tag, "LIST completed")]
        case (.status(let name, let items), .counts(let counts)):
            return [.send(statusLine(name, items, counts)), ok(tag, "STATUS completed")]
        case (.select(let name, let readOnly, let condStore), .selected(let counts, let messages)):
            var box = SelectedMailbox(uidValidity: counts.uidValidity, uidNext: counts.uidNext, highestModSeq: counts.highestModSeq,
                                      messages: messages, readOnly: readOnly)
            box.condStore = condStore
            selected = box
            selectedName = name
            state = .selected
            var text = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            text += "* OK [PERMANENTFLAGS (\(readOnly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*"))] flags\r\n"
            text += "* \(box.count) EXISTS\r\n"
            if !rev2 { text += "* 0 RECENT\r\n" }
            if let firstUnseen = box.messages.firstIndex(where: { !$0.flags.contains("\\Seen") }), !rev2 {
                text += "* OK [UNSEEN \(firstUnseen + 1)] first unseen\r\n"
            }
            text += "* OK [UIDVALIDITY \(counts.uidValidity)] UIDs valid\r\n* OK [UIDNEXT \(counts.uidNext)] predicted next UID\r\n"
            text += "* OK [HIGHESTMODSEQ \(counts.highestModSeq)] highest\r\n"
            return [.send(Array(text.utf8)), .watch(name), ok(tag, "[\(readOnly ? "READ-ONLY" : "READ-WRITE")] \(readOnly ? "EXAMINE" : "SELECT") completed")]
        case (.fetch(let uid, var targets, let attributes, var seenNow), .fetched(let stored, let changed, let rest)):
            for m in changed {
                selected?.stored(m)
                targets[Int(m.uid)] = m
                seenNow.insert(m.uid)
            }
            var out: [UInt8] = []
            for s in stored {
                guard let current = targets[Int(s.uid)], let seq = selected?.sequence(of: s.uid) else { continue }
                out += fetchResponse(seq, current, s, attributes, flagsChanged: seenNow.contains(s.uid))
            }
            if let folder = selectedName, !rest.isEmpty {
                // This part is sent; the next one is read while the client takes it.
                pending = .operation(tag: tag, .fetch(uid: uid, targets: targets, attributes: attributes, seenNow: seenNow))
                return [.send(out), .perform(.fetch(folder: folder, uids: rest, bodies: true, markSeen: [], maxBytes: policy.maxBytesPerRead))]
            }
            return [.send(out)] + updates(expunges: uid) + [ok(tag, "FETCH completed")]
        case (.store(let uid, let silent, let unchangedSince), .stored(let updated, let failed)):
            var out: [UInt8] = []
            for m in updated {
                selected?.stored(m)
                guard !silent || unchangedSince != nil, let seq = selected?.sequence(of: m.uid) else { continue }
                out += fetchFlagsLine(seq, m, uid: uid || unchangedSince != nil)
            }
            var text = "STORE completed"
            if !failed.isEmpty {
                let list = uid ? failed.map(String.init) : failed.compactMap { selected?.sequence(of: $0) }.map(String.init)
                text = "[MODIFIED \(list.joined(separator: ","))] conditional STORE failed for some"
            }
            return [.send(out)] + updates(expunges: uid) + [ok(tag, text)]
        case (.copy(_, let move), .copied(let validity, let pairs)):
            let code = pairs.isEmpty ? "" : "[COPYUID \(validity) \(pairs.map { String($0.from) }.joined(separator: ",")) \(pairs.map { String($0.to) }.joined(separator: ","))] "
            if move {
                // RFC 6851 4.3: COPYUID in an untagged OK, then the EXPUNGEs.
                var out: [Action] = code.isEmpty ? [] : [.send(line("* OK \(code)moved"))]
                let numbers = selected?.expungedHere(pairs.map(\.from)) ?? []
                if !numbers.isEmpty { out.append(.send(Array(numbers.map { "* \($0) EXPUNGE\r\n" }.joined().utf8))) }
                return out + updates(expunges: true) + [ok(tag, "MOVE completed")]
            }
            return updates(expunges: true) + [ok(tag, "\(code)COPY completed")]
        case (.expunge(_, let closing), .expunged(let uids)):
            if closing { return [ok(tag, "CLOSE completed")] }
            let numbers = selected?.expungedHere(uids) ?? []
            var out: [Action] = []
            if !numbers.isEmpty { out.append(.send(Array(numbers.map { "* \($0) EXPUNGE\r\n" }.joined().utf8))) }
            return out + updates(expunges: true) + [ok(tag, "EXPUNGE completed")]
        case (.append, .appended(let validity, let uid)):
            return updates(expunges: true) + [ok(tag, "[APPENDUID \(validity) \(uid)] APPEND completed")]
        case (.search(let uid, let key, let returnOptions, let sequences, var hits), .fetched(let stored, _, let rest)):
            guard let box = selected, let folder = selectedName else { return [ok(tag, "SEARCH completed")] }
            for s in stored {
                guard let seq = sequences[s.uid], let m = box.sequence(of: s.uid).map({ box.messages[$0 - 1] }) else { continue }
                if Self.evaluate(key, SearchCandidate(sequence: seq, message: m, stored: s, largestUID: box.messages.last?.uid ?? 0,
                                                      count: box.count)) {
                    hits.append(uid ? s.uid : UInt32(seq))
                }
            }
            if !rest.isEmpty {
                // The contents are searched a part at a time; only the hits are kept.
                pending = .operation(tag: tag, .search(uid: uid, key: key, returnOptions: returnOptions, sequences: sequences, hits: hits))
                return [.perform(.fetch(folder: folder, uids: rest, bodies: true, markSeen: [], maxBytes: policy.maxBytesPerRead))]
            }
            hits.sort()
            var out: [UInt8]
            if let options = returnOptions ?? (rev2 ? ["ALL"] : nil) {
                var parts = ["* ESEARCH (TAG \"\(tag)\")"]
                if uid { parts.append("UID") }
                let wanted = options.isEmpty ? ["ALL"] : options
                if wanted.contains("MIN"), let first = hits.first { parts.append("MIN \(first)") }
                if wanted.contains("MAX"), let last = hits.last { parts.append("MAX \(last)") }
                if wanted.contains("ALL"), !hits.isEmpty { parts.append("ALL \(Self.compress(hits))") }
                if wanted.contains("COUNT") { parts.append("COUNT \(hits.count)") }
                out = line(parts.joined(separator: " "))
            } else {
                out = line("* SEARCH" + hits.map { " \($0)" }.joined())
            }
            return [.send(out)] + updates(expunges: uid) + [ok(tag, "SEARCH completed")]
        default:
            return no(tag, "[SERVERBUG] an unexpected answer from the mail store")
        }
    }

    // MARK: changes from others

    /// Changes to the selected folder (the change stream). Told at once while idling,
    /// else with the next command's answer.
    public mutating func changed(_ changes: [SelectedMailbox.Change]) -> [Action] {
        guard selected != nil else { return [] }
        for c in changes { selected?.apply(c) }
        return isIdling ? updates(expunges: true) : []
    }

    private mutating func updates(expunges: Bool) -> [Action] {
        guard var box = selected else { return [] }
        let list = box.updates(expungesAllowed: expunges)
        selected = box
        guard !list.isEmpty else { return [] }
        var text = ""
        for u in list {
            switch u {
            case .expunge(let s): text += "* \(s) EXPUNGE\r\n"
            case .exists(let n): text += "* \(n) EXISTS\r\n"
            case .fetchFlags(let s, let uid, let flags, let modSeq):
                text += "* \(s) FETCH (UID \(uid) FLAGS (\(flags.joined(separator: " ")))\(modSeq.map { " MODSEQ (\($0))" } ?? ""))\r\n"
            }
        }
        return [.send(Array(text.utf8))]
    }

    // MARK: FETCH responses

    private func fetchFlagsLine(_ seq: Int, _ m: SelectedMailbox.Message, uid: Bool) -> [UInt8] {
        var items: [String] = []
        if uid { items.append("UID \(m.uid)") }
        items.append("FLAGS (\(m.flags.joined(separator: " ")))")
        if selected?.condStore == true { items.append("MODSEQ (\(m.modSeq))") }
        return line("* \(seq) FETCH (\(items.joined(separator: " ")))")
    }

    private func fetchResponse(_ seq: Int, _ m: SelectedMailbox.Message, _ s: IMAPStoredMessage, _ attributes: [FetchAttribute],
                               flagsChanged: Bool) -> [UInt8] {
        var items: [[UInt8]] = []
        // The MIME structure only when an item needs it (not for BODY[] or RFC822 whole).
        let needsStructure = attributes.contains { a in
            switch a {
            case .envelope, .bodyStructure, .body, .binary, .binarySize: return true
            case .section(let section, _, _, _): return !(section.part.isEmpty && section.text == .whole)
            default: return false
            }
        }
        let entity = needsStructure ? s.bytes.flatMap { try? MIMEEntity(parsing: $0) } : nil
        var sentFlags = false
        for a in attributes {
            switch a {
            case .uid: items.append(Array("UID \(m.uid)".utf8))
            case .flags:
                items.append(Array("FLAGS (\(m.flags.joined(separator: " ")))".utf8))
                sentFlags = true
            case .internalDate: items.append(Array("INTERNALDATE \"\(Self.internalDate(s.internalDate))\"".utf8))
            case .size: items.append(Array("RFC822.SIZE \(s.size)".utf8))
            case .modSeq: items.append(Array("MODSEQ (\(m.modSeq))".utf8))
            case .envelope:
                items.append(Array("ENVELOPE ".utf8) + (entity.map { MessageStructure.envelope($0.headers) } ?? Array("NIL".utf8)))
            case .bodyStructure, .body:
                let extensible = a == .bodyStructure
                items.append(Array((extensible ? "BODYSTRUCTURE " : "BODY ").utf8)
                             + (entity.map { MessageStructure.bodyStructure($0, extensible: extensible) } ?? Array("NIL".utf8)))
            case .section(let section, let partial, _, let legacy):
                let content = entity.flatMap { Self.section(section, of: $0) } ?? (section.part.isEmpty && section.text == .whole ? s.bytes.map { $0[...] } : nil)
                var name = legacy?.rawValue ?? "BODY[\(Self.describe(section))]"
                var data: ArraySlice<UInt8>? = content
                if let partial, let c = content {
                    name += "<\(partial.lowerBound)>"
                    let start = min(c.startIndex + partial.lowerBound, c.endIndex)
                    data = c[start..<min(start + partial.count, c.endIndex)]
                }
                items.append(Array("\(name) ".utf8) + (data.map { IMAPString.literal($0) } ?? Array("NIL".utf8)))
            case .binary(let part, let partial, _):
                var decoded: [UInt8]? = nil
                if let e = entity, let p = Self.part(part, of: e) { decoded = try? p.decodedBody() }
                var name = "BINARY[\(part.map(String.init).joined(separator: "."))]"
                var data = decoded?[...]
                if let partial, let d = decoded {
                    name += "<\(partial.lowerBound)>"
                    let start = min(partial.lowerBound, d.count)
                    data = d[start..<min(start + partial.count, d.count)]
                }
                items.append(Array("\(name) ".utf8) + (data.map { Array("~".utf8) + IMAPString.literal($0) } ?? Array("NIL".utf8)))
            case .binarySize(let part):
                var size = 0
                if let e = entity, let p = Self.part(part, of: e) { size = (try? p.decodedBody().count) ?? 0 }
                items.append(Array("BINARY.SIZE[\(part.map(String.init).joined(separator: "."))] \(size)".utf8))
            }
        }
        // RFC 9051 6.4.5: a \Seen set by this fetch is told with it.
        if flagsChanged && !sentFlags { items.append(Array("FLAGS (\(m.flags.joined(separator: " ")))".utf8)) }
        var out = Array("* \(seq) FETCH (".utf8)
        for (i, item) in items.enumerated() {
            if i > 0 { out.append(0x20) }
            out += item
        }
        return out + Array(")\r\n".utf8)
    }

    static func describe(_ s: BodySection) -> String {
        var parts = s.part.map(String.init)
        switch s.text {
        case .whole: break
        case .header: parts.append("HEADER")
        case .text: parts.append("TEXT")
        case .mime: parts.append("MIME")
        case .headerFields(let names): parts.append("HEADER.FIELDS (\(names.map { $0.uppercased() }.joined(separator: " ")))")
        case .headerFieldsNot(let names): parts.append("HEADER.FIELDS.NOT (\(names.map { $0.uppercased() }.joined(separator: " ")))")
        }
        return parts.joined(separator: ".")
    }

    /// The entity a part number names (RFC 9051 6.4.5): in a multipart, its n-th part; part 1 of a single part is itself;
    /// inside a message/rfc822 part, its message's parts.
    static func part(_ numbers: [Int], of root: MIMEEntity) -> MIMEEntity? {
        var e = root
        for n in numbers {
            if e.contentType.mimeType == "message/rfc822", let inner = try? MIMEEntity(parsing: Array(e.bodyBytes)) { e = inner }
            if e.contentType.isMultipart {
                guard n >= 1, n <= e.parts.count else { return nil }
                e = e.parts[n - 1]
            } else {
                guard n == 1 else { return nil }
            }
        }
        return e
    }

    static func section(_ s: BodySection, of root: MIMEEntity) -> ArraySlice<UInt8>? {
        guard var e = part(s.part, of: root) else { return nil }
        switch s.text {
        case .whole:
            return s.part.isEmpty ? root.bytes : e.bodyBytes
        case .mime:
            return e.headerBytes
        case .header, .text, .headerFields, .headerFieldsNot:
            // Of a message/rfc822 part: its message's header and text.
            if !s.part.isEmpty {
                guard e.contentType.mimeType == "message/rfc822", let inner = try? MIMEEntity(parsing: Array(e.bodyBytes)) else { return nil }
                e = inner
            }
            switch s.text {
            case .text: return e.bodyBytes
            case .header: return e.headerBytes
            case .headerFields(let names), .headerFieldsNot(let names):
                let wanted = Set(names.map { $0.lowercased() })
                let keep = { (f: HeaderField) in wanted.contains(f.name.lowercased()) == { if case .headerFields = s.text { return true } else { return false } }() }
                var out: [UInt8] = []
                for f in e.headers where keep(f) { out += e.source[f.range] }
                return (out + [13, 10])[...]
            default: return nil
            }
        }
    }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// date-time (RFC 9051 9), in UTC: `03-Dec-2026 15:04:05 +0000`.
    static func internalDate(_ d: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: d)
        func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }
        return "\(two(c.day))-\(monthNames[max(0, min(11, (c.month ?? 1) - 1))])-\(c.year ?? 1970) \(two(c.hour)):\(two(c.minute)):\(two(c.second)) +0000"
    }

    // MARK: SEARCH

    struct SearchCandidate {
        let sequence: Int
        let message: SelectedMailbox.Message
        let stored: IMAPStoredMessage
        let largestUID: UInt32
        let count: Int
    }

    static func needsContent(_ k: SearchKey) -> Bool {
        switch k {
        case .header, .body, .text, .sentBefore, .sentOn, .sentSince: return true
        case .not(let a): return needsContent(a)
        case .or(let a, let b): return needsContent(a) || needsContent(b)
        case .and(let keys): return keys.contains(where: needsContent)
        default: return false
        }
    }

    static func needsModSeq(_ k: SearchKey) -> Bool {
        switch k {
        case .modSeq: return true
        case .not(let a): return needsModSeq(a)
        case .or(let a, let b): return needsModSeq(a) || needsModSeq(b)
        case .and(let keys): return keys.contains(where: needsModSeq)
        default: return false
        }
    }

    static func evaluate(_ k: SearchKey, _ c: SearchCandidate) -> Bool {
        let flags = Set(c.message.flags.map { $0.lowercased() })
        func day(_ d: Date) -> IMAPDay {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
            let x = calendar.dateComponents([.year, .month, .day], from: d)
            return IMAPDay(year: x.year ?? 0, month: x.month ?? 0, day: x.day ?? 0)
        }
        func sentDay() -> IMAPDay? {
            guard let bytes = c.stored.bytes, let e = try? MIMEEntity(parsing: bytes), let date = e.headers["Date"],
                  let d = RFC5322Date.parse(date) else { return nil }
            return day(d)
        }
        switch k {
        case .all: return true
        case .flag(let f, let set): return flags.contains(f.lowercased()) == set
        case .keyword(let f, let set): return flags.contains(f.lowercased()) == set
        case .new: return !flags.contains("\\seen")
        case .old: return true
        case .recent: return false
        case .before(let d): return day(c.stored.internalDate) < d
        case .on(let d): return day(c.stored.internalDate) == d
        case .since(let d): return day(c.stored.internalDate) >= d
        case .sentBefore(let d): return sentDay().map { $0 < d } ?? false
        case .sentOn(let d): return sentDay() == d
        case .sentSince(let d): return sentDay().map { $0 >= d } ?? false
        case .larger(let n): return c.stored.size > n
        case .smaller(let n): return c.stored.size < n
        case .header(let name, let text):
            guard let bytes = c.stored.bytes, let e = try? MIMEEntity(parsing: bytes) else { return false }
            let needle = text.lowercased()
            return e.headers.all(name).contains { needle.isEmpty || $0.decodedValue.lowercased().contains(needle) }
        case .body(let text), .text(let text):
            guard let bytes = c.stored.bytes else { return false }
            let needle = Array(text.lowercased().utf8)
            guard !needle.isEmpty else { return true }
            var haystack: ArraySlice<UInt8> = bytes[...]
            if case .body = k, let e = try? MIMEEntity(parsing: bytes) {
                haystack = e.bodyBytes
            }
            return contains(haystack, needle) || decodedContains(bytes, text.lowercased())
        case .uid(let set): return set.resolved(largest: c.largestUID).contains { $0.contains(c.message.uid) }
        case .sequence(let set): return set.resolved(largest: UInt32(c.count)).contains { $0.contains(UInt32(c.sequence)) }
        case .not(let a): return !evaluate(a, c)
        case .or(let a, let b): return evaluate(a, c) || evaluate(b, c)
        case .and(let keys): return keys.allSatisfy { evaluate($0, c) }
        case .modSeq(let n): return c.message.modSeq >= n
        }
    }

    /// Case-insensitive (ASCII) substring search in bytes.
    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return needle.isEmpty }
        var i = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while i <= last {
            if lower(haystack[i]) == first {
                var j = 1
                while j < needle.count && lower(haystack[i + j]) == needle[j] { j += 1 }
                if j == needle.count { return true }
            }
            i += 1
        }
        return false
    }

    /// The text parts decoded (base64, quoted-printable), for words a transfer encoding hides.
    static func decodedContains(_ bytes: [UInt8], _ needle: String) -> Bool {
        guard let root = try? MIMEEntity(parsing: bytes) else { return false }
        var stack = [root]
        var visited = 0
        while let e = stack.popLast(), visited < 100 {
            visited += 1
            if e.contentType.isMultipart { stack += e.parts; continue }
            guard e.contentType.type == "text", e.contentTransferEncoding != "7bit", e.contentTransferEncoding != "8bit",
                  let body = try? e.decodedBody() else { continue }
            if String(decoding: body, as: UTF8.self).lowercased().contains(needle) { return true }
        }
        return false
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b + 0x20 : b }

    /// `1:3,7` from sorted numbers.
    static func compress(_ numbers: [UInt32]) -> String {
        var parts: [String] = []
        var i = 0
        while i < numbers.count {
            var j = i
            while j + 1 < numbers.count && numbers[j + 1] == numbers[j] + 1 { j += 1 }
            parts.append(i == j ? "\(numbers[i])" : "\(numbers[i]):\(numbers[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    // MARK: names and lines

    /// A client's mailbox name as stored (UTF-8): INBOX in any case is INBOX (RFC 9051 5.1);
    /// IMAP4rev1 clients write modified UTF-7 (nil when it is not valid).
    private func folderName(_ name: String) -> String? {
        if name.uppercased() == "INBOX" { return "INBOX" }
        return utf8 ? name : ModifiedUTF7.decode(name)
    }

    private func mailboxText(_ name: String) -> String { utf8 ? name : ModifiedUTF7.encode(name) }

    static func matches(_ name: String, pattern: String) -> Bool {
        let n = Array(name.uppercased() == "INBOX" ? "INBOX" : name), p = Array(pattern.uppercased() == "INBOX" ? "INBOX" : pattern)
        // Iterative wildcard match: `*` anything, `%` anything but the separator.
        func match(_ i: Int, _ j: Int, _ budget: inout Int) -> Bool {
            budget -= 1
            if budget < 0 { return false }
            if j == p.count { return i == n.count }
            if p[j] == "*" || p[j] == "%" {
                var k = i
                while true {
                    if match(k, j + 1, &budget) { return true }
                    if k == n.count || (p[j] == "%" && n[k] == "/") { return false }
                    k += 1
                }
            }
            guard i < n.count, n[i] == p[j] else { return false }
            return match(i + 1, j + 1, &budget)
        }
        var budget = 100_000
        return match(0, 0, &budget)
    }

    private func statusLine(_ name: String, _ items: [String], _ c: IMAPFolderCounts) -> [UInt8] {
        var parts: [String] = []
        for item in items {
            switch item {
            case "MESSAGES": parts.append("MESSAGES \(c.messages)")
            case "UNSEEN": parts.append("UNSEEN \(c.unseen)")
            case "UIDNEXT": parts.append("UIDNEXT \(c.uidNext)")
            case "UIDVALIDITY": parts.append("UIDVALIDITY \(c.uidValidity)")
            case "HIGHESTMODSEQ": parts.append("HIGHESTMODSEQ \(c.highestModSeq)")
            case "SIZE": parts.append("SIZE \(c.size)")
            case "RECENT": parts.append("RECENT 0")
            case "DELETED": break
            default: break
            }
        }
        return Array("* STATUS ".utf8) + IMAPString.astring(mailboxText(name)) + Array(" (\(parts.joined(separator: " ")))\r\n".utf8)
    }

    private func line(_ text: String) -> [UInt8] { Array((text + "\r\n").utf8) }
    private func ok(_ tag: String, _ text: String) -> Action { .send(line("\(tag) OK \(text)")) }
    private func no(_ tag: String, _ text: String) -> [Action] { [.send(line("\(tag) NO \(text)"))] }
    private func bad(_ tag: String, _ text: String) -> [Action] { [.send(line("\(tag) BAD \(text)"))] }

    /// A command that could not be read, or was out of place: BAD with the reason; after `maxErrors` in a row, BYE.
    private mutating func error(_ tag: String?, _ text: String) -> [Action] {
        errors += 1
        let safe = String(text.unicodeScalars.prefix(300).map { $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
        var out: [Action] = [.send(line("\(tag ?? "*") BAD \(safe)"))]
        if errors >= policy.maxErrors {
            state = .logout
            out += [.send(line("* BYE too many bad commands")), .close]
        }
        return out
    }

    /// The session ran out of time (RFC 9051 5.4: 30 minutes of inactivity).
    public mutating func timedOut() -> [Action] {
        guard state != .logout else { return [] }
        state = .logout
        return [.send(line("* BYE idle for too long")), .close]
    }

    /// The server is stopping.
    public mutating func shutdown() -> [Action] {
        guard state != .logout else { return [] }
        state = .logout
        return [.send(line("* BYE [UNAVAILABLE] the server is shutting down")), .close]
    }
}

extension IMAPSession.Action {
    var asList: [IMAPSession.Action] { [self] }
}

/// The Date header's date-time (RFC 5322 3.3), enough for SENTBEFORE/SENTON/SENTSINCE:
/// `[Thu, ]3 Dec 2026 10:00[:00] +0000` (obsolete zone names read as UTC).
enum RFC5322Date {
    static func parse(_ text: String) -> Date? {
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }).map(String.init)
        if let first = words.first, first.hasSuffix(",") { words.removeFirst() }
        guard words.count >= 4, let d = Int(words[0]), (1...31).contains(d),
              let m = IMAPSession.monthNames.firstIndex(where: { $0.lowercased() == words[1].lowercased() }), var y = Int(words[2]) else { return nil }
        if y < 50 { y += 2000 } else if y < 1000 { y += 1900 }
        let time = words[3].split(separator: ":").compactMap { Int($0) }
        guard time.count >= 2, (0...23).contains(time[0]), (0...59).contains(time[1]) else { return nil }
        var offset = 0
        if words.count >= 5, let zone = Int(words[4].dropFirst()), words[4].count == 5, let sign = words[4].first, sign == "+" || sign == "-" {
            offset = (zone / 100 * 3600 + zone % 100 * 60) * (sign == "-" ? -1 : 1)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        guard let utc = calendar.date(from: DateComponents(year: y, month: m + 1, day: d, hour: time[0], minute: time[1],
                                                           second: time.count > 2 ? time[2] : 0)) else { return nil }
        return utc.addingTimeInterval(TimeInterval(-offset))
    }
}
