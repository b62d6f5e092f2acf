import ArgumentParser
import Crypto
import DirectCore
import Foundation
import SQLiteStore
import Storage

/// The mailbox as IMAP and the web will use it: a large folder, pages of it,
/// and reads, on a real store in a temporary directory.
struct MailboxBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailbox",
        abstract: "A folder of many messages: the time of its first and last page, reads per second, and disk syncs per read.")

    @Option(help: "Messages in the folder.") var messages = 10_000
    @Option(help: "Bytes per message.") var size = 10_000
    @Option(help: "Messages per page.") var pageSize = 50
    @Option(help: "Seconds to read messages.") var seconds: Double = 3
    @Option(help: "Rounds of page timings (first and last page interleaved).") var rounds = 20

    func validate() throws {
        guard (1...1_000_000).contains(messages) else { throw ValidationError("--messages must be 1 to 1000000") }
        guard (100...(1 << 20)).contains(size) else { throw ValidationError("--size must be 100 bytes to 1 MiB") }
        guard (1...StoreLimits.maxPageSize).contains(pageSize) else { throw ValidationError("--page-size must be 1 to \(StoreLimits.maxPageSize)") }
        guard seconds > 0 && seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard (1...1000).contains(rounds) else { throw ValidationError("--rounds must be 1 to 1000") }
    }

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-bench-mailbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = try await SQLiteDatabase.open(path: dir.appendingPathComponent("hisp.sqlite").path, create: true)
        let store = try await HISPStore.create(database: database, material: .keyFile(SymmetricKey(size: .bits256), origin: "bench key"),
                                               actor: "bench")
        let box = DirectAddress("alice@bench.example")!
        _ = try await store.addDomain("bench.example", caCertificate: [1], caPrivateKey: [2], certificate: [3], privateKey: [4],
                                      dns: DomainDNS(host: "hisp.bench.example"))
        _ = try await store.addAddress(box, certificate: [5], privateKey: [6], passwordHash: nil)

        // Filled by many writers at once, as a busy MX would (their commits are grouped).
        let body = [UInt8](repeating: 0x61, count: max(0, size - 80))
        let fillStart = ContinuousClock.now
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            var ids: [String] = []
            for n in 0..<messages {
                if n >= 64, let id = try await group.next() { ids.append(id) }
                group.addTask {
                    let bytes = Array("From: bob@peer.example\r\nSubject: message \(n)\r\nMessage-ID: <\(n)@peer.example>\r\n\r\n".utf8) + body
                    return try await store.addMessage(mailbox: box, bytes: bytes, metadata: MessageMetadata(
                        sender: "bob@peer.example", recipients: [box.description], subject: "message \(n)", messageID: "<\(n)@peer.example>"))
                }
            }
            for try await id in group { ids.append(id) }
            return ids
        }
        let fill = ContinuousClock.now - fillStart
        let lastPage = (messages + pageSize - 1) / pageSize

        // First and last page interleaved, so that drift moves both alike.
        var first: [Duration] = []
        var last: [Duration] = []
        for _ in 0..<rounds {
            for (page, into) in [(1, 0), (lastPage, 1)] {
                let start = ContinuousClock.now
                let listed = try await store.page(mailbox: box, folder: "INBOX", number: page, size: pageSize)
                let took = ContinuousClock.now - start
                guard !listed.messages.isEmpty else { throw CLIFailure(message: "page \(page) is empty", exitCode: 1) }
                if into == 0 { first.append(took) } else { last.append(took) }
            }
        }
        func median(_ d: [Duration]) -> Double {
            let sorted = d.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }.sorted()
            return sorted[sorted.count / 2]
        }

        // Reads on one task (one core), each audited.
        await store.flushReadEvents()
        let before = database.commitCounts
        var reads = 0
        let readStart = ContinuousClock.now
        let until = readStart + .milliseconds(Int64(seconds * 1000))
        var generator = SystemRandomNumberGenerator()
        while ContinuousClock.now < until {
            _ = try await store.message(ids[Int.random(in: 0..<ids.count, using: &generator)], reader: "bench")
            reads += 1
        }
        let readTime = ContinuousClock.now - readStart
        let readCommits = database.commitCounts.commits - before.commits
        await store.flushReadEvents()
        let auditCommits = database.commitCounts.commits - before.commits
        try await store.close()

        let readSeconds = Double(readTime.components.seconds) + Double(readTime.components.attoseconds) / 1e18
        let fillSeconds = Double(fill.components.seconds) + Double(fill.components.attoseconds) / 1e18
        let (p1, pN) = (median(first), median(last))
        say("machine: \(Self.cpuModel()), \(ProcessInfo.processInfo.activeProcessorCount) core(s)")
        say(String(format: "folder: %d messages of %d bytes, stored in %.1f s (%.0f/s)", messages, size, fillSeconds, Double(messages) / fillSeconds))
        say(String(format: "page 1 of %d: %.2f ms; page %d: %.2f ms; ratio %.2f (median of %d)", pageSize, p1 * 1000, lastPage, pN * 1000, pN / p1, rounds))
        say(String(format: "reads: %.0f/s on one task (%d in %.1f s); disk syncs while reading: %d (%.4f per read); read events written in %d commit(s)",
                   Double(reads) / readSeconds, reads, readSeconds, readCommits, Double(readCommits) / Double(max(1, reads)), auditCommits))
    }

    static func cpuModel() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }
}
