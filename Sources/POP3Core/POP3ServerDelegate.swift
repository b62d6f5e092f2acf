/// Who is on the other end of a POP3 session, for decisions and logs.
public struct POP3SessionInfo: Sendable {
    public let id: String
    public let remoteAddress: String

    public init(id: String, remoteAddress: String) {
        self.id = id
        self.remoteAddress = remoteAddress
    }
}

/// What a sign-in came to.
public enum POP3SignIn: Sendable, Equatable {
    /// Signed in as `user` (the name the HISP knows the user by); the maildrop's messages, in order.
    case maildrop(user: String, messages: [POP3Message])
    /// Wrong user or password, or throttled: one answer for all (no account enumeration).
    case refused
    /// Signed in, but the maildrop cannot be opened now (RFC 2449 8.1: `IN-USE`, `SYS/TEMP`).
    case unavailable(String, code: String)
}

/// What the POP3 server asks of the HISP.
public protocol POP3ServerDelegate: Sendable {
    func signIn(user: String, password: String, session: POP3SessionInfo) async -> POP3SignIn
    /// Message `uid` of `user`'s maildrop, whole or its header and first `bodyLines` lines; nil when it is gone.
    func retrieve(uid: String, bodyLines: Int?, user: String, session: POP3SessionInfo) async -> [UInt8]?
    /// Removes these messages (RFC 1939 6, the UPDATE state); false when it could not.
    func delete(uids: [String], user: String, session: POP3SessionInfo) async -> Bool
    /// The session of a signed-in user ended (its maildrop is free again).
    func signedOut(user: String, session: POP3SessionInfo) async
}

extension POP3Reply {
    /// RFC 1939 7 (TOP): the header, the blank line after it, and the first `lines` lines of the body.
    public static func top(of message: [UInt8], lines: Int) -> [UInt8] {
        var i = 0
        var lineStart = 0
        // The header ends at the first empty line.
        while i < message.count {
            if message[i] == 0x0A {
                let length = i - lineStart - (i > lineStart && message[i - 1] == 0x0D ? 1 : 0)
                if length == 0 { break }
                lineStart = i + 1
            }
            i += 1
        }
        guard i < message.count else { return message }
        var end = i + 1
        var remaining = lines
        while remaining > 0 && end < message.count {
            guard let lf = message[end...].firstIndex(of: 0x0A) else { return message }
            end = lf + 1
            remaining -= 1
        }
        return Array(message[..<end])
    }
}
