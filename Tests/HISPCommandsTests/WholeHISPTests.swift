import Crypto
import DirectCore
import Foundation
import HISPApp
import HISPTesting
import Logging
import SMTPClient
import SQLiteStore
import Storage
import Testing
@testable import HISPCommands

/// A whole HISP built by the composition root, in this process, on ports the
/// system picks (port 0): a real mail client submits over TLS with AUTH, and
/// the message reaches another mailbox of the same HISP, in process.
@Suite struct WholeHISPTests {
    @Test func aWholeHISPRunsInProcessOnPortZero() async throws {
        let ws = try Workspace()
        let store = try await HISPStore.create(database: try await SQLiteDatabase.open(path: ws.path("hisp.sqlite"), create: true),
                                               material: .keyFile(SymmetricKey(size: .bits256), origin: "test key"), actor: "test")
        let alice = DirectAddress("alice@direct.whole.test")!, bob = DirectAddress("bob@direct.whole.test")!
        let password = "correct horse battery staple"
        _ = try await Provisioning.addDomain("direct.whole.test", published: DomainDNS(host: "hisp.direct.whole.test", ipv4: "127.0.0.1"),
                                             ca: nil, in: store)
        _ = try await Provisioning.addAddress(alice, passwordHash: try PasswordHash.make(password), in: store)
        _ = try await Provisioning.addAddress(bob, passwordHash: nil, in: store)
        var c = AppConfiguration()
        c.inbound = .init(listen: "127.0.0.1:0")
        c.submission = .init(listen: "127.0.0.1:0")
        c.dns = .init(listen: "127.0.0.1:0")
        var resolver = AppConfiguration.Resolver()
        resolver.servers = ["127.0.0.1:9"]
        c.resolver = resolver
        let (server, summary) = try await HISPServer.start(configuration: c, store: store, dataDirectory: ws.path("data"), fetcher: nil,
                                                           logger: Logger(label: "whole-hisp-test"))
        #expect(server.submission.port != 0 && server.inbound.port != 0 && summary.submission.hasSuffix(":\(server.submission.port)"))

        let message = Array("From: \(alice)\r\nTo: \(bob)\r\nSubject: In process\r\nMessage-ID: <whole@direct.whole.test>\r\n\r\nHello Bob.\r\n".utf8)
        let reply = try await SMTPClientConnection.withConnection(
            address: "127.0.0.1", port: server.submission.port, serverName: "hisp.direct.whole.test",
            configuration: SMTPClientConfiguration(heloName: "client.test", tls: SMTPClientTLS(verification: .none))
        ) { conn in
            try await conn.authenticate(user: alice.description, password: password)
            return try await conn.send(from: alice.description, to: [bob.description], message: message).replies[bob.description]
        }
        #expect(reply?.code == 250, "\(String(describing: reply))")

        let deadline = Date().addingTimeInterval(60)
        while try await server.mail.status(messageID: "<whole@direct.whole.test>").recipients.first?.state != .processed, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await server.mail.status(messageID: "<whole@direct.whole.test>").recipients.first?.state == .processed)
        #expect(try await store.folderStatus(mailbox: bob, folder: "INBOX").messages == 1)
        #expect(try await store.folderStatus(mailbox: alice, folder: "Sent").messages == 1)
        await server.shutdown(grace: .seconds(1))
        try await store.close()
    }
}
