import DirectCore
import Foundation
import IMAPCore
import MailService
import Storage

/// IMAP (RFC 9051, RFC 3501): a user's folders through the mail service, a
/// thin adapter. Sign-in is the shared authenticator's; reads are audited as
/// "ADDRESS over IMAP"; a folder's changes come from the mail core's stream.
struct IMAPEdge: IMAPServerDelegate {
    let mail: MailService

    func signIn(user: String, password: String, session: IMAPSessionInfo) async -> String? {
        await mail.authenticator.authenticate(user: user, password: password, edge: "imap", client: session.remoteAddress,
                                              session: session.id).address?.description
    }

    func perform(_ operation: IMAPOperation, user name: String, session: IMAPSessionInfo) async -> IMAPOutcome {
        guard let user = DirectAddress(name) else { return .failed(.cannot, "not signed in") }
        do {
            return try await run(operation, user: user, reader: "\(user) over IMAP (session \(session.id))")
        } catch let e as StoreError {
            switch e {
            case .notFound: return .failed(.nonexistent, "no such folder or message")
            case .exists: return .failed(.alreadyExists, "a folder of that name exists")
            case .invalid(let why), .conflict(let why): return .failed(.cannot, SafeText.escape(why))
            default: return .failed(.unavailable, "the mailbox cannot be read now; try again later")
            }
        } catch {
            return .failed(.unavailable, "the mailbox cannot be read now; try again later")
        }
    }

    private func run(_ operation: IMAPOperation, user: DirectAddress, reader: String) async throws -> IMAPOutcome {
        switch operation {
        case .list:
            let folders = try await mail.folders(user)
            let names = folders.map(\.name)
            return .folders(folders.map { f in
                IMAPFolderInfo(name: f.name, specialUse: f.special?.attribute, subscribed: f.subscribed,
                               hasChildren: names.contains { $0.hasPrefix(f.name + String(FolderName.separator)) })
            })
        case .status(let folder):
            return .counts(try await counts(user, folder))
        case .select(let folder):
            let c = try await mail.states(user, folder: folder)
            return .selected(try await counts(user, folder), c.changed.map(Self.message))
        case .create(let folder):
            _ = try await mail.createFolder(user, folder)
            return .done
        case .delete(let folder):
            try await mail.deleteFolder(user, folder)
            return .done
        case .rename(let from, let to):
            try await mail.renameFolder(user, from: from, to: to)
            return .done
        case .subscribe(let folder, let on):
            try await mail.setSubscribed(user, folder: folder, on)
            return .done
        case .fetch(let folder, let uids, let bodies, let markSeen, let maxBytes):
            var changed: [SelectedMailbox.Message] = []
            if !markSeen.isEmpty {
                for chunk in uidRangeChunks(markSeen) {
                    changed += try await mail.setFlags(user, folder: folder, uids: chunk, .add, flags: .seen).updated.map(Self.message)
                }
            }
            var out: [IMAPStoredMessage] = []
            guard bodies else {
                // FLAGS, INTERNALDATE, RFC822.SIZE: clear columns, nothing opened.
                for chunk in uidRangeChunks(uids) {
                    for m in try await mail.sizes(user, folder: folder, uids: chunk) {
                        out.append(IMAPStoredMessage(uid: m.uid, internalDate: m.received, size: m.size, bytes: nil))
                    }
                }
                return .fetched(out, changed: changed, rest: [])
            }
            let (part, rest) = try await bodyPart(user, folder: folder, uids: uids, maxBytes: maxBytes)
            // One read transaction for up to 200 messages.
            for start in stride(from: 0, to: part.count, by: 200) {
                for chunk in uidRangeChunks(Array(part[start..<min(part.count, start + 200)])) {
                    for (summary, bytes) in try await mail.bodies(user, folder: folder, uids: chunk, reader: reader) {
                        out.append(IMAPStoredMessage(uid: summary.uid, internalDate: summary.received, size: summary.size, bytes: bytes))
                    }
                }
            }
            return .fetched(out, changed: changed, rest: rest)
        case .store(let folder, let uids, let mode, let flags, let unchangedSince):
            let (system, keywords) = Self.flags(flags)
            let change: FlagChange = mode == .add ? .add : mode == .remove ? .remove : .replace
            var updated: [SelectedMailbox.Message] = [], failed: [UInt32] = []
            for chunk in uidRangeChunks(uids) {
                let r = try await mail.setFlags(user, folder: folder, uids: chunk, change, flags: system, keywords: keywords, unchangedSince: unchangedSince)
                updated += r.updated.map(Self.message)
                failed += r.failed
            }
            return .stored(updated: updated, failed: failed)
        case .copy(let folder, let uids, let to), .move(let folder, let uids, let to):
            var validity: UInt32 = 0
            var pairs: [UInt32Pair] = []
            for chunk in uidRangeChunks(uids) {
                let r: (uidValidity: UInt32, pairs: [(UInt32, UInt32)])
                if case .move = operation {
                    r = try await mail.move(user, from: folder, uids: chunk, to: to)
                } else {
                    r = try await mail.copy(user, from: folder, uids: chunk, to: to)
                }
                validity = r.uidValidity
                pairs += r.pairs.map { UInt32Pair($0.0, $0.1) }
            }
            return .copied(uidValidity: validity, pairs: pairs)
        case .expunge(let folder, let uids):
            if let uids {
                var gone: [UInt32] = []
                for chunk in uidRangeChunks(uids) { gone += try await mail.expunge(user, folder: folder, uids: chunk) }
                return .expunged(gone)
            }
            return .expunged(try await mail.expunge(user, folder: folder))
        case .append(let folder, let flags, let date, let message):
            let (system, keywords) = Self.flags(flags)
            let r = try await mail.append(user, folder: folder, message: message, flags: system, keywords: keywords, internalDate: date ?? Date())
            return .appended(uidValidity: r.uidValidity, uid: r.uid)
        }
    }

