import DirectCore
import MailService
import POP3Core
import Storage
import Synchronization

/// POP3 (RFC 1939): INBOX as a maildrop, a thin adapter over the mail service.
/// Sign-in is the shared authenticator's; a maildrop is open in one session at
/// a time (RFC 1939 4: the exclusive-access lock), and its messages are
/// named by `UIDVALIDITY.UID`, which stays the same across sessions and restarts.
final class POP3Edge: POP3ServerDelegate {
    let mail: MailService
    /// The users with a session in the transaction state.
    private let open = Mutex<Set<String>>([])
    /// Messages listed in one session at most (the oldest; the rest wait for the next session).
    static let maxMaildrop = 50_000

    init(mail: MailService) {
        self.mail = mail
    }

    func signIn(user: String, password: String, session: POP3SessionInfo) async -> POP3SignIn {
        let result = await mail.authenticator.authenticate(user: user, password: password, edge: "pop3", client: session.remoteAddress,
                                                           session: session.id)
        guard let address = result.address else { return .refused }
        // The session's user from here on is the address as the store knows it, whatever case it was typed in.
        guard open.withLock({ $0.insert(address.description).inserted }) else {
            return .unavailable("the maildrop is open in another session", code: "IN-USE")
        }
        do {
            let (status, messages) = try await mail.sizes(address, folder: SpecialFolder.inbox.name, limit: Self.maxMaildrop)
            return .maildrop(user: address.description, messages: messages.map { POP3Message(uid: "\(status.uidValidity).\($0.uid)", size: $0.size) })
        } catch {
            open.withLock { _ = $0.remove(address.description) }
            return .unavailable("the maildrop cannot be read now; try again later", code: "SYS/TEMP")
        }
    }

    func retrieve(uid: String, bodyLines: Int?, user: String, session: POP3SessionInfo) async -> [UInt8]? {
        guard let address = DirectAddress(user), let n = Self.uid(uid) else { return nil }
        guard let (_, bytes) = try? await mail.body(address, folder: SpecialFolder.inbox.name, uid: n,
                                                    reader: "\(address) over POP3 (session \(session.id))") else { return nil }
        return bodyLines.map { POP3Reply.top(of: bytes, lines: $0) } ?? bytes
    }

    func delete(uids: [String], user: String, session: POP3SessionInfo) async -> Bool {
        guard let address = DirectAddress(user) else { return false }
        do {
            for chunk in uidRangeChunks(uids.compactMap(Self.uid)) {
                _ = try await mail.setFlags(address, folder: SpecialFolder.inbox.name, uids: chunk, .add, flags: .deleted)
                _ = try await mail.expunge(address, folder: SpecialFolder.inbox.name, uids: chunk)
            }
            return true
        } catch {
            return false
        }
    }

    func signedOut(user: String, session: POP3SessionInfo) async {
        open.withLock { _ = $0.remove(user) }
    }

    /// The UID in `UIDVALIDITY.UID`.
    static func uid(_ s: String) -> UInt32? {
        guard let dot = s.firstIndex(of: ".") else { return nil }
        return UInt32(s[s.index(after: dot)...])
    }
}
