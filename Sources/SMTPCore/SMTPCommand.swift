/// A command a client sends (RFC 5321 4.1.1, RFC 3207, RFC 4954).
public enum SMTPCommand: Sendable, Equatable {
    case helo(String)
    case ehlo(String)
    /// `reversePath` is empty for the null sender `<>` (RFC 5321 4.5.5).
    case mail(reversePath: String, parameters: [SMTPParameter])
    case rcpt(forwardPath: String, parameters: [SMTPParameter])
    case data
    case rset
    case noop
    case quit
    case vrfy(String)
    case help
    case startTLS
    case auth(mechanism: String, initialResponse: String?)

    /// The verb, for logs and "bad sequence" replies.
    public var verb: String {
        switch self {
        case .helo: return "HELO"
        case .ehlo: return "EHLO"
        case .mail: return "MAIL"
        case .rcpt: return "RCPT"
        case .data: return "DATA"
        case .rset: return "RSET"
        case .noop: return "NOOP"
        case .quit: return "QUIT"
        case .vrfy: return "VRFY"
        case .help: return "HELP"
        case .startTLS: return "STARTTLS"
        case .auth: return "AUTH"
        }
    }
}

/// An ESMTP parameter of MAIL or RCPT (`SIZE=1000`, `BODY=8BITMIME`).
public struct SMTPParameter: Sendable, Equatable {
    public var keyword: String
    public var value: String?

    public init(_ keyword: String, _ value: String? = nil) {
        self.keyword = keyword.uppercased()
        self.value = value
    }
}

/// Why a command line was not accepted, with the reply to send.
public struct SMTPCommandError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reply: SMTPReply
    public var description: String { reply.description }

    static func unrecognized(_ verb: String) -> SMTPCommandError {
        // RFC 5321 4.2.4: 500 for an unrecognised command.
        SMTPCommandError(reply: SMTPReply(500, "5.5.2", "command not recognized: \(verb.prefix(16))"))
    }

    static func syntax(_ text: String) -> SMTPCommandError {
        // RFC 5321 4.2.2: 501 syntax error in parameters or arguments.
        SMTPCommandError(reply: SMTPReply(501, "5.5.4", text))
    }

    static func badAddress(_ text: String) -> SMTPCommandError {
        // RFC 3463 5.1.3: bad destination mailbox address syntax.
        SMTPCommandError(reply: SMTPReply(501, "5.1.3", text))
    }
}

extension SMTPCommand {
    /// RFC 5321 4.5.3.1.4 sets 512 octets for a command line; AUTH's initial
    /// response (RFC 4954 4) and MAIL parameters make longer lines legitimate.
    public static let maxLineLength = 2048
    /// RFC 5321 4.5.3.1.3: a path is at most 256 octets.
    public static let maxPathLength = 256
    public static let maxParameters = 16

