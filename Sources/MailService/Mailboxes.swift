import DirectCore
import Foundation
import InternetMessage
import Storage

/// One change to a folder, as a mail client or page wants to hear of it.
public enum MailboxChange: Sendable, Equatable {
    /// A new message (RFC 9051 7.4.1 EXISTS).
    case added(uid: UInt32)
    /// A message's flags or keywords changed (RFC 9051 7.5.2 FETCH FLAGS).
    case flags(MessageState)
    /// A message left the folder (RFC 9051 7.5.1 EXPUNGE).
    case expunged(uid: UInt32)
}

/// The mailbox operations every edge uses, for a signed-in user's own
/// mailbox. Reads are audited with `reader` ("alice@example.org over IMAP").
extension MailService {
    public func folders(_ user: DirectAddress) async throws -> [FolderStatus] {
        try await store.folders(mailbox: user)
    }

    public func folderStatus(_ user: DirectAddress, folder: String) async throws -> FolderStatus {
        try await store.folderStatus(mailbox: user, folder: folder)
    }

    public func createFolder(_ user: DirectAddress, _ name: String) async throws -> FolderStatus {
        try await store.createFolder(mailbox: user, name: name)
    }

    public func deleteFolder(_ user: DirectAddress, _ name: String) async throws {
        try await store.deleteFolder(mailbox: user, name: name)
    }

    public func renameFolder(_ user: DirectAddress, from: String, to: String) async throws {
        try await store.renameFolder(mailbox: user, from: from, to: to)
    }

    public func setSubscribed(_ user: DirectAddress, folder: String, _ subscribed: Bool) async throws {
        try await store.setSubscribed(mailbox: user, folder: folder, subscribed)
    }

    /// A page of a folder, newest first, with metadata and flags; no body is opened.
    public func page(_ user: DirectAddress, folder: String, number: Int, size: Int) async throws -> (total: Int, messages: [MessageSummary]) {
        try await store.page(mailbox: user, folder: folder, number: number, size: size)
    }

    /// The messages of a folder by UID, with metadata and flags; no body is opened.
    public func messages(_ user: DirectAddress, folder: String, uids: UIDRanges) async throws -> [MessageSummary] {
        try await store.messages(mailbox: user, folder: folder, uids: uids)
    }

    /// Every message of a folder with its flags, keywords and modification sequence, and the folder's
    /// counters; only keywords are opened (an IMAP SELECT).
    public func states(_ user: DirectAddress, folder: String) async throws -> FolderChanges {
        try await store.changes(mailbox: user, folder: folder, since: 0)
    }

    /// A folder's UIDs and sizes, oldest first, at most `limit`; nothing is opened (a POP3 maildrop).
    public func sizes(_ user: DirectAddress, folder: String, limit: Int) async throws -> (status: FolderStatus, messages: [(uid: UInt32, size: Int)]) {
        try await store.sizes(mailbox: user, folder: folder, limit: limit)
    }

    /// Messages' UIDs, sizes and arrival times; nothing is opened.
    public func sizes(_ user: DirectAddress, folder: String, uids: UIDRanges) async throws -> [(uid: UInt32, size: Int, received: Date)] {
        try await store.sizes(mailbox: user, folder: folder, uids: uids)
    }

    /// Several messages' exact bytes in one read (each audited as a read by `reader`).
    public func bodies(_ user: DirectAddress, folder: String, uids: UIDRanges, reader: String) async throws -> [(MessageSummary, [UInt8])] {
        try await store.messagesWithBodies(mailbox: user, folder: folder, uids: uids, reader: reader)
    }

    /// One message's exact bytes (audited as a read by `reader`).
    public func body(_ user: DirectAddress, folder: String, uid: UInt32, reader: String) async throws -> (MessageSummary, [UInt8]) {
        try await store.message(mailbox: user, folder: folder, uid: uid, reader: reader)
    }

