import Foundation

/// A Postfix instance of its own (configuration, queue and log in the
/// workspace; smtpd on one loopback address), started in the foreground and
/// stopped with `postfix stop`. Needs root (Postfix drops to its own user).
public final class PostfixServer: @unchecked Sendable {
    public let directory: String
    let process: BackgroundProcess
    let workspace: Workspace

    /// `settings` are added to main.cf; smtpd listens on `listen` (HOST:PORT).
    public init(_ workspace: Workspace, listen: String, settings: [String: String]) throws {
        self.workspace = workspace
        directory = workspace.path("postfix")
        let fm = FileManager.default
        for d in ["etc", "queue", "data"] { try fm.createDirectory(atPath: "\(directory)/\(d)", withIntermediateDirectories: true) }
        // Postfix's own user must reach its directories.
        for path in [workspace.url.path, directory] { try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
        try workspace.mustRun("chown", ["postfix", "\(directory)/data"])
        var main: [String: String] = [
            "compatibility_level": "3.6",
            "queue_directory": "\(directory)/queue",
            "data_directory": "\(directory)/data",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.test",
            "mydestination": "",
            "alias_maps": "",
            "alias_database": "",
            "local_transport": "error:no local delivery here",
            "inet_interfaces": "all",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file_prefixes": "/tmp",
            "maillog_file": "\(directory)/postfix.log",
            "smtputf8_enable": "no",
        ]
        for (k, v) in settings { main[k] = v }
        let mainCF = main.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n") + "\n"
        try Data(mainCF.utf8).write(to: URL(fileURLWithPath: "\(directory)/etc/main.cf"))
        // No chroot, no local delivery; smtpd only where the test says.
        let services = [
            "\(listen) inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr", "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush", "proxymap unix - - n - - proxymap", "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp", "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
            "discard unix - - n - - discard", "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        try Data((services.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: "\(directory)/etc/master.cf"))
        let check = try workspace.run("postfix", ["-c", "\(directory)/etc", "check"])
        guard check.status == 0 else { throw HarnessError(description: "postfix check failed: \(check.stderr) \((try? String(contentsOfFile: "\(directory)/postfix.log", encoding: .utf8)) ?? "")") }
        process = try BackgroundProcess(workspace, "postfix", ["-c", "\(directory)/etc", "start-fg"], readyMarker: "", seconds: 1)
        let started = poll(seconds: 60) { self.log.contains("daemon started") ? true : nil }
        // A listener another instance holds would take connections and never answer.
        let bindFailed = log.contains("bind") && log.contains("Address already in use")
        guard started == true, !bindFailed else {
            let why = "postfix did not start: \(process.log) \(log)"
            stop()
            throw HarnessError(description: why)
        }
    }

    public var log: String { (try? String(contentsOfFile: "\(directory)/postfix.log", encoding: .utf8)) ?? "" }

    /// Hands a message to Postfix as a local program would (sendmail, then pickup).
    public func sendmail(from: String, to: [String], message: [UInt8]) throws {
        try workspace.mustRun("/usr/sbin/sendmail", ["-C", "\(directory)/etc", "-f", from] + to, stdin: message)
    }

    /// `postfix stop`, then SIGKILL to the master if it is still there (it outlives
    /// the `postfix start-fg` process the test started).
    public func stop() {
        _ = try? workspace.run("postfix", ["-c", "\(directory)/etc", "stop"])
        if let text = try? String(contentsOfFile: "\(directory)/queue/pid/master.pid", encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
            kill(pid, SIGKILL)
        }
        process.stop()
    }

    deinit { stop() }
}