    /// Parses one command line (without its CRLF).
    public static func parse(_ line: [UInt8]) throws(SMTPCommandError) -> SMTPCommand {
        guard line.count <= maxLineLength else {
            throw SMTPCommandError(reply: SMTPReply(500, "5.5.2", "line too long (the limit is \(maxLineLength) octets)"))
        }
        // Commands are ASCII; a NUL or a bare CR/LF inside a line is an attack or a broken client.
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F || $0 == 0x09 }) else {
            throw SMTPCommandError.syntax("commands must be printable ASCII")
        }
        let text = String(decoding: line, as: UTF8.self)
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let rest = verbEnd < text.endIndex ? String(text[text.index(after: verbEnd)...]) : ""
        let argument = rest.trimmingCharacters(in: " \t")

        func noArgument(_ command: SMTPCommand) throws(SMTPCommandError) -> SMTPCommand {
            guard argument.isEmpty else { throw SMTPCommandError.syntax("\(verb) takes no argument") }
            return command
        }

        switch verb {
        case "EHLO", "HELO":
            // RFC 5321 4.1.1.1: a domain or an address literal.
            let name = argument.split(separator: " ").first.map(String.init) ?? ""
            guard !name.isEmpty, name.utf8.count <= 255 else { throw SMTPCommandError.syntax("\(verb) needs your domain name") }
            return verb == "EHLO" ? .ehlo(name) : .helo(name)
        case "MAIL":
            let (path, params) = try pathAndParameters(rest, prefix: "FROM:", allowNull: true)
            return .mail(reversePath: path, parameters: params)
        case "RCPT":
            let (path, params) = try pathAndParameters(rest, prefix: "TO:", allowNull: false)
            return .rcpt(forwardPath: path, parameters: params)
        case "DATA": return try noArgument(.data)
        case "RSET": return try noArgument(.rset)
        case "QUIT": return try noArgument(.quit)
        case "STARTTLS": return try noArgument(.startTLS)
        case "NOOP": return .noop  // RFC 5321 4.1.1.9: the argument is ignored.
        case "HELP": return .help
        case "VRFY": return .vrfy(argument)
        case "AUTH":
            let words = argument.split(separator: " ", omittingEmptySubsequences: true)
            guard let mech = words.first, words.count <= 2 else { throw SMTPCommandError.syntax("AUTH mechanism [initial-response]") }
            return .auth(mechanism: mech.uppercased(), initialResponse: words.count == 2 ? String(words[1]) : nil)
        default:
            throw SMTPCommandError.unrecognized(verb)
        }
    }

    /// `FROM:<path> [params]` / `TO:<path> [params]` (RFC 5321 4.1.2).
    static func pathAndParameters(_ rest: String, prefix: String, allowNull: Bool) throws(SMTPCommandError) -> (String, [SMTPParameter]) {
        guard rest.uppercased().hasPrefix(prefix) else { throw SMTPCommandError.syntax("expected \(prefix)<address>") }
        // Many clients put a space after the colon; accept it.
        var s = Substring(rest.dropFirst(prefix.count)).drop { $0 == " " }
        guard s.first == "<", let close = s.firstIndex(of: ">") else { throw SMTPCommandError.badAddress("the address must be in angle brackets") }
        var path = String(s[s.index(after: s.startIndex)..<close])
        s = s[s.index(after: close)...]
        // RFC 5321 4.1.2 / C: a source route (`@a,@b:`) is accepted and ignored.
        if path.hasPrefix("@"), let colon = path.firstIndex(of: ":") { path = String(path[path.index(after: colon)...]) }
        guard path.utf8.count <= maxPathLength else { throw SMTPCommandError.badAddress("the address is longer than \(maxPathLength) octets") }
        if path.isEmpty {
            guard allowNull else { throw SMTPCommandError.badAddress("an empty recipient address") }
        } else {
            try checkMailbox(path)
        }
        guard s.isEmpty || s.first == " " else { throw SMTPCommandError.syntax("expected a space after the address") }
        var params: [SMTPParameter] = []
        for word in s.split(separator: " ", omittingEmptySubsequences: true) {
            guard params.count < maxParameters else { throw SMTPCommandError.syntax("too many parameters") }
            // RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
            let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            guard let f = key.first, f.isASCII, f.isLetter || f.isNumber,
                  key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw SMTPCommandError.syntax("bad parameter \(word.prefix(32))")
            }
            params.append(SMTPParameter(String(key), parts.count == 2 ? String(parts[1]) : nil))
        }
        return (path, params)
    }

    /// `local-part@domain` (RFC 5321 4.1.2): a dot-string or a quoted string, then a domain.
    static func checkMailbox(_ path: String) throws(SMTPCommandError) {
        guard let at = path.lastIndex(of: "@") else { throw SMTPCommandError.badAddress("\(path.prefix(64)) has no domain") }
        let local = path[..<at]
        let domain = path[path.index(after: at)...]
        guard !local.isEmpty, local.utf8.count <= 64 else { throw SMTPCommandError.badAddress("bad local part") }
        if local.first == "\"" {
            guard local.count >= 2, local.last == "\"" else { throw SMTPCommandError.badAddress("unterminated quoted local part") }
        } else {
            let atext = "!#$%&'*+-/=?^_`{|}~."
            guard local.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || atext.contains($0)) }),
                  !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
                throw SMTPCommandError.badAddress("bad local part \(local.prefix(64))")
            }
        }
        if domain.first == "[" {
            guard domain.last == "]" else { throw SMTPCommandError.badAddress("bad address literal") }
            return
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard !domain.isEmpty, domain.utf8.count <= 255,
              labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } })
        else { throw SMTPCommandError.badAddress("bad domain \(domain.prefix(64))") }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

import InternetMessage

/// Base64 for AUTH exchanges (RFC 4954 4: no line breaks, no whitespace).
public enum Base64Text {
    public static func decode(_ text: String) -> [UInt8]? {
        guard !text.contains(where: { $0 == " " || $0 == "\t" }) else { return nil }
        return try? Base64.decode(Array(text.utf8))
    }

    public static func encode(_ bytes: [UInt8]) -> String { Base64.encodeString(bytes) }
}

/// The PLAIN SASL mechanism's message (RFC 4616 2), shared by every edge that signs in with it.
public enum SASLPlain {
    public enum Problem: Error, Equatable {
        /// Not [authzid] NUL authcid NUL passwd.
        case malformed
        /// The authorization identity names another user (acting for another is not allowed).
        case otherIdentity
    }

    /// The user and password of a decoded PLAIN message.
    public static func credentials(_ message: [UInt8]) -> Result<(user: String, password: String), Problem> {
        let fields = message.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { return .failure(.malformed) }
        let authz = String(decoding: fields[0], as: UTF8.self)
        let authc = String(decoding: fields[1], as: UTF8.self)
        guard authz.isEmpty || authz == authc else { return .failure(.otherIdentity) }
        return .success((authc, String(decoding: fields[2], as: UTF8.self)))
    }
}