    /// The first of `uids` (ascending) whose sizes add up to at most `maxBytes`, one at least, and the UIDs after them:
    /// what one part of a FETCH or SEARCH holds in memory. Sizes come from the messages' clear columns.
    private func bodyPart(_ user: DirectAddress, folder: String, uids: [UInt32], maxBytes: Int) async throws -> (part: [UInt32], rest: [UInt32]) {
        var part: [UInt32] = [], bytes = 0
        for start in stride(from: 0, to: uids.count, by: 1000) {
            let window = Array(uids[start..<min(uids.count, start + 1000)])
            var sizes: [UInt32: Int] = [:]
            for chunk in uidRangeChunks(window) {
                for m in try await mail.sizes(user, folder: folder, uids: chunk) { sizes[m.uid] = m.size }
            }
            for (offset, uid) in window.enumerated() {
                // A message gone since the client's view has no size and is skipped.
                guard let size = sizes[uid] else { continue }
                if !part.isEmpty && bytes + size > maxBytes { return (part, Array(uids[(start + offset)...])) }
                part.append(uid)
                bytes += size
            }
        }
        return (part, [])
    }

    func changes(folder: String, user name: String, since modSeq: UInt64, uidNext: UInt32) async -> AsyncStream<[SelectedMailbox.Change]>? {
        // From the SELECT's view on: a change made before this subscription is reached is not lost.
        guard let user = DirectAddress(name), let stream = try? await mail.changes(user, folder: folder, since: (modSeq, uidNext)) else { return nil }
        let mail = self.mail
        return AsyncStream { continuation in
            let task = Task {
                do {
                    for try await batch in stream {
                        var out: [SelectedMailbox.Change] = []
                        for change in batch {
                            switch change {
                            case .added(let uid):
                                // A new message's flags (a Sent copy arrives read).
                                if let m = try? await mail.messages(user, folder: folder, uids: [uid...uid]).first {
                                    out.append(.added(SelectedMailbox.Message(uid: m.uid, flags: m.flags.names + m.keywords, modSeq: m.modSeq)))
                                }
                            case .flags(let state): out.append(.flags(Self.message(state)))
                            case .expunged(let uid): out.append(.expunged(uid: uid))
                            }
                        }
                        if !out.isEmpty { continuation.yield(out) }
                    }
                } catch {}
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func message(_ s: MessageState) -> SelectedMailbox.Message {
        SelectedMailbox.Message(uid: s.uid, flags: s.flags.names + s.keywords, modSeq: s.modSeq)
    }

    /// System flags and keywords from IMAP flag names; \Recent and unknown system flags are ignored.
    static func flags(_ names: [String]) -> (MessageFlags, [String]) {
        var system: MessageFlags = []
        var keywords: [String] = []
        for n in names {
            if let known = MessageFlags.all.first(where: { $0.1.lowercased() == n.lowercased() }) {
                system.insert(known.0)
            } else if !n.hasPrefix("\\") {
                keywords.append(n)
            }
        }
        return (system, keywords)
    }

    private func counts(_ user: DirectAddress, _ folder: String) async throws -> IMAPFolderCounts {
        let status = try await mail.folderStatus(user, folder: folder)
        return IMAPFolderCounts(messages: status.messages, unseen: status.unseen, uidNext: status.uidNext, uidValidity: status.uidValidity,
                                highestModSeq: status.highestModSeq, size: status.bytes)
    }
}
