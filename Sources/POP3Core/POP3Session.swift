import SMTPCore

/// One message of a POP3 maildrop, as the session lists it.
public struct POP3Message: Sendable, Equatable {
    /// RFC 1939 7: the unique-id listing: 1 to 70 characters 0x21 to 0x7E,
    /// the same for the message in every session.
    public var uid: String
    /// The exact size in octets, as RETR sends it (CRLF line endings, before dot-stuffing).
    public var size: Int

    public init(uid: String, size: Int) {
        self.uid = uid
        self.size = size
    }
}

/// A reply to the client (RFC 1939 3): `+OK` or `-ERR` with text, a
/// multi-line listing, or a message (dot-stuffed on the wire).
public enum POP3Reply: Sendable, Equatable {
    case ok(String)
    /// RFC 2449 8: an extended response code (such as `AUTH`, `IN-USE`, `SYS/TEMP`) before the text.
    case err(String, code: String? = nil)
    case lines(String, [String])
    case message(String, [UInt8])
    /// RFC 5034 4: a SASL challenge (`+ ` and base64, here always empty).
    case challenge

    /// The reply as the client receives it.
    public var encoded: [UInt8] {
        switch self {
        case .ok(let text): return Array("+OK \(text)\r\n".utf8)
        case .err(let text, let code): return Array("-ERR \(code.map { "[\($0)] " } ?? "")\(text)\r\n".utf8)
        case .challenge: return Array("+ \r\n".utf8)
        case .lines(let text, let lines):
            var out = Array("+OK \(text)\r\n".utf8)
            for line in lines { out += Self.stuffed(Array(line.utf8)) + [13, 10] }
            return out + Array(".\r\n".utf8)
        case .message(let text, let bytes):
            var out = Array("+OK \(text)\r\n".utf8)
            out.reserveCapacity(out.count + bytes.count + bytes.count / 50 + 8)
            Self.appendMessage(bytes, to: &out)
            return out + Array(".\r\n".utf8)
        }
    }

    /// RFC 1939 3: a line that starts with "." gets another in front.
    static func stuffed(_ line: [UInt8]) -> [UInt8] { line.first == 0x2E ? [0x2E] + line : line }

    /// The message's lines, each ended by CRLF (a bare LF or CR becomes CRLF), dot-stuffed.
    static func appendMessage(_ bytes: [UInt8], to out: inout [UInt8]) {
        var lineStart = true
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if lineStart && b == 0x2E { out.append(0x2E) }
            switch b {
            case 0x0D:
                out += [13, 10]
                if i + 1 < bytes.count && bytes[i + 1] == 0x0A { i += 1 }
                lineStart = true
            case 0x0A:
                out += [13, 10]
                lineStart = true
            default:
                out.append(b)
                lineStart = false
            }
            i += 1
        }
        if !lineStart { out += [13, 10] }
    }
}

/// The server side of one POP3 session (RFC 1939; CAPA and response codes,
/// RFC 2449; STLS, RFC 2595; AUTH PLAIN, RFC 5034 and RFC 4616) as a state
/// machine: feed it command lines and the results of what it asks for, do
/// the actions it returns. It opens no socket and waits for nothing.
public struct POP3Session: Sendable {
    public struct Policy: Sendable {
        public var hostname: String
        /// A TLS certificate is configured, so STLS is offered.
        public var tlsAvailable: Bool
        /// Unrecognised or out-of-place commands before the session is closed.
        public var maxErrors: Int
        public var maxAuthFailures: Int

        public init(hostname: String, tlsAvailable: Bool = true, maxErrors: Int = 10, maxAuthFailures: Int = 3) {
            self.hostname = hostname
            self.tlsAvailable = tlsAvailable
            self.maxErrors = maxErrors
            self.maxAuthFailures = maxAuthFailures
        }
    }

    /// RFC 2449 4: a command line is at most 255 octets with its CRLF; a SASL
    /// response (RFC 5034 4) may be longer: AUTH PLAIN's carries a password.
    public static let maxCommandLine = 253
    public static let maxSASLLine = 2048

    /// RFC 1939 3.
    public enum State: Sendable, Equatable {
        case authorization
        case transaction
        /// After QUIT in the transaction state: the deletions are being made.
        case update
        case closed
    }

