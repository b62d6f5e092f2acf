import Foundation

/// A server the test starts (ours or a real peer), its output in a log file,
/// ready once the log shows `readyMarker` (empty: at once); killed with SIGKILL when released
/// (a child of a test thread inherits blocked signals, so SIGTERM may not land).
public final class BackgroundProcess: @unchecked Sendable {
    public let process: Process
    public let logPath: String

    public init(_ workspace: Workspace, _ program: String, _ arguments: [String], readyMarker: String, seconds: Double = 120) throws {
        logPath = workspace.path("bg-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let p = Process()
        if program.hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = arguments
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [program] + arguments
        }
        p.currentDirectoryURL = workspace.url
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        process = p
        // No marker: the caller waits in its own way.
        if readyMarker.isEmpty { return }
        if poll(seconds: seconds, { self.log.contains(readyMarker) ? true : nil }) == true { return }
        stop()
        throw HarnessError(description: "\(program) did not start: \(log)")
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
