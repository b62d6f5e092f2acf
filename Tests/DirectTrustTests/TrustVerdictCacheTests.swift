import CryptographicMessageSyntax
import DirectTrust
import Foundation
import HISPTesting
import Testing
import X509

/// Trusted verdicts kept for a while: reused for the same question inside
/// their lifetime, never past a certificate's validity, never for a
/// refusal, and never for a different binding, purpose or local domain.
@Suite struct TrustVerdictCacheTests {
    static let anchor = Result { try MemoryIdentity.make("anchor@direct.a.example") }
    static let stranger = Result { try MemoryIdentity.make("stranger@direct.x.example") }

    func certificate(_ r: Result<MemoryIdentity, Error>) throws -> Certificate {
        try Certificate(derEncoded: try r.get().summary.der)
    }

    /// The self-signed test identity is its own anchor.
    func trust(lifetime: Duration) throws -> DirectTrust {
        DirectTrust(anchors: TrustAnchors([TrustAnchor(certificate: try certificate(Self.anchor), source: "test")]),
                    verdictLifetime: lifetime)
    }

    func request(_ c: Certificate, at time: Date, purpose: TrustPurpose = .signing, domain: String = TrustAnchors.everyDomain) -> TrustRequest {
        TrustRequest(certificate: c, binding: nil, purpose: purpose, direction: .incoming, localDomain: domain, time: time)
    }

    @Test func aTrustedVerdictIsKeptAndReused() async throws {
        let trust = try trust(lifetime: .seconds(60))
        let leaf = try certificate(Self.anchor)
        let now = Date()
        let first = await trust.evaluate(request(leaf, at: now))
        #expect(first.isTrusted, "\(first.reason ?? "")")
        #expect(trust.verdicts.count == 1)
        let second = await trust.evaluate(request(leaf, at: now + 30))
        #expect(second.isTrusted)
        #expect(second.checks == first.checks)
        #expect(trust.verdicts.count == 1)
    }

    @Test func aKeptVerdictIsNotUsedPastTheCertificatesValidity() async throws {
        // A lifetime longer than the certificate has left (it expires in an hour).
        let trust = try trust(lifetime: .seconds(4 * 3600))
        let leaf = try certificate(Self.anchor)
        let now = Date()
        #expect(await trust.evaluate(request(leaf, at: now)).isTrusted)
        let later = await trust.evaluate(request(leaf, at: leaf.notValidAfter + 60))
        #expect(!later.isTrusted)
        #expect(later.checks.contains { $0.name == "validity" && $0.status == .failed })
    }

    @Test func aKeptVerdictIsNotUsedAfterItsLifetime() async throws {
        let trust = try trust(lifetime: .seconds(1))
        let leaf = try certificate(Self.anchor)
        let now = Date()
        #expect(await trust.evaluate(request(leaf, at: now)).isTrusted)
        // Evaluated afresh at a time before the certificate was valid: refused,
        // which a reused verdict would have hidden.
        let early = await trust.evaluate(request(leaf, at: leaf.notValidBefore - 60))
        #expect(!early.isTrusted)
        #expect(early.checks.contains { $0.name == "validity" && $0.status == .failed })
    }

    @Test func refusalsAreNotKept() async throws {
        let trust = try trust(lifetime: .seconds(60))
        let verdict = await trust.evaluate(request(try certificate(Self.stranger), at: Date()))
        #expect(!verdict.isTrusted)
        #expect(trust.verdicts.count == 0)
    }

    @Test func aDifferentQuestionIsEvaluatedOnItsOwn() async throws {
        let trust = try trust(lifetime: .seconds(60))
        let leaf = try certificate(Self.anchor)
        let now = Date()
        #expect(await trust.evaluate(request(leaf, at: now, purpose: .signing)).isTrusted)
        #expect(await trust.evaluate(request(leaf, at: now, purpose: .encryption)).isTrusted)
        #expect(await trust.evaluate(request(leaf, at: now, domain: "direct.a.example")).isTrusted)
        #expect(trust.verdicts.count == 3)
    }

    @Test func aLifetimeOfZeroKeepsNothing() async throws {
        let trust = try trust(lifetime: .zero)
        #expect(await trust.evaluate(request(try certificate(Self.anchor), at: Date())).isTrusted)
        #expect(trust.verdicts.count == 0)
    }
}