    public enum Action: Sendable, Equatable {
        case reply(POP3Reply)
        /// The +OK to STLS was sent: drop buffered input and start the TLS handshake.
        case startTLS
        case close
        /// Check the credentials and open the user's maildrop (feed `authenticated`).
        case authenticate(user: String, password: String)
        /// Read message `uid`, all of it or its header and first `lines` body lines (feed `retrieved`).
        case retrieve(uid: String, bodyLines: Int?)
        /// Remove these messages for good (feed `updated`).
        case update(deleting: [String])
    }

    /// What the session is waiting for.
    private enum Pending: Sendable {
        case authPlainResponse
        case authentication(user: String)
        case retrieval(index: Int, top: Bool)
        case update
    }

    public let policy: Policy
    public private(set) var state: State = .authorization
    public private(set) var tls: Bool
    public private(set) var user: String?
    /// An action was handed out and its result is awaited: read nothing meanwhile.
    public var isWaiting: Bool { pending != nil && !isAwaitingSASL }
    /// The next line is a SASL response (longer lines are allowed, `maxSASLLine`).
    public var isAwaitingSASL: Bool { if case .authPlainResponse = pending { return true } else { return false } }
    private var pending: Pending?
    private var userName: String?
    private var maildrop: [POP3Message] = []
    private var deleted: Set<Int> = []
    private var errors = 0
    private var authFailures = 0

    public init(policy: Policy, tls: Bool = false) {
        self.policy = policy
        self.tls = tls
    }

    public func greeting() -> POP3Reply { .ok("\(policy.hostname) POP3 DirectHISP ready") }

    /// The capabilities now (RFC 2449 5): what may be used in this state.
    public func capabilities() -> [String] {
        var caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION DirectHISP"]
        if state == .authorization {
            if tls {
                caps += ["USER", "SASL PLAIN"]
            } else if policy.tlsAvailable {
                caps.append("STLS")
            }
        }
        return caps
    }

    // MARK: input

    /// A line that was longer than the limit.
    public mutating func lineTooLong() -> [Action] {
        if isAwaitingSASL {
            pending = nil
            return failAuthentication("the authentication response is too long")
        }
        return error("the command line is too long (at most \(Self.maxCommandLine + 2) octets)")
    }

    /// One line from the client, without its CRLF.
    public mutating func receive(_ line: [UInt8]) -> [Action] {
        guard state != .closed, state != .update else { return [] }
        if isAwaitingSASL {
            pending = nil
            return saslResponse(String(decoding: line, as: UTF8.self))
        }
        guard pending == nil else { return [] }
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return error("the command line holds a byte that is not printable ASCII") }
        let text = String(decoding: line, as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let keyword = parts[0].uppercased()
        let args = Array(parts.dropFirst())
        switch state {
        case .authorization: return authorization(keyword, args, raw: text)
        case .transaction: return transaction(keyword, args)
        case .update, .closed: return []
        }
    }

    private mutating func authorization(_ keyword: String, _ args: [String], raw: String) -> [Action] {
        switch keyword {
        case "CAPA":
            guard args.isEmpty else { return error("CAPA takes no argument") }
            return [.reply(.lines("capability list follows", capabilities()))]
        case "STLS":
            guard args.isEmpty else { return error("STLS takes no argument") }
            guard !tls else { return error("TLS is already active") }
            guard policy.tlsAvailable else { return error("TLS is not available") }
            return [.reply(.ok("begin TLS negotiation")), .startTLS]
        case "USER":
            guard tls else { return refuseClearText() }
            guard args.count == 1, !args[0].isEmpty else { return error("USER takes one name") }
            userName = args[0]
            return [.reply(.ok("send PASS"))]
        case "PASS":
            guard tls else { return refuseClearText() }
            guard let name = userName else { return error("USER first") }
            // RFC 1939 7: the password is the rest of the line (it may hold spaces).
            let password = String(raw.dropFirst(5))
            guard raw.count > 5, !password.isEmpty else { return error("PASS takes the password") }
            userName = nil
            pending = .authentication(user: name)
            return [.authenticate(user: name, password: password)]
        case "AUTH":
            guard tls else { return refuseClearText() }
            guard let mechanism = args.first else {
                // RFC 5034 4 leaves a bare AUTH unspecified; clients use it to list mechanisms.
                return [.reply(.lines("mechanisms follow", ["PLAIN"]))]
            }
            guard mechanism.uppercased() == "PLAIN" else { return error("only AUTH PLAIN is offered") }
            guard args.count <= 2 else { return error("AUTH PLAIN takes at most an initial response") }
            if args.count == 2 { return saslResponse(args[1]) }
            pending = .authPlainResponse
            return [.reply(.challenge)]
        case "QUIT":
            state = .closed
            return [.reply(.ok("\(policy.hostname) signing off")), .close]
        case "APOP":
            return error("APOP is not offered: sign in with USER and PASS, or AUTH PLAIN, after STLS")
        case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
            return error("sign in first")
        default:
            return error("unknown command")
        }
    }

