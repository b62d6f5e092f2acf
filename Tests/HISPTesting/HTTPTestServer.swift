import Foundation

/// A real HTTP server on loopback serving the files of a directory
/// (Python's http.server), for AIA, CRL and bundle fetching in tests. It
/// binds port 0, so parallel tests never collide, and stops when released.
public final class HTTPTestServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let process: Process
    private let stdin: FileHandle

    public init(directory: String) throws {
        self.directory = directory
        let portFile = directory + "/.port-\(UUID().uuidString)"
        // The server runs until its standard input closes: released by the
        // test, or the test process gone, it never outlives the run. (A
        // SIGTERM would not do: a child spawned from a dispatch worker thread
        // inherits that thread's blocked signals.)
        let script = """
            import http.server, functools, os, sys, threading
            class Quiet(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *a): pass
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
            with open(sys.argv[2] + ".tmp", "w") as f:
                f.write(str(server.server_address[1]))
            os.rename(sys.argv[2] + ".tmp", sys.argv[2])
            threading.Thread(target=server.serve_forever, daemon=True).start()
            sys.stdin.read()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, directory, portFile]
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        stdin = input.fileHandleForWriting
        try p.run()
        process = p
        let port = poll(seconds: 60) { (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) } }
        guard let port else {
            try? stdin.close()
            throw HarnessError(description: "the test HTTP server did not start")
        }
        self.port = port
    }

    public func url(_ name: String) -> String { "http://127.0.0.1:\(port)/\(name)" }

    deinit {
        try? stdin.close()
        process.waitUntilExit()
    }
}

/// Calls `probe` every 50 ms until it returns a value or `seconds` pass.
func poll<T>(seconds: Double, _ probe: () -> T?) -> T? {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if let value = probe() { return value }
        Thread.sleep(forTimeInterval: 0.05)
    } while Date() < deadline
    return nil
}
