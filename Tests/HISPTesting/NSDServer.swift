import Foundation

/// NSD (NLnet Labs' authoritative DNS server, from Debian) on a loopback port,
/// serving zone files the test wrote: a DNS peer nobody here wrote.
public final class NSDServer: @unchecked Sendable {
    public let port: Int
    let process: BackgroundProcess

    /// `zones`: (origin, zone file name in `workspace`).
    public init(_ workspace: Workspace, zones: [(origin: String, file: String)]) throws {
        port = try OCSPTestResponder.freePort(workspace)
        let dir = workspace.path("nsd-\(port)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var conf = """
            server:
                ip-address: 127.0.0.1
                port: \(port)
                username: ""
                chroot: ""
                zonesdir: "\(workspace.url.path)"
                pidfile: "\(dir)/nsd.pid"
                zonelistfile: "\(dir)/zone.list"
                database: ""
                xfrdfile: "\(dir)/xfrd.state"
                xfrdir: "\(dir)"
            remote-control:
                control-enable: no

            """
        for z in zones {
            conf += "zone:\n    name: \(z.origin)\n    zonefile: \"\(workspace.path(z.file))\"\n"
        }
        try conf.write(toFile: "\(dir)/nsd.conf", atomically: true, encoding: .utf8)
        process = try BackgroundProcess(workspace, "nsd", ["-d", "-c", "\(dir)/nsd.conf"], readyMarker: "nsd started")
    }

    public var address: String { "127.0.0.1:\(port)" }

    public func stop() { process.stop() }
}