    /// RFC 2595 2 and RFC 8314: passwords only over TLS.
    private mutating func refuseClearText() -> [Action] {
        error(policy.tlsAvailable ? "TLS is required first: use STLS" : "sign-in needs TLS, which this server has not configured",
              code: "SYS/PERM")
    }

    /// RFC 4616 2: [authzid] NUL authcid NUL passwd, in base64; "*" cancels (RFC 5034 4).
    private mutating func saslResponse(_ encoded: String) -> [Action] {
        if encoded == "*" { return [.reply(.err("authentication cancelled"))] }
        guard let decoded = Base64Text.decode(encoded) else { return failAuthentication("the response is not base64") }
        switch SASLPlain.credentials(decoded) {
        case .success(let c) where !c.user.isEmpty && !c.password.isEmpty:
            pending = .authentication(user: c.user)
            return [.authenticate(user: c.user, password: c.password)]
        case .failure(.otherIdentity):
            return failAuthentication("acting for another user is not allowed")
        default:
            return failAuthentication("the response is not authzid NUL user NUL password")
        }
    }

    private mutating func failAuthentication(_ why: String) -> [Action] {
        authFailures += 1
        if authFailures >= policy.maxAuthFailures {
            state = .closed
            return [.reply(.err("\(why); too many failures", code: "AUTH")), .close]
        }
        return [.reply(.err(why, code: "AUTH"))]
    }

    /// The result of `.authenticate`: the user's maildrop (its messages in
    /// order), or nil when the credentials were refused. RFC 2449 8.1.2: the
    /// same answer for an unknown user and a wrong password.
    public mutating func authenticated(_ messages: [POP3Message]?) -> [Action] {
        guard case .authentication(let name) = pending else { return [] }
        pending = nil
        guard let messages else { return failAuthentication("the user name or password is wrong, or sign-in is locked for a while") }
        user = name
        maildrop = messages
        deleted = []
        state = .transaction
        return [.reply(.ok("\(messages.count) message(s) (\(messages.reduce(0) { $0 + $1.size }) octets)"))]
    }

    /// The user signed in but the maildrop cannot be opened now (RFC 2449 8.1: `IN-USE`, `SYS/TEMP`).
    public mutating func maildropUnavailable(_ why: String, code: String) -> [Action] {
        guard case .authentication = pending else { return [] }
        pending = nil
        return [.reply(.err(why, code: code))]
    }

