import ArgumentParser
import DirectCore
import Foundation
import Storage

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "The outbound queue: one line per message and recipient.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the queue, newest first: state, attempts, next attempt or MDN deadline, sender, recipient, Message-ID, last error.")
        @Flag(help: "Only what is still in progress (not delivered, failed or timed out).") var active = false
        @Option(help: "At most this many rows.") var limit: Int = 200
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1 to 100000") }
        }

        func run() async throws {
            try await store.withStore { s in
                let entries = try await s.queueEntries(includeFinished: !active, limit: limit)
                if entries.isEmpty { say("the queue is empty") }
                for e in entries { say(QueueCommand.line(e)) }
            }
        }
    }

    static func line(_ e: QueueEntry) -> String {
        var when = ""
        switch e.state {
        case .queued: when = " next \(CommandIO.timestamp(e.nextAttempt))"
        case .sent, .processed: when = e.deadline.map { " MDN due by \(CommandIO.timestamp($0))" } ?? ""
        default: break
        }
        let kind = e.kind == .notification ? " (notification)" : ""
        // An error from an earlier attempt says nothing once the message went through.
        let stillRelevant: Set<QueueState> = [.pending, .queued, .failed, .timedout]
        let error = stillRelevant.contains(e.state) ? e.lastError.map { "  last error: \($0)" } ?? "" : ""
        return "\(e.id)  \(e.state.rawValue)\(kind)  attempts \(e.attempts)\(when)  \(e.sender) -> \(e.recipient)  \(e.messageID)\(error)"
    }
}

extension MessageCommand {
    struct Trace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Where a message is and why: queue state per recipient, then every step (discovery and trust, security, delivery attempts, notifications).")
        @Argument(help: "The Message-ID, with or without angle brackets.") var messageID: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            var id = messageID.trimmingWhitespace()
            guard !id.isEmpty, id.utf8.count <= 998 else { throw CLIFailure.usage("give a Message-ID") }
            if !id.hasPrefix("<") { id = "<\(id)>" }
            try await store.withStore { s in
                let (entries, events) = try await s.trace(messageID: id)
                guard !entries.isEmpty || !events.isEmpty else {
                    throw CLIFailure(message: "nothing known about \(id) in this HISP", exitCode: 1)
                }
                say("message \(id)")
                if !entries.isEmpty {
                    say("recipients:")
                    for e in entries {
                        let status: String
                        switch e.state {
                        case .pending: status = "waiting for discovery and signing"
                        case .queued: status = "waiting to be sent (attempt \(e.attempts + 1) at \(CommandIO.timestamp(e.nextAttempt)))"
                        case .sent: status = "sent; waiting for the processed MDN" + (e.deadline.map { " until \(CommandIO.timestamp($0))" } ?? "")
                        case .processed: status = e.wantsDispatched ? "processed; waiting for the dispatched MDN" : "processed by the recipient's HISP (final)"
                        case .dispatched: status = "dispatched to the recipient's mailbox (final)"
                        case .delivered: status = "delivered"
                        case .failed: status = "failed: \(e.lastError ?? "see the steps below"); the sender was sent a failure notice"
                        case .timedout: status = "no notification in time; the sender was sent a failure notice"
                        case .deleted: status = "deleted at the recipient's side (final)"
                        case .denied: status = "the recipient's side will not say what became of it (final)"
                        }
                        say("  \(e.recipient): \(status)")
                    }
                }
                say("steps:")
                for ev in events { say("  \(CommandIO.timestamp(ev.at))  \(ev.step)  \(ev.outcome)  \(ev.detail)") }
            }
        }
    }
}
