import Foundation
import Storage
import Testing

/// A verified submission password is remembered for a while, in memory, so a
/// client connecting per message does not pay scrypt at every AUTH; nothing
/// but a verified success for the same stored hash is ever taken from memory.
@Suite struct PasswordVerifierTests {
    @Test func aVerifiedPasswordIsRememberedUntilItsLifetimeEnds() async throws {
        let stored = try PasswordHash.make("correct horse battery")
        let verifier = PasswordVerifier(lifetime: 60)
        let t = Date()
        #expect(verifier.verify("correct horse battery", for: "alice@a.example", against: stored, now: t))
        #expect(verifier.fullChecks == 1)
        #expect(verifier.verify("correct horse battery", for: "ALICE@a.example", against: stored, now: t.addingTimeInterval(59)))
        #expect(verifier.fullChecks == 1, "the second AUTH within the lifetime is answered from memory")
        #expect(verifier.verify("correct horse battery", for: "alice@a.example", against: stored, now: t.addingTimeInterval(61)))
        #expect(verifier.fullChecks == 2, "after the lifetime scrypt runs again")
    }

    @Test func wrongPasswordsAreNeverRememberedAndAlwaysFail() async throws {
        let stored = try PasswordHash.make("correct horse battery")
        let verifier = PasswordVerifier(lifetime: 60)
        #expect(verifier.verify("correct horse battery", for: "alice@a.example", against: stored))
        #expect(!verifier.verify("wrong horse battery", for: "alice@a.example", against: stored))
        #expect(!verifier.verify("wrong horse battery", for: "alice@a.example", against: stored))
        #expect(verifier.fullChecks == 3, "each wrong guess costs a full scrypt")
    }

    @Test func aChangedPasswordOrAnotherMailboxIsCheckedAfresh() async throws {
        let old = try PasswordHash.make("correct horse battery")
        let new = try PasswordHash.make("another long password")
        let verifier = PasswordVerifier(lifetime: 60)
        #expect(verifier.verify("correct horse battery", for: "alice@a.example", against: old))
        // The password was changed: the old one no longer works, though it was remembered.
        #expect(!verifier.verify("correct horse battery", for: "alice@a.example", against: new))
        #expect(verifier.verify("another long password", for: "alice@a.example", against: new))
        // Another mailbox with the same stored hash and password is not answered from alice's entry.
        let before = verifier.fullChecks
        #expect(verifier.verify("another long password", for: "bob@a.example", against: new))
        #expect(verifier.fullChecks == before + 1)
    }

    @Test func aLifetimeOfZeroRemembersNothing() async throws {
        let stored = try PasswordHash.make("correct horse battery")
        let verifier = PasswordVerifier(lifetime: 0)
        #expect(verifier.verify("correct horse battery", for: "alice@a.example", against: stored))
        #expect(verifier.verify("correct horse battery", for: "alice@a.example", against: stored))
        #expect(verifier.fullChecks == 2)
    }
}