    private mutating func transaction(_ keyword: String, _ args: [String]) -> [Action] {
        switch keyword {
        case "CAPA":
            return [.reply(.lines("capability list follows", capabilities()))]
        case "STAT":
            guard args.isEmpty else { return error("STAT takes no argument") }
            let live = liveMessages()
            return [.reply(.ok("\(live.count) \(live.reduce(0) { $0 + $1.1.size })"))]
        case "LIST", "UIDL":
            let show: (Int, POP3Message) -> String = keyword == "LIST" ? { "\($0) \($1.size)" } : { "\($0) \($1.uid)" }
            if args.isEmpty { return [.reply(.lines("listing follows", liveMessages().map(show)))] }
            guard args.count == 1 else { return error("\(keyword) takes at most a message number") }
            switch message(args[0]) {
            case .success(let n): return [.reply(.ok(show(n, maildrop[n - 1])))]
            case .failure(let e): return error(e.text)
            }
        case "RETR", "TOP":
            guard args.count == (keyword == "RETR" ? 1 : 2) else {
                return error(keyword == "RETR" ? "RETR takes a message number" : "TOP takes a message number and a line count")
            }
            var lines: Int? = nil
            if keyword == "TOP" {
                guard let l = Self.number(args[1]) else { return error("the line count is not a number") }
                lines = l
            }
            switch message(args[0]) {
            case .success(let n):
                pending = .retrieval(index: n, top: lines != nil)
                return [.retrieve(uid: maildrop[n - 1].uid, bodyLines: lines)]
            case .failure(let e): return error(e.text)
            }
        case "DELE":
            guard args.count == 1 else { return error("DELE takes a message number") }
            switch message(args[0]) {
            case .success(let n):
                deleted.insert(n)
                return [.reply(.ok("message \(n) deleted"))]
            case .failure(let e): return error(e.text)
            }
        case "NOOP":
            return [.reply(.ok(""))]
        case "RSET":
            deleted = []
            return [.reply(.ok("\(maildrop.count) message(s)"))]
        case "QUIT":
            // RFC 1939 6: the UPDATE state; nothing is removed unless QUIT came.
            let doomed = deleted.sorted().map { maildrop[$0 - 1].uid }
            guard !doomed.isEmpty else {
                state = .closed
                return [.reply(.ok("\(policy.hostname) signing off")), .close]
            }
            state = .update
            pending = .update
            return [.update(deleting: doomed)]
        case "USER", "PASS", "AUTH", "STLS", "APOP":
            return error("already signed in")
        default:
            return error("unknown command")
        }
    }

    /// The result of `.retrieve`: the message bytes, or nil when it is gone.
    public mutating func retrieved(_ bytes: [UInt8]?) -> [Action] {
        guard case .retrieval(let n, let top) = pending else { return [] }
        pending = nil
        guard let bytes else { return [.reply(.err("message \(n) is no longer there"))] }
        return [.reply(.message(top ? "top of message follows" : "\(maildrop[n - 1].size) octets", bytes))]
    }

    /// The result of `.update`: whether the deletions were made (RFC 1939 6: -ERR otherwise).
    public mutating func updated(_ done: Bool) -> [Action] {
        guard case .update = pending else { return [] }
        pending = nil
        state = .closed
        if done { return [.reply(.ok("\(policy.hostname) signing off (\(deleted.count) message(s) deleted)")), .close] }
        return [.reply(.err("some deleted messages were not removed; they are still there", code: "SYS/TEMP")), .close]
    }

    /// The TLS handshake after STLS finished.
    public mutating func tlsEstablished() {
        tls = true
    }

    /// The session ran out of time (RFC 1939 3: the server closes without UPDATE).
    public mutating func timedOut() -> [Action] {
        guard state != .closed else { return [] }
        state = .closed
        return [.reply(.err("idle for too long; closing (nothing deleted)")), .close]
    }

    // MARK: helpers

    private struct Refused: Error { let text: String }

    private func liveMessages() -> [(Int, POP3Message)] {
        maildrop.enumerated().filter { !deleted.contains($0.offset + 1) }.map { ($0.offset + 1, $0.element) }
    }

    private func message(_ arg: String) -> Result<Int, Refused> {
        guard let n = Self.number(arg) else { return .failure(Refused(text: "\"\(arg.prefix(20))\" is not a message number")) }
        guard n >= 1, n <= maildrop.count else { return .failure(Refused(text: "no message \(n) (there are \(maildrop.count))")) }
        guard !deleted.contains(n) else { return .failure(Refused(text: "message \(n) is deleted")) }
        return .success(n)
    }

    /// A decimal number of at most 9 digits (explicit limit: no overflow).
    static func number(_ s: String) -> Int? {
        guard !s.isEmpty, s.count <= 9, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }

    private mutating func error(_ text: String, code: String? = nil) -> [Action] {
        errors += 1
        if errors >= policy.maxErrors {
            state = .closed
            return [.reply(.err("\(text); too many errors, closing", code: code)), .close]
        }
        return [.reply(.err(text, code: code))]
    }
}
