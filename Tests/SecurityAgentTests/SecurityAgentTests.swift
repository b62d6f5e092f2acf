import CertificateAuthority
import CryptographicMessageSyntax
import Crypto
import CryptoExtras
import DirectCore
import DirectTrust
import Foundation
import HISPTesting
import InternetMessage
import SMIME
import SwiftASN1
import Synchronization
import Testing
import X509
@testable import SecurityAgent

/// Keys in memory, by owner.
final class MemoryKeys: KeyStore {
    private let entries = Mutex<[KeyOwner: (certificate: [UInt8], privateKeyPKCS8: [UInt8])]>([:])
    func set(_ owner: KeyOwner, _ value: (certificate: [UInt8], privateKeyPKCS8: [UInt8])?) { entries.withLock { $0[owner] = value } }
    func credential(for owner: KeyOwner) async throws -> (certificate: [UInt8], privateKeyPKCS8: [UInt8]) {
        guard let e = entries.withLock({ $0[owner] }) else { throw AgentError(.noKey, "no key for \(owner) in this test") }
        return e
    }
}

/// A Direct CA and certificates it issues, made at test time.
struct PKI {
    let issuer: Issuer
    let anchor: Certificate

    init(_ name: String) throws {
        let key = Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        let now = Date()
        let ca = try CertificateAuthority.createCA(subject: try DistinguishedName { CommonName(name) }, key: key,
                                                   notBefore: now - 300, notAfter: now + 86_400)
        issuer = try Issuer(certificate: ca, key: key)
        anchor = ca
    }

    func issue(_ binding: CertificateBinding) throws -> (certificate: [UInt8], privateKeyPKCS8: [UInt8], summary: CertificateSummary, identity: SMIMEIdentity) {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let now = Date()
        let cert = try CertificateAuthority.issue(binding: binding, publicKey: Certificate.PublicKey(rsa.publicKey), usage: .both,
                                                  notBefore: now - 300, notAfter: now + 86_400, issuer: issuer)
        var s = DER.Serializer()
        try s.serialize(cert)
        let key = try LocalPrivateKey(rsa: rsa)
        let summary = try CertificateSummary(der: s.serializedBytes)
        return (s.serializedBytes, key.pkcs8DER, summary, try SMIMEIdentity(certificate: summary, key: key))
    }
}

/// The Direct security and trust agent alone: every inbound refusal names its
/// check, and every outbound rule holds, with no socket and no store.
@Suite struct SecurityAgentTests {
    let alice = DirectAddress("alice@a.example")!
    let bob = DirectAddress("bob@b.example")!
    let keys = MemoryKeys()
    let pkiA: PKI
    let pkiB: PKI
    let aliceID: (certificate: [UInt8], privateKeyPKCS8: [UInt8], summary: CertificateSummary, identity: SMIMEIdentity)
    let bobID: (certificate: [UInt8], privateKeyPKCS8: [UInt8], summary: CertificateSummary, identity: SMIMEIdentity)
    let agent: SecurityAgent

    init() throws {
        pkiA = try PKI("a.example Direct CA")
        pkiB = try PKI("b.example Direct CA")
        aliceID = try pkiA.issue(.address(alice))
        bobID = try pkiB.issue(.address(bob))
        keys.set(.address(alice), (aliceID.certificate, aliceID.privateKeyPKCS8))
        keys.set(.address(bob), (bobID.certificate, bobID.privateKeyPKCS8))
        agent = SecurityAgent(keys: keys)
    }

    func message(from: String = "alice@a.example", body: String = "Patient Jane Roe, DOB 1970-01-01.") -> [UInt8] {
        Array("From: \(from)\r\nTo: bob@b.example\r\nSubject: Referral\r\nMessage-ID: <m1@a.example>\r\n\r\n\(body)\r\n".utf8)
    }

    /// Bob's side trusts A's CA for incoming mail.
    var bobTrust: @Sendable (String) async -> DirectTrust {
        let anchor = pkiA.anchor
        return { _ in DirectTrust(anchors: TrustAnchors([TrustAnchor(certificate: anchor, source: "A's CA")])) }
    }

    func incoming(_ bytes: [UInt8], trust: (@Sendable (String) async -> DirectTrust)? = nil) async -> Result<SecurityAgent.Incoming, AgentError> {
        do {
            return .success(try await agent.processIncoming(bytes, recipients: [bob], trust: trust ?? bobTrust))
        } catch let e as AgentError {
            return .failure(e)
        } catch {
            return .failure(AgentError(.format, "not an AgentError: \(error)"))
        }
    }

