/// What a server knows of one mail transaction when the data has arrived.
public struct SMTPEnvelope: Sendable, Equatable {
    public var helo: String
    /// Empty for the null sender (bounces and notifications).
    public var mailFrom: String
    public var mailParameters: [SMTPParameter]
    public var recipients: [String]
    /// The authenticated user on the submission port.
    public var user: String?
    public var tls: Bool

    public init(helo: String, mailFrom: String, mailParameters: [SMTPParameter] = [], recipients: [String], user: String? = nil, tls: Bool) {
        self.helo = helo
        self.mailFrom = mailFrom
        self.mailParameters = mailParameters
        self.recipients = recipients
        self.user = user
        self.tls = tls
    }
}

/// The server side of one SMTP session (RFC 5321, RFC 3207, RFC 4954, RFC 1870,
/// RFC 2920, RFC 2034), as a state machine: feed it lines and results, do the
/// actions it returns. It opens no socket and waits for nothing, so the
/// handler decides how to run the checks it asks for.
public struct SMTPServerSession: Sendable {
    public enum Role: String, Sendable {
        /// The MX (port 25): mail for the hosted domains only; no AUTH.
        case inbound
        /// Submission (port 587, RFC 6409): AUTH required, after TLS.
        case submission
    }

    public struct Policy: Sendable {
        public var hostname: String
        public var role: Role
        public var maxMessageBytes: Int
        public var maxRecipients: Int
        /// Unrecognised or out-of-sequence commands before the session is closed.
        public var maxErrors: Int
        public var maxAuthFailures: Int
        /// A TLS certificate is configured, so STARTTLS is offered.
        public var tlsAvailable: Bool
        /// MAIL is refused until STARTTLS succeeded (always so for AUTH).
        public var requireTLS: Bool
        public var maxDataLineLength: Int

        public init(hostname: String, role: Role, maxMessageBytes: Int = 32 * 1024 * 1024, maxRecipients: Int = 100,
                    maxErrors: Int = 10, maxAuthFailures: Int = 3, tlsAvailable: Bool = true, requireTLS: Bool = true,
                    maxDataLineLength: Int = 998) {
            self.hostname = hostname
            self.role = role
            self.maxMessageBytes = maxMessageBytes
            self.maxRecipients = maxRecipients
            self.maxErrors = maxErrors
            self.maxAuthFailures = maxAuthFailures
            self.tlsAvailable = tlsAvailable
            self.requireTLS = requireTLS
            self.maxDataLineLength = maxDataLineLength
        }
    }

    public enum Mode: Sendable, Equatable {
        /// Reading command lines (or AUTH responses).
        case command
        /// Reading message data into a `SMTPDataReader`.
        case data
        /// An action is being carried out; read nothing until its result is fed back.
        case waiting
        case closed
    }

    public enum Action: Sendable, Equatable {
        case reply(SMTPReply)
        /// The 220 to STARTTLS was sent: drop buffered input and start the TLS handshake.
        case startTLS
        case close
        /// Decide on `MAIL FROM` (feed `senderChecked`).
        case checkSender(String)
        /// Decide on `RCPT TO` (feed `recipientChecked`).
        case checkRecipient(String, mailFrom: String, user: String?)
        /// Check credentials (feed `authenticated`).
        case authenticate(user: String, password: String)
        /// Make the message durable or refuse it (feed `delivered`).
        case deliver(SMTPEnvelope, [UInt8])
    }

    private enum Pending: Sendable {
        case sender(String, [SMTPParameter])
        case recipient(String)
        case authPlain
        case authLoginUser
        case authLoginPassword(String)
        case authCheck(String)
        case deliver
        case tls
    }

    public let policy: Policy
    public private(set) var mode: Mode = .command
    public private(set) var tls: Bool
    public private(set) var user: String?
    private var helo: String?
    private var mailFrom: String?
    private var mailParameters: [SMTPParameter] = []
    private var recipients: [String] = []
    private var pending: Pending?
    private var errors = 0
    private var authFailures = 0

    public init(policy: Policy, tls: Bool = false) {
        self.policy = policy
        self.tls = tls
    }

    /// RFC 5321 4.3.1: the opening 220.
    public func greeting() -> SMTPReply {
        SMTPReply(220, nil, "\(policy.hostname) ESMTP DirectHISP")
    }

    /// A reader for the message data of the current transaction.
    public func dataReader() -> SMTPDataReader {
        SMTPDataReader(maxBytes: policy.maxMessageBytes, maxLineLength: policy.maxDataLineLength)
    }

    // MARK: input

