/// Who is on the other end of a session, for decisions and logs.
public struct SMTPSessionInfo: Sendable {
    public let id: String
    public let remoteAddress: String
    public let role: SMTPServerSession.Role

    public init(id: String, remoteAddress: String, role: SMTPServerSession.Role) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.role = role
    }
}

/// What the server asks of the HISP: every decision and the durable hand-off.
/// Replies are what the peer sees, so they must not carry PHI.
public protocol SMTPServerDelegate: Sendable {
    /// nil accepts the sender.
    func checkSender(_ path: String, session: SMTPSessionInfo) async -> SMTPReply?
    /// nil accepts the recipient.
    func checkRecipient(_ path: String, mailFrom: String, user: String?, session: SMTPSessionInfo) async -> SMTPReply?
    func authenticate(user: String, password: String, session: SMTPSessionInfo) async -> Bool
    /// Answer 250 only when the message is durable (or refused for good).
    func deliver(_ envelope: SMTPEnvelope, message: [UInt8], session: SMTPSessionInfo) async -> SMTPReply
}
