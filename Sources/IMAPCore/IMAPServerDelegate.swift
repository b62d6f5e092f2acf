/// Who is on the other end of an IMAP session, for decisions and logs.
public struct IMAPSessionInfo: Sendable {
    public let id: String
    public let remoteAddress: String

    public init(id: String, remoteAddress: String) {
        self.id = id
        self.remoteAddress = remoteAddress
    }
}

/// What the IMAP server asks of the HISP.
public protocol IMAPServerDelegate: Sendable {
    /// The user's name as the HISP knows it, or nil (wrong user or password, or throttled: one answer for all).
    func signIn(user: String, password: String, session: IMAPSessionInfo) async -> String?
    /// Runs an operation on `user`'s mailbox.
    func perform(_ operation: IMAPOperation, user: String, session: IMAPSessionInfo) async -> IMAPOutcome
    /// The changes to a folder after the view the session selected (its highest modification
    /// sequence and next UID), as they become durable; nil when it cannot be watched.
    func changes(folder: String, user: String, since modSeq: UInt64, uidNext: UInt32) async -> AsyncStream<[SelectedMailbox.Change]>?
}
