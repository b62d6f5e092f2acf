import Foundation

/// OpenLDAP's slapd (from Debian) on a loopback port with an mdb database
/// loaded from entries the test gives: the real LDAP peer.
public final class SlapdServer: @unchecked Sendable {
    public let port: Int
    let process: BackgroundProcess

    /// One LDAP entry: its DN and attributes (values as text, or as bytes for `;binary` and certificates).
    public struct Entry: Sendable {
        public var dn: String
        public var attributes: [(String, [UInt8])]
        public init(dn: String, attributes: [(String, [UInt8])]) {
            self.dn = dn
            self.attributes = attributes
        }
    }

    /// An inetOrgPerson with `mail` and certificates under `attribute` (default `userCertificate;binary`).
    public static func person(_ cn: String, suffix: String, mail: String, certificates: [[UInt8]],
                              attribute: String = "userCertificate;binary") -> Entry {
        Entry(dn: "cn=\(cn),\(suffix)",
              attributes: [("objectClass", Array("inetOrgPerson".utf8)), ("cn", Array(cn.utf8)), ("sn", Array(cn.utf8)),
                           ("mail", Array(mail.utf8))] + certificates.map { (attribute, $0) })
    }

    public init(_ workspace: Workspace, suffix: String = "dc=example,dc=test", entries: [Entry]) throws {
        port = try OCSPTestResponder.freePort(workspace)
        let dir = workspace.path("slapd-\(port)")
        try FileManager.default.createDirectory(atPath: "\(dir)/db", withIntermediateDirectories: true)
        let conf = """
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            pidfile \(dir)/slapd.pid
            moduleload back_mdb
            database mdb
            suffix "\(suffix)"
            rootdn "cn=admin,\(suffix)"
            directory \(dir)/db
            access to * by * read

            """
        try conf.write(toFile: "\(dir)/slapd.conf", atomically: true, encoding: .utf8)
        let dc = suffix.split(separator: ",").first?.split(separator: "=").last.map(String.init) ?? "example"
        var ldif = "dn: \(suffix)\nobjectClass: dcObject\nobjectClass: organization\ndc: \(dc)\no: \(dc)\n\n"
        for e in entries {
            ldif += "dn: \(e.dn)\n"
            for (name, value) in e.attributes { ldif += "\(name):: \(Data(value).base64EncodedString())\n" }
            ldif += "\n"
        }
        try ldif.write(toFile: "\(dir)/data.ldif", atomically: true, encoding: .utf8)
        try workspace.mustRun("slapadd", ["-f", "\(dir)/slapd.conf", "-l", "\(dir)/data.ldif"])
        process = try BackgroundProcess(workspace, "slapd", ["-f", "\(dir)/slapd.conf", "-h", "ldap://127.0.0.1:\(port)/", "-d", "256"],
                                        readyMarker: "slapd starting")
    }

    public func stop() { process.stop() }
}