    public mutating func receive(_ line: SMTPInputBuffer.Line) -> [Action] {
        guard mode == .command else { return [] }
        guard case .line(let bytes) = line else {
            return error(SMTPReply(500, "5.5.2", "line too long (the limit is \(SMTPCommand.maxLineLength) octets)"))
        }
        switch pending {
        case .authPlain: return authPlain(String(decoding: bytes, as: UTF8.self))
        case .authLoginUser: return authLoginUser(String(decoding: bytes, as: UTF8.self))
        case .authLoginPassword(let u): return authLoginPassword(u, String(decoding: bytes, as: UTF8.self))
        default: break
        }
        let command: SMTPCommand
        do {
            command = try SMTPCommand.parse(bytes)
        } catch {
            return self.error(error.reply)
        }
        return handle(command)
    }

    private mutating func handle(_ command: SMTPCommand) -> [Action] {
        switch command {
        case .ehlo(let name):
            helo = name
            resetTransaction()
            return [.reply(SMTPReply(250, nil, ehloLines()))]
        case .helo(let name):
            helo = name
            resetTransaction()
            return [.reply(SMTPReply(250, nil, policy.hostname))]
        case .noop:
            return ok("OK")
        case .rset:
            resetTransaction()
            return ok("OK")
        case .quit:
            mode = .closed
            return [.reply(SMTPReply(221, "2.0.0", "\(policy.hostname) closing connection")), .close]
        case .help:
            return [.reply(SMTPReply(214, "2.0.0", "see RFC 5321"))]
        case .vrfy:
            // RFC 5321 3.5.3: 252 when the server will not verify (it would disclose mailboxes).
            return [.reply(SMTPReply(252, "2.5.0", "cannot VRFY; send the message and delivery will be attempted"))]
        case .startTLS:
            return startTLS()
        case .auth(let mechanism, let initial):
            return auth(mechanism, initial)
        case .mail(let path, let parameters):
            return mail(path, parameters)
        case .rcpt(let path, let parameters):
            return rcpt(path, parameters)
        case .data:
            return data()
        }
    }

