import Foundation

/// OpenSSL's own OCSP responder (`openssl ocsp -port`) on loopback, over an
/// index file the test writes: the real peer for OCSP checks. Killed when
/// released (SIGKILL: a child of a dispatch thread inherits blocked signals).
public final class OCSPTestResponder: @unchecked Sendable {
    public let port: Int
    private let process: BackgroundProcess

    /// One index line per certificate: (serial hex, revoked?).
    public static func index(_ entries: [(serial: String, revoked: Bool)]) -> String {
        entries.map { e in
            e.revoked ? "R\t391231000000Z\t251101000000Z\t\(e.serial)\tunknown\t/CN=revoked\n"
                : "V\t391231000000Z\t\t\(e.serial)\tunknown\t/CN=valid\n"
        }.joined()
    }

    /// A port free now, for the certificates' OCSP URL: OpenSSL reads its
    /// index only at start, so the URL must be known before the responder runs.
    public static func freePort(_ workspace: Workspace) throws -> Int {
        let r = try workspace.mustRun("python3", ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        guard let port = Int(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw HarnessError(description: "no free port") }
        return port
    }

    /// Serves `index` (a file in `workspace`) on `port`, signing as the CA `caCert`/`caKey`.
    public init(workspace: Workspace, index: String, caCert: String, caKey: String, port: Int) throws {
        process = try BackgroundProcess(
            workspace, "openssl",
            ["ocsp", "-index", workspace.path(index), "-port", "\(port)", "-rsigner", workspace.path(caCert),
             "-rkey", workspace.path(caKey), "-CA", workspace.path(caCert), "-nmin", "60"],
            readyMarker: "ACCEPT", seconds: 60)
        self.port = port
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public func stop() { process.stop() }

    deinit { stop() }
}
