import Foundation
import HISPTesting
import Testing

/// Direct mail read where a provider reads it: HISP A's user sends, HISP B's user is
/// in IMAP IDLE at B (Python's imaplib over implicit TLS), sees the message arrive,
/// and reads the message as the sender wrote it with B's Authentication-Results.
@Suite struct CrossHISPMailboxTests {
    static let idler = #"""
import imaplib, json, socket, ssl, sys
host, port, cafile, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
out = {}
b = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=300)
b.login(user, password)
out["select"] = b.select("INBOX")[1][0].decode()
tag = b._new_tag().decode()
b.send(f"{tag} IDLE\r\n".encode())
out["idle_start"] = b.readline().decode().strip()
print("IDLING", flush=True)
lines = []
while True:
    line = b.readline().decode().strip()
    lines.append(line)
    if line.endswith("EXISTS") or not line: break
out["idle"] = lines
b.send(b"DONE\r\n")
out["idle_done"] = b.readline().decode().strip()
typ, data = b.fetch("1", "(BODY.PEEK[HEADER] BODY.PEEK[TEXT] FLAGS)")
out["header"] = data[0][1].decode()
out["text"] = data[1][1].decode() if len(data) > 1 and isinstance(data[1], tuple) else ""
b.logout()
print("RESULT " + json.dumps(out), flush=True)
"""#

    @Test func aMessageFromHISPAIsSeenArrivingAndReadOverIMAPAtHISPB() async throws {
        let g = try await GatewayTests().pair("127.0.0.43", "127.0.0.44", tag: "imap")
        try g.configure("a")
        try g.configure("b", sections: ["imap": ["tls_listen": "127.0.0.44:2993"]])
        try await g.start("a")
        try await g.start("b")
        let a = g.nodes["a"]!, b = g.nodes["b"]!

        let ws = g.ws
        let idler = try await offThePool {
            try BackgroundProcess(ws, "python3", ["-c", Self.idler, b.ip, "2993", ws.path("tlsca.pem"), b.user, b.password],
                                  readyMarker: "IDLING", seconds: 120)
        }
        defer { idler.stop() }
        #expect(idler.log.contains("IDLING"))

        let id = "<imap-idle-1@\(a.domain)>"
        try await g.submit(from: "a", to: [b.user], subject: "Referral for Jane Roe", messageID: id)
        try await offThePool { idler.process.waitUntilExit() }
        let line = try #require(idler.log.split(separator: "\n").first { $0.hasPrefix("RESULT ") }, "the IMAP client said: \(idler.log)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(7).utf8)) as? [String: Any])

        #expect(out["select"] as? String == "0", "B's INBOX was empty before")
        #expect(out["idle_start"] as? String == "+ idling")
        #expect((out["idle"] as? [String])?.last == "* 1 EXISTS", "\(out["idle"] ?? "")")
        #expect((out["idle_done"] as? String)?.hasSuffix("OK IDLE terminated") == true)
        // The message as alice wrote it: its own headers, not the S/MIME wrapper's.
        let header = out["header"] as? String ?? ""
        #expect(header.contains("Subject: Referral for Jane Roe"), "\(header)")
        #expect(header.contains("Message-ID: \(id)"), "\(header)")
        #expect(!header.lowercased().contains("application/pkcs7-mime"), "\(header)")
        // B's verdict on it (RFC 8601, RFC 7281): signer, issuer, the anchor of B's domain.
        let unfolded = header.replacingOccurrences(of: "\r\n\t", with: " ")
        let results = try #require(unfolded.split(separator: "\r\n").first { $0.hasPrefix("Authentication-Results: hisp.\(b.domain);") },
                                   "no Authentication-Results from B: \(header)")
        #expect(results.contains("smime=pass"), "\(results)")
        #expect(results.contains("body.smime-identifier=\(a.user)"), "\(results)")
        #expect(results.contains("signature and trust checked for \(b.domain)"), "\(results)")
        #expect((out["text"] as? String)?.isEmpty == false)
    }
}