    func refusal(_ bytes: [UInt8], trust: (@Sendable (String) async -> DirectTrust)? = nil) async -> AgentError? {
        if case .failure(let e) = await incoming(bytes, trust: trust) { return e }
        return nil
    }

    var bobCertificate: Certificate { get throws { try Certificate(derEncoded: bobID.certificate) } }

    // MARK: outbound

    @Test func outgoingIsWrappedSignedAndEncryptedAndOpensAtTheOtherEnd() async throws {
        let original = message()
        let wire = try await agent.processOutgoing(original, sender: alice, recipients: [try bobCertificate])
        let text = String(decoding: wire, as: UTF8.self)
        #expect(text.contains("application/pkcs7-mime") && !text.contains("Patient Jane Roe"))
        guard case .success(let incoming) = await incoming(wire) else { Issue.record("refused"); return }
        #expect(incoming.message == original)
        #expect(incoming.sender == alice)
        #expect(incoming.decryptedBy == .address(bob))
    }

    @Test func outgoingNeedsARecipientAndASigningKeyAndFallsBackToTheDomainKey() async throws {
        await #expect(throws: AgentError(.trust, "no trusted recipient certificate")) {
            _ = try await agent.processOutgoing(message(), sender: alice, recipients: [])
        }
        let carol = DirectAddress("carol@a.example")!
        let noKey = await #expect(throws: AgentError.self) {
            _ = try await agent.processOutgoing(message(from: carol.description), sender: carol, recipients: [try bobCertificate])
        }
        #expect(noKey?.check == .noKey)
        // With the domain's key (domain-bound certificate), an address without its own key signs as the domain.
        let domain = try pkiA.issue(.domain("a.example"))
        keys.set(.domain("a.example"), (domain.certificate, domain.privateKeyPKCS8))
        let wire = try await agent.processOutgoing(message(from: carol.description), sender: carol, recipients: [try bobCertificate])
        guard case .success(let incoming) = await incoming(wire) else { Issue.record("refused"); return }
        #expect(incoming.sender == carol)
    }

    // MARK: inbound refusals, one check each

    @Test func aPlainOrSignedOnlyMessageIsNotEncrypted() async throws {
        #expect(await refusal(message())?.check == .notEncrypted)
        let signedOnly = try agent.smime.sign(message(), identity: aliceID.identity)
        #expect(await refusal(signedOnly)?.check == .notEncrypted)
        let opaque = try agent.smime.sign(message(), identity: aliceID.identity, opaque: true)
        #expect(await refusal(opaque)?.check == .notEncrypted)
    }

    @Test func anEncryptedButUnsignedMessageFailsTheSignatureCheck() async throws {
        let unsigned = try agent.smime.encrypt(message(), to: [bobID.summary])
        #expect(await refusal(unsigned)?.check == .signature)
    }

    @Test func aMessageForSomeoneElseFailsDecryption() async throws {
        let carol = try pkiB.issue(.address(DirectAddress("carol@b.example")!))
        let wire = try agent.smime.signAndEncrypt(message(), identity: aliceID.identity, to: [carol.summary])
        #expect(await refusal(wire)?.check == .decryption)
    }

    @Test func aSignerNotAnchoredForThisDomainIsUntrusted() async throws {
        let wire = try await agent.processOutgoing(message(), sender: alice, recipients: [try bobCertificate])
        // B trusts only its own CA, not A's.
        let anchor = pkiB.anchor
        let own: @Sendable (String) async -> DirectTrust = { _ in DirectTrust(anchors: TrustAnchors([TrustAnchor(certificate: anchor, source: "B's CA")])) }
        #expect(await refusal(wire, trust: own)?.check == .trust)
        // An anchor for outgoing mail only does not make a signer trusted for incoming mail.
        let a = pkiA.anchor
        let outgoingOnly: @Sendable (String) async -> DirectTrust = { _ in
            DirectTrust(anchors: TrustAnchors([TrustAnchor(certificate: a, directions: [.outgoing], source: "A's CA, outgoing")]))
        }
        #expect(await refusal(wire, trust: outgoingOnly)?.check == .trust)
    }

    @Test func aSignerNotBoundToTheFromAddressIsRefused() async throws {
        // Mallory has a real certificate from A's CA, and signs a message From Alice.
        let mallory = try pkiA.issue(.address(DirectAddress("mallory@a.example")!))
        let forged = try agent.smime.signAndEncrypt(message(), identity: mallory.identity, to: [bobID.summary])
        let e = await refusal(forged)
        #expect(e?.check == .senderBinding, "\(String(describing: e))")
    }

    @Test func anOuterFromThatDiffersFromTheSignedOneIsRefused() async throws {
        let wire = try await agent.processOutgoing(message(), sender: alice, recipients: [try bobCertificate])
        var text = String(decoding: wire, as: UTF8.self)
        text = text.replacingOccurrences(of: "From: alice@a.example", with: "From: ceo@a.example")
        let e = await refusal(Array(text.utf8))
        #expect(e?.check == .senderBinding && e?.detail.contains("differs") == true, "\(String(describing: e))")
    }

    @Test func tamperedSignedContentFailsTheSignature() async throws {
        let signed = String(decoding: try agent.smime.sign(message(), identity: aliceID.identity), as: UTF8.self)
        // One word of the signed (wrapped) content changes after signing.
        let tampered = signed.replacingOccurrences(of: "Jane Roe", with: "John Roe")
        #expect(tampered != signed)
        let wire = try agent.smime.encrypt(Array(tampered.utf8), to: [bobID.summary])
        #expect(await refusal(wire)?.check == .signature)
    }

    @Test func aRepeatedFromIsAFormatRefusal() async throws {
        let twice = Array("From: alice@a.example\r\nFrom: mallory@a.example\r\nTo: bob@b.example\r\nSubject: x\r\n\r\nx\r\n".utf8)
        let wire = try agent.smime.signAndEncrypt(twice, identity: aliceID.identity, to: [bobID.summary])
        let e = await refusal(wire)
        #expect(e?.check == .format && e?.refusal.enhanced == "5.6.0")
    }

    @Test func weakAlgorithmsFromAnotherImplementationAreRefused() async throws {
        // OpenSSL, as a peer that still allows them: a SHA-1 signature, and 3DES encryption.
        let ws = try Workspace()
        _ = try ws.write("alice.pem", "-----BEGIN CERTIFICATE-----\n" + Data(aliceID.certificate).base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE-----\n")
        _ = try ws.write("alice.key", "-----BEGIN PRIVATE KEY-----\n" + Data(aliceID.privateKeyPKCS8).base64EncodedString(options: .lineLength64Characters) + "\n-----END PRIVATE KEY-----\n")
        _ = try ws.write("bob.pem", "-----BEGIN CERTIFICATE-----\n" + Data(bobID.certificate).base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE-----\n")
        _ = try ws.write("msg.eml", String(decoding: message(), as: UTF8.self))
        _ = try await ws.mustRun("openssl", ["smime", "-sign", "-md", "sha1", "-signer", "alice.pem", "-inkey", "alice.key", "-in", "msg.eml", "-out", "sha1.eml"])
        _ = try await ws.mustRun("openssl", ["smime", "-encrypt", "-aes256", "-in", "sha1.eml", "-out", "sha1-enc.eml", "bob.pem"])
        let sha1 = await refusal(Array(try ws.read("sha1-enc.eml")))
        #expect(sha1?.check == .signature && sha1?.detail.contains("SHA-1") == true, "\(String(describing: sha1))")

        _ = try await ws.mustRun("openssl", ["smime", "-sign", "-md", "sha256", "-signer", "alice.pem", "-inkey", "alice.key", "-in", "msg.eml", "-out", "signed.eml"])
        _ = try await ws.mustRun("openssl", ["smime", "-encrypt", "-des3", "-in", "signed.eml", "-out", "des3.eml", "bob.pem"])
        let des3 = await refusal(Array(try ws.read("des3.eml")))
        #expect(des3?.check == .decryption && des3?.detail.lowercased().contains("refused") == true, "\(String(describing: des3))")

        // The same message with current algorithms passes: the refusals above are the algorithms'.
        _ = try await ws.mustRun("openssl", ["smime", "-encrypt", "-aes256", "-in", "signed.eml", "-out", "good.eml", "bob.pem"])
        if case .failure(let e) = await incoming(Array(try ws.read("good.eml"))) { Issue.record("refused: \(e)") }
    }
}
