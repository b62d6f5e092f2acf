import CryptographicMessageSyntax
import DirectTrust
import Foundation
import HISPTesting
import InternetMessage
import SwiftASN1
import Testing
@testable import SMIME

@Suite struct SMIMEPackagingTests {
    static let alice = Result { try MemoryIdentity.make("alice@direct.a.example") }
    static let bob = Result { try MemoryIdentity.make("bob@direct.b.example") }

    func identity(_ r: Result<MemoryIdentity, Error>) throws -> SMIMEIdentity {
        let m = try r.get()
        return try SMIMEIdentity(certificate: m.summary, key: m.key)
    }

    func validator() throws -> SignerTrust {
        // Self-signed test identities are their own anchors.
        let anchors = try [Self.alice.get().summary, Self.bob.get().summary].map {
            TrustAnchor(certificate: try CertificateLoading.x509($0), source: "test")
        }
        return SignerTrust(trust: DirectTrust(anchors: TrustAnchors(anchors)))
    }

    @Test(arguments: [(false, true), (true, true), (false, false), (true, false)])
    func signVerifyGivesBackTheOriginal(opaque: Bool, wrap: Bool) async throws {
        let original = sampleMessage()
        let signed = try SMIME().sign(original, identity: identity(Self.alice), opaque: opaque, wrap: wrap)
        let text = String(decoding: signed, as: UTF8.self)
        #expect(text.contains(opaque ? "smime-type=signed-data" : "multipart/signed"))
        #expect(text.contains("Message-ID:"))
        let verified = try await SMIME().verify(signed, trust: validator())
        #expect(verified.wasWrapped == wrap)
        if wrap {
            #expect(verified.content == original)
        } else {
            let e = try MIMEEntity(parsing: verified.content)
            #expect(e.headers["Subject"] == "Referral for Jane Roe")
            #expect(String(decoding: e.bodyBytes, as: UTF8.self).hasPrefix("Patient Jane Roe"))
        }
    }

    @Test func wrappingKeepsOnlyRoutingHeadersOutside() async throws {
        var msg = sampleMessage()
        msg.insert(contentsOf: Array("X-Patient-ID: 12345\r\n".utf8), at: 0)
        let encrypted = try SMIME().encrypt(msg, to: [Self.bob.get().summary])
        let outer = try MIMEEntity(parsing: encrypted)
        #expect(outer.headers["X-Patient-ID"] == nil)
        for h in ["From", "To", "Date", "Message-ID", "Subject"] { #expect(outer.headers[h] != nil) }
        let (inner, _) = try SMIME().decrypt(encrypted, identity: identity(Self.bob))
        let entity = try MIMEEntity(parsing: inner)
        #expect(entity.contentType.mimeType == "message/rfc822")
        #expect(Array(entity.bodyBytes) == msg)
    }

    @Test func encryptingASignedMessageDoesNotWrapAgain() async throws {
        let signed = try SMIME().sign(sampleMessage(), identity: identity(Self.alice))
        let encrypted = try SMIME().encrypt(signed, to: [Self.bob.get().summary])
        let (inner, _) = try SMIME().decrypt(encrypted, identity: identity(Self.bob))
        #expect(try MIMEEntity(parsing: inner).contentType.mimeType == "multipart/signed")
        let verified = try await SMIME().verify(inner, trust: validator())
        #expect(verified.wasWrapped)
    }

    @Test func signAndEncryptWritesWhatSignThenEncryptWrites() async throws {
        let msg = sampleMessage()
        let time = Date(timeIntervalSince1970: 1_795_000_000)
        let smime = SMIME()
        let bob = try Self.bob.get().summary
        let one = try smime.signAndEncrypt(msg, identity: identity(Self.alice), to: [bob], signingTime: time)
        let two = try smime.encrypt(try smime.sign(msg, identity: identity(Self.alice), signingTime: time), to: [bob], wrap: false)
        func fields(_ e: MIMEEntity) -> [String] { e.headers.fields.map { "\($0.name): \($0.value)" } }
        #expect(fields(try MIMEEntity(parsing: one)) == fields(try MIMEEntity(parsing: two)))
        // Inside: the same signed entity but for its boundary and signature bytes.
        let inner1 = try MIMEEntity(parsing: try smime.decrypt(one, identity: identity(Self.bob)).entity)
        let inner2 = try MIMEEntity(parsing: try smime.decrypt(two, identity: identity(Self.bob)).entity)
        #expect(inner1.headers.fields.map(\.name) == inner2.headers.fields.map(\.name))
        #expect(inner1.contentType.mimeType == "multipart/signed")
        #expect(inner1.contentType[parameter: "micalg"] == inner2.contentType[parameter: "micalg"])
        #expect(inner1.parts.count == 2 && inner2.parts.count == 2)
        #expect(inner1.parts[0].bytes == inner2.parts[0].bytes)
        let verified = try await smime.verify(try smime.decrypt(one, identity: identity(Self.bob)).entity, trust: validator())
        #expect(verified.wasWrapped)
        #expect(verified.content == msg)
    }

    /// What the gateway sends, read by OpenSSL: decrypted, then verified.
    @Test func opensslDecryptsAndVerifiesWhatSignAndEncryptWrites() async throws {
        let ws = try Workspace()
        let alice = try Self.alice.get(), bob = try Self.bob.get()
        _ = try ws.write("alice.pem", PEMDocument(type: "CERTIFICATE", derBytes: alice.summary.der).pemString + "\n")
        _ = try ws.write("bob.pem", PEMDocument(type: "CERTIFICATE", derBytes: bob.summary.der).pemString + "\n")
        _ = try ws.write("bob.key", PEMDocument(type: "PRIVATE KEY", derBytes: bob.key.pkcs8DER).pemString + "\n")
        let msg = sampleMessage()
        _ = try ws.write("e.eml", try SMIME().signAndEncrypt(msg, identity: identity(Self.alice), to: [bob.summary]))
        try await ws.mustRun("openssl", ["cms", "-decrypt", "-in", "e.eml", "-recip", "bob.pem", "-inkey", "bob.key", "-out", "d.eml"])
        try await ws.mustRun("openssl", ["cms", "-verify", "-in", "d.eml", "-CAfile", "alice.pem", "-out", "o.eml"])
        let wrapped = try MIMEEntity(parsing: LineEndings.canonicalize(try ws.read("o.eml")))
        #expect(wrapped.contentType.mimeType == "message/rfc822")
        #expect(Array(wrapped.bodyBytes) == msg)
    }

    @Test func aKeyThatIsNotTheCertificatesIsRefused() async throws {
        #expect(throws: SMIMEError.keyDoesNotMatchCertificate) {
            try SMIMEIdentity(certificate: Self.alice.get().summary, key: Self.bob.get().key)
        }
    }

    @Test func verifyingAnEncryptedMessageSaysToDecryptFirst() async throws {
        let encrypted = try SMIME().encrypt(sampleMessage(), to: [Self.bob.get().summary])
        await #expect(throws: SMIMEError.self) { try await SMIME().verify(encrypted, trust: validator()) }
    }
}
