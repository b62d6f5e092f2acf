import Foundation

/// What a finished process produced.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: [UInt8]
    public let stderr: String
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// A temporary directory for one test, removed when the test's value goes away.
public final class Workspace: @unchecked Sendable {
    public let url: URL

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("hisp-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    public func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }

    public func read(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path(name)))) }

    /// Runs a program (found on PATH unless absolute), stdin from bytes, and
    /// captures its output through files so large outputs cannot deadlock.
    @discardableResult
    public func run(_ program: String, _ arguments: [String], stdin: [UInt8]? = nil) throws -> ProcessResult {
        let p = Process()
        if program.hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = arguments
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [program] + arguments
        }
        p.currentDirectoryURL = url
        let tag = UUID().uuidString
        let outPath = path(".out-\(tag)"), errPath = path(".err-\(tag)"), inPath = path(".in-\(tag)")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        FileManager.default.createFile(atPath: inPath, contents: Data(stdin ?? []))
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let inp = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        try inp.close()
        defer {
            for f in [outPath, errPath, inPath] { try? FileManager.default.removeItem(atPath: f) }
        }
        return ProcessResult(
            status: p.terminationStatus,
            stdout: Array(try Data(contentsOf: URL(fileURLWithPath: outPath))),
            stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self))
    }

    /// `run` on a thread of its own, so a test that awaits it leaves Swift's
    /// small cooperative pool free for the servers it talks to.
    public func runDetached(_ program: String, _ arguments: [String], stdin: [UInt8]? = nil) async throws -> ProcessResult {
        try await offThePool { try self.run(program, arguments, stdin: stdin) }
    }

    /// Runs and requires exit 0.
    @discardableResult
    public func mustRun(_ program: String, _ arguments: [String], stdin: [UInt8]? = nil) throws -> ProcessResult {
        try Self.requireSuccess(run(program, arguments, stdin: stdin), program, arguments)
    }

    /// Runs the `hisp` binary built from this package.
    @discardableResult
    public func hisp(_ arguments: [String], stdin: [UInt8]? = nil) throws -> ProcessResult {
        try run(Tools.hisp, arguments, stdin: stdin)
    }

    // The async overloads below are what an async test calls (Swift prefers them
    // there): the child process is waited for on a thread of its own. A test that
    // blocked one of the two cooperative threads of this machine kind on a child
    // starved the servers and clients of every other test running beside it.

    @discardableResult
    public func run(_ program: String, _ arguments: [String], stdin: [UInt8]? = nil) async throws -> ProcessResult {
        try await runDetached(program, arguments, stdin: stdin)
    }

    @discardableResult
    public func mustRun(_ program: String, _ arguments: [String], stdin: [UInt8]? = nil) async throws -> ProcessResult {
        try Self.requireSuccess(await runDetached(program, arguments, stdin: stdin), program, arguments)
    }

    @discardableResult
    public func hisp(_ arguments: [String], stdin: [UInt8]? = nil) async throws -> ProcessResult {
        try await runDetached(Tools.hisp, arguments, stdin: stdin)
    }

    private static func requireSuccess(_ r: ProcessResult, _ program: String, _ arguments: [String]) throws -> ProcessResult {
        guard r.status == 0 else {
            throw HarnessError(description: "\(program) \(arguments.joined(separator: " ")) exited \(r.status): \(r.stderr)")
        }
        return r
    }
}

/// Blocking work (starting a server and waiting for its ready line, waiting for a
/// child process) on a thread of its own, so that an async test leaves the two
/// cooperative threads of this machine kind to the servers and clients of the others.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

public enum Tools {
    /// The package root, from this file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `hisp` executable next to the test bundle (swift build puts them together).
    public static let hisp: String = {
        let exeDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            exeDir.appendingPathComponent("hisp").path,
            exeDir.deletingLastPathComponent().appendingPathComponent("hisp").path,
            packageRoot.appendingPathComponent(".build/debug/hisp").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }()

    public static let pkiScript: String = packageRoot.appendingPathComponent("Tests/Support/pki.py").path
}

/// Certificates and keys made at test time by Python's `cryptography`
/// (and openssl where cryptography refuses, as for SHA-1 signatures).
public struct TestPKI: Sendable {
    public let workspace: Workspace

    public init(_ workspace: Workspace) { self.workspace = workspace }

    /// The fixture most tests share: `ca`, and `alice` and `bob` issued by it
    /// for alice@direct.a.example and bob@direct.b.example.
    public func directPair() throws {
        try ca("ca")
        try leaf("alice", ca: "ca", ["--email", "alice@direct.a.example"])
        try leaf("bob", ca: "ca", ["--email", "bob@direct.b.example"])
    }

    /// Creates NAME.pem / NAME.key as a root CA.
    public func ca(_ name: String, _ extra: [String] = []) throws {
        try workspace.mustRun("python3", [Tools.pkiScript, "ca", workspace.url.path, name] + extra)
    }

    /// Creates NAME.pem / NAME.key issued by `ca`.
    public func leaf(_ name: String, ca: String, _ extra: [String] = []) throws {
        try workspace.mustRun("python3", [Tools.pkiScript, "leaf", workspace.url.path, name, "--ca", ca] + extra)
    }

    /// A certificate for an existing key, signed by `ca` with SHA-1 (openssl).
    // The same, for async tests (see Workspace.run).
    public func directPair() async throws {
        try await ca("ca")
        try await leaf("alice", ca: "ca", ["--email", "alice@direct.a.example"])
        try await leaf("bob", ca: "ca", ["--email", "bob@direct.b.example"])
    }

    public func ca(_ name: String, _ extra: [String] = []) async throws {
        try await workspace.mustRun("python3", [Tools.pkiScript, "ca", workspace.url.path, name] + extra)
    }

    public func leaf(_ name: String, ca: String, _ extra: [String] = []) async throws {
        try await workspace.mustRun("python3", [Tools.pkiScript, "leaf", workspace.url.path, name, "--ca", ca] + extra)
    }

    public func sha1Leaf(_ name: String, key: String, ca: String) async throws {
        try await workspace.mustRun("openssl", ["req", "-new", "-key", "\(key).key", "-subj", "/CN=\(name)", "-out", "\(name).csr"])
        try await workspace.mustRun("openssl", ["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key",
                                                "-sha1", "-days", "30", "-set_serial", "4242", "-out", "\(name).pem"])
        try FileManager.default.copyItem(atPath: workspace.path("\(key).key"), toPath: workspace.path("\(name).key"))
    }

    /// A certificate for an existing key, signed by `ca` with SHA-1 (openssl).
    public func sha1Leaf(_ name: String, key: String, ca: String) throws {
        try workspace.mustRun("openssl", ["req", "-new", "-key", "\(key).key", "-subj", "/CN=\(name)", "-out", "\(name).csr"])
        try workspace.mustRun("openssl", ["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key",
                                          "-sha1", "-days", "30", "-set_serial", "4242", "-out", "\(name).pem"])
        try FileManager.default.copyItem(atPath: workspace.path("\(key).key"), toPath: workspace.path("\(name).key"))
    }
}

/// A sample Direct message with PHI-like content.
public func sampleMessage(body: String = "Patient Jane Roe, DOB 1970-01-01.\r\nReferral attached.\r\n") -> [UInt8] {
    Array((
        "From: Dr. Alice <alice@direct.a.example>\r\n" +
        "To: Bob <bob@direct.b.example>\r\n" +
        "Subject: Referral for Jane Roe\r\n" +
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
        "Message-ID: <\(UUID().uuidString)@direct.a.example>\r\n" +
        "MIME-Version: 1.0\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "\r\n" + body).utf8)
}