    private func ehloLines() -> [String] {
        var lines = [policy.hostname, "PIPELINING", "SIZE \(policy.maxMessageBytes)", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if policy.tlsAvailable && !tls { lines.append("STARTTLS") }
        // RFC 4954 4 / RFC 3207 6: credentials only over TLS.
        if policy.role == .submission && tls && user == nil { lines.append("AUTH PLAIN LOGIN") }
        return lines
    }

    private mutating func startTLS() -> [Action] {
        guard helo != nil else { return badSequence("send EHLO first") }
        guard !tls else { return badSequence("TLS is already active") }
        guard policy.tlsAvailable else { return [.reply(SMTPReply(454, "4.7.0", "TLS not available"))] }
        mode = .waiting
        pending = .tls
        // RFC 3207 4: 220, then the handshake.
        return [.reply(SMTPReply(220, "2.0.0", "ready to start TLS")), .startTLS]
    }

    /// The TLS handshake finished: RFC 3207 4.2 discards all knowledge from before it.
    public mutating func tlsEstablished() {
        tls = true
        helo = nil
        user = nil
        resetTransaction()
        pending = nil
        mode = .command
    }

    // MARK: AUTH (RFC 4954)

    private mutating func auth(_ mechanism: String, _ initial: String?) -> [Action] {
        guard policy.role == .submission else {
            return [.reply(SMTPReply(503, "5.5.1", "AUTH is not available on this port; use submission"))]
        }
        guard helo != nil else { return badSequence("send EHLO first") }
        // RFC 4954 6: 538 when the mechanism needs an encrypted channel.
        guard tls else { return [.reply(SMTPReply(538, "5.7.11", "encryption required: issue STARTTLS first"))] }
        guard user == nil else { return badSequence("already authenticated") }
        guard mailFrom == nil else { return badSequence("AUTH is not allowed during a mail transaction") }
        switch mechanism {
        case "PLAIN":
            guard let initial else {
                pending = .authPlain
                return [.reply(SMTPReply(334, nil, ""))]
            }
            return authPlain(initial)
        case "LOGIN":
            guard let initial else {
                pending = .authLoginUser
                return [.reply(SMTPReply(334, nil, "VXNlcm5hbWU6"))]
            }
            return authLoginUser(initial)
        default:
            return [.reply(SMTPReply(504, "5.5.4", "unrecognized authentication type \(mechanism.prefix(20))"))]
        }
    }

    private mutating func authResponse(_ text: String) -> Result<[UInt8], SMTPReply> {
        pending = nil
        // RFC 4954 4: "*" cancels the exchange.
        if text == "*" { return .failure(SMTPReply(501, "5.0.0", "authentication cancelled")) }
        if text == "=" { return .success([]) }
        guard text.utf8.count <= 4096, let decoded = Base64Text.decode(text) else {
            return .failure(SMTPReply(501, "5.5.2", "cannot decode the AUTH response (base64)"))
        }
        return .success(decoded)
    }

    private mutating func authPlain(_ text: String) -> [Action] {
        switch authResponse(text) {
        case .failure(let reply): return [.reply(reply)]
        case .success(let bytes):
            switch SASLPlain.credentials(bytes) {
            case .success(let c): return checkCredentials(c.user, c.password)
            case .failure(.malformed): return [.reply(SMTPReply(501, "5.5.2", "malformed PLAIN response"))]
            case .failure(.otherIdentity): return [.reply(SMTPReply(535, "5.7.8", "authorization identity differs from the user"))]
            }
        }
    }

    private mutating func authLoginUser(_ text: String) -> [Action] {
        switch authResponse(text) {
        case .failure(let reply): return [.reply(reply)]
        case .success(let bytes):
            pending = .authLoginPassword(String(decoding: bytes, as: UTF8.self))
            return [.reply(SMTPReply(334, nil, "UGFzc3dvcmQ6"))]
        }
    }

    private mutating func authLoginPassword(_ user: String, _ text: String) -> [Action] {
        switch authResponse(text) {
        case .failure(let reply): return [.reply(reply)]
        case .success(let bytes): return checkCredentials(user, String(decoding: bytes, as: UTF8.self))
        }
    }

    private mutating func checkCredentials(_ user: String, _ password: String) -> [Action] {
        guard !user.isEmpty, user.utf8.count <= 320, password.utf8.count <= 1024 else {
            return authFailed()
        }
        pending = .authCheck(user)
        mode = .waiting
        return [.authenticate(user: user, password: password)]
    }

    /// The result of `.authenticate`.
    public mutating func authenticated(_ ok: Bool) -> [Action] {
        guard case .authCheck(let name) = pending else { return [] }
        pending = nil
        mode = .command
        guard ok else { return authFailed() }
        user = name
        return [.reply(SMTPReply(235, "2.7.0", "authentication successful"))]
    }

    private mutating func authFailed() -> [Action] {
        authFailures += 1
        // RFC 4954 6: 535 5.7.8 for bad credentials.
        let reply = SMTPReply(535, "5.7.8", "authentication credentials invalid")
        guard authFailures < policy.maxAuthFailures else {
            mode = .closed
            return [.reply(reply), .reply(SMTPReply(421, "4.7.0", "too many failed authentications; closing")), .close]
        }
        return [.reply(reply)]
    }

    // MARK: the mail transaction

    private mutating func mail(_ path: String, _ parameters: [SMTPParameter]) -> [Action] {
        guard helo != nil else { return badSequence("send EHLO first") }
        guard mailFrom == nil else { return badSequence("nested MAIL command") }
        if policy.requireTLS && !tls || policy.role == .submission && !tls {
            // RFC 3207 4: 530 when the policy requires TLS first.
            return [.reply(SMTPReply(530, "5.7.0", "must issue a STARTTLS command first"))]
        }
        if policy.role == .submission && user == nil {
            // RFC 4954 6: 530 5.7.0 authentication required.
            return [.reply(SMTPReply(530, "5.7.0", "authentication required"))]
        }
        for p in parameters {
            switch p.keyword {
            case "SIZE":
                // RFC 1870 6.1: refuse at MAIL when the declared size is too big.
                guard let v = p.value, let n = Int(v), n >= 0 else { return error(SMTPReply(501, "5.5.4", "SIZE needs a number")) }
                if n > policy.maxMessageBytes {
                    return [.reply(SMTPReply(552, "5.3.4", "message size exceeds the limit of \(policy.maxMessageBytes) octets"))]
                }
            case "BODY":
                // RFC 6152 2: 7BIT or 8BITMIME.
                guard let v = p.value?.uppercased(), v == "7BIT" || v == "8BITMIME" else {
                    return error(SMTPReply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME"))
                }
            case "AUTH":
                // RFC 4954 5: accepted and not relayed further.
                break
            default:
                // RFC 5321 4.1.1.11: 555 for parameters not recognised.
                return [.reply(SMTPReply(555, "5.5.4", "parameter \(p.keyword.prefix(20)) not supported"))]
            }
        }
        pending = .sender(path, parameters)
        mode = .waiting
        return [.checkSender(path)]
    }

    /// The result of `.checkSender`: nil accepts.
    public mutating func senderChecked(_ refusal: SMTPReply?) -> [Action] {
        guard case .sender(let path, let parameters) = pending else { return [] }
        pending = nil
        mode = .command
        if let refusal { return refuse(refusal) }
        mailFrom = path
        mailParameters = parameters
        return [.reply(SMTPReply(250, "2.1.0", "sender OK"))]
    }

    private mutating func rcpt(_ path: String, _ parameters: [SMTPParameter]) -> [Action] {
        guard let from = mailFrom else { return badSequence("need MAIL before RCPT") }
        // RFC 5321 4.5.3.1.10: 452 for too many recipients, so the client sends the rest later.
        guard recipients.count < policy.maxRecipients else {
            return [.reply(SMTPReply(452, "4.5.3", "too many recipients (at most \(policy.maxRecipients) per message)"))]
        }
        if let p = parameters.first {
            return [.reply(SMTPReply(555, "5.5.4", "parameter \(p.keyword.prefix(20)) not supported"))]
        }
        guard !recipients.contains(where: { $0.lowercased() == path.lowercased() }) else {
            return [.reply(SMTPReply(250, "2.1.5", "recipient OK (duplicate)"))]
        }
        pending = .recipient(path)
        mode = .waiting
        return [.checkRecipient(path, mailFrom: from, user: user)]
    }

    /// The result of `.checkRecipient`: nil accepts.
    public mutating func recipientChecked(_ refusal: SMTPReply?) -> [Action] {
        guard case .recipient(let path) = pending else { return [] }
        pending = nil
        mode = .command
        if let refusal { return refuse(refusal) }
        recipients.append(path)
        return [.reply(SMTPReply(250, "2.1.5", "recipient OK"))]
    }

    private mutating func data() -> [Action] {
        guard mailFrom != nil else { return badSequence("need MAIL before DATA") }
        // RFC 5321 3.3: 554 when no recipient was accepted.
        guard !recipients.isEmpty else { return [.reply(SMTPReply(554, "5.5.1", "no valid recipients"))] }
        mode = .data
        return [.reply(SMTPReply(354, nil, "end data with <CR><LF>.<CR><LF>"))]
    }

    /// The message data ended (see `SMTPInputBuffer.read(into:)`).
    public mutating func dataFinished(_ outcome: SMTPDataReader.Outcome) -> [Action] {
        guard mode == .data, let from = mailFrom, let helo else { return [] }
        switch outcome {
        case .abort(let reply):
            mode = .closed
            return [.reply(reply), .close]
        case .rejected(let reply):
            mode = .command
            resetTransaction()
            return [.reply(reply)]
        case .message(let bytes):
            pending = .deliver
            mode = .waiting
            let envelope = SMTPEnvelope(helo: helo, mailFrom: from, mailParameters: mailParameters, recipients: recipients, user: user, tls: tls)
            return [.deliver(envelope, bytes)]
        }
    }

    /// The result of `.deliver`: 250 only once the message is durable.
    public mutating func delivered(_ reply: SMTPReply) -> [Action] {
        guard case .deliver = pending else { return [] }
        pending = nil
        mode = .command
        resetTransaction()
        return refuse(reply)
    }

    /// RFC 5321 3.8: after a 421 the server closes the session.
    private mutating func refuse(_ reply: SMTPReply) -> [Action] {
        guard reply.code == 421 else { return [.reply(reply)] }
        mode = .closed
        return [.reply(reply), .close]
    }

    /// RFC 5321 4.5.3.2.7: the server closes an idle session with 421.
    public mutating func timedOut() -> [Action] {
        guard mode != .closed else { return [] }
        mode = .closed
        return [.reply(SMTPReply(421, "4.4.2", "\(policy.hostname) timeout exceeded; closing")), .close]
    }

    /// The server is shutting down (RFC 5321 3.8).
    public mutating func shutdown() -> [Action] {
        guard mode != .closed else { return [] }
        mode = .closed
        return [.reply(SMTPReply(421, "4.3.2", "\(policy.hostname) shutting down; try again later")), .close]
    }

    // MARK: helpers

    private mutating func resetTransaction() {
        mailFrom = nil
        mailParameters = []
        recipients = []
    }

    private func ok(_ text: String) -> [Action] { [.reply(SMTPReply(250, "2.0.0", text))] }

    private mutating func badSequence(_ text: String) -> [Action] {
        // RFC 5321 4.2.4: 503 bad sequence of commands.
        error(SMTPReply(503, "5.5.1", text))
    }

    private mutating func error(_ reply: SMTPReply) -> [Action] {
        errors += 1
        guard errors < policy.maxErrors else {
            mode = .closed
            return [.reply(reply), .reply(SMTPReply(421, "4.7.0", "too many errors; closing")), .close]
        }
        return [.reply(reply)]
    }
}