    public func setFlags(_ user: DirectAddress, folder: String, uids: UIDRanges, _ change: FlagChange, flags: MessageFlags,
                         keywords: [String] = [], unchangedSince: UInt64? = nil) async throws -> (updated: [MessageState], failed: [UInt32]) {
        try await store.storeFlags(mailbox: user, folder: folder, uids: uids, change, flags: flags, keywords: keywords, unchangedSince: unchangedSince)
    }

    public func copy(_ user: DirectAddress, from: String, uids: UIDRanges, to: String) async throws -> (uidValidity: UInt32, pairs: [(UInt32, UInt32)]) {
        try await store.copyMessages(mailbox: user, from: from, uids: uids, to: to)
    }

    public func move(_ user: DirectAddress, from: String, uids: UIDRanges, to: String) async throws -> (uidValidity: UInt32, pairs: [(UInt32, UInt32)]) {
        try await store.moveMessages(mailbox: user, from: from, uids: uids, to: to)
    }

    public func expunge(_ user: DirectAddress, folder: String, uids: UIDRanges? = nil) async throws -> [UInt32] {
        try await store.expunge(mailbox: user, folder: folder, uids: uids)
    }

    /// Files a message the user wrote (a draft, or a copy of what a client sent) in one of their folders.
    /// Only Sent, Drafts and the user's own folders take appends: INBOX holds what arrived by Direct.
    public func append(_ user: DirectAddress, folder: String, message: [UInt8], flags: MessageFlags = [], keywords: [String] = [],
                       internalDate: Date = Date()) async throws -> (uidValidity: UInt32, uid: UInt32) {
        if SpecialFolder(name: folder) == .inbox {
            throw StoreError.conflict("INBOX holds messages that arrived by Direct; append to Sent, Drafts or a folder of your own")
        }
        let metadata: MessageMetadata
        do {
            let entity = try MIMEEntity(parsing: message)
            metadata = MessageMetadata(headers: entity.headers, messageID: entity.headers["Message-ID"]?.trimmingWhitespace() ?? "")
        } catch {
            throw StoreError.invalid("the message is not RFC 5322: \(error)")
        }
        let r = try await store.append(mailbox: user, folder: folder, bytes: message, metadata: metadata, flags: flags, keywords: keywords,
                                       received: internalDate)
        return (r.uidValidity, r.uid)
    }

    /// What changes in a folder from now on, as they become durable, until the
    /// stream is dropped (IMAP IDLE, a live web inbox). Changes made by any
    /// edge, and by mail arriving, are reported once each. With `since` (the highest
    /// modification sequence and next UID of a view read earlier, an IMAP SELECT), the
    /// changes after that view come first, so that none made in between is missed.
    public func changes(_ user: DirectAddress, folder: String, since: (modSeq: UInt64, uidNext: UInt32)? = nil) async throws
        -> AsyncThrowingStream<[MailboxChange], any Error>
    {
        let box = try await store.mailboxKey(user)
        // Subscribed before the starting point is read: nothing between the two is missed.
        let signals = store.signals.subscribe(box)
        let current = try await store.folderStatus(mailbox: user, folder: folder)
        let start = since ?? (current.highestModSeq, current.uidNext)
        let catchUp = since.map { $0.modSeq < current.highestModSeq || $0.uidNext < current.uidNext } ?? false
        let store = self.store
        return AsyncThrowingStream { continuation in
            let task = Task {
                var modSeq = start.modSeq
                var uidNext = start.uidNext
                func pass() async -> Bool {
                    do {
                        let c = try await store.changes(mailbox: user, folder: folder, since: modSeq)
                        var batch: [MailboxChange] = c.expunged.map { .expunged(uid: $0) }
                        for m in c.changed { batch.append(m.uid >= uidNext ? .added(uid: m.uid) : .flags(m)) }
                        modSeq = max(modSeq, c.status.highestModSeq)
                        uidNext = max(uidNext, c.status.uidNext)
                        if !batch.isEmpty { continuation.yield(batch) }
                        return true
                    } catch {
                        continuation.finish(throwing: error)
                        return false
                    }
                }
                // A first pass without a signal when the view is behind; then one per signal.
                if catchUp, await !pass() { return }
                for await _ in signals {
                    if await !pass() { return }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
