import DirectCore
import Foundation
import SQLiteStore
import Storage
import Synchronization
import Testing
@testable import MailService

/// A clock the test moves by hand.
final class ManualClock: DirectCore.Clock {
    private let instant = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    func now() -> Date { instant.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { instant.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The shared authenticator's throttle, on a test clock (issue "Hold under attack", item 4).
@Suite struct SignInTests {
    let alice = DirectAddress("alice@direct.example.org")!
    let password = "correct horse battery staple"

    func authenticator(clock: ManualClock, policy: SignInPolicy = SignInPolicy()) async throws -> (Authenticator, PasswordVerifier, HISPStore, URL) {
        let dir = try MailFixture.scratchDirectory()
        let store = try await MailFixture.store(in: dir)
        _ = try await store.addDomain("direct.example.org", caCertificate: [1], caPrivateKey: [2], certificate: [3], privateKey: [4],
                                      dns: DomainDNS(host: "hisp.direct.example.org", ipv4: "192.0.2.1"))
        _ = try await store.addAddress(alice, certificate: [5], privateKey: [6, 7], passwordHash: try PasswordHash.make(password))
        // No remembered successes: every check the throttle lets through is a full scrypt.
        let verifier = PasswordVerifier(lifetime: 0)
        return (Authenticator(store: store, passwords: verifier, throttle: SignInThrottle(policy: policy, clock: clock)), verifier, store, dir)
    }

    @Test func theDelayGrowsAfterFiveFailuresAndThrottledAttemptsCostNoScrypt() async throws {
        let clock = ManualClock()
        let (auth, verifier, _, dir) = try await authenticator(clock: clock)
        defer { try? FileManager.default.removeItem(at: dir) }
        func attempt(_ p: String, from client: String = "192.0.2.7") async -> SignInResult {
            await auth.authenticate(user: alice.description, password: p, edge: "submission", client: client, session: "t")
        }
        for _ in 0..<5 { #expect(await attempt("wrong guess") == .failure(.wrongPassword)) }
        #expect(verifier.fullChecks == 5)
        // The sixth comes too soon (within 1 s of the fifth failure): refused before any scrypt, even when right.
        #expect(await attempt(password) == .failure(.throttledAccount))
        #expect(verifier.fullChecks == 5)
        clock.advance(1.01)
        #expect(await attempt("wrong again") == .failure(.wrongPassword))
        // Now 2 s: not after 1.5 s, after 2 s.
        clock.advance(1.5)
        #expect(await attempt(password) == .failure(.throttledAccount))
        clock.advance(0.51)
        #expect(await attempt(password) == .success(alice))
        #expect(verifier.fullChecks == 7)
    }

    @Test func tenFailuresInFifteenMinutesLockOutUntilTheLockoutEnds() async throws {
        let clock = ManualClock()
        let (auth, verifier, store, dir) = try await authenticator(clock: clock)
        defer { try? FileManager.default.removeItem(at: dir) }
        // Ten failures, each after its delay has passed, from addresses that change every time
        // (the account's count is what locks it).
        for i in 0..<10 {
            clock.advance(61)
            #expect(await auth.authenticate(user: alice.description, password: "guess \(i)", edge: "imap", client: "198.51.100.\(i)", session: "\(i)")
                    == .failure(.wrongPassword))
        }
        // Within the lockout (900 s by default), the right password is refused exactly as a wrong one, without scrypt.
        let checks = verifier.fullChecks
        clock.advance(61)
        let locked = await auth.authenticate(user: alice.description, password: password, edge: "imap", client: "203.0.113.1", session: "x")
        #expect(locked == .failure(.throttledAccount))
        #expect(locked.address == nil)
        #expect(verifier.fullChecks == checks)
        clock.advance(900)
        #expect(await auth.authenticate(user: alice.description, password: password, edge: "imap", client: "203.0.113.1", session: "y") == .success(alice))
        // Every attempt is audited with its edge and client address.
        let events = try await store.auditEvents(limit: 100)
        #expect(events.filter { $0.event.action == "auth" && $0.event.object == "imap" }.count == 12)
        #expect(events.contains { $0.event.detail.contains("from 203.0.113.1") && $0.event.detail.contains("account throttled") })
        #expect(events.contains { $0.event.outcome == "ok" && $0.event.detail.contains("from 203.0.113.1") })
    }

    @Test func oneClientAddressGuessingManyAccountsIsThrottledToo() async throws {
        let clock = ManualClock()
        let (auth, _, _, dir) = try await authenticator(clock: clock)
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 0..<5 {
            #expect(await auth.authenticate(user: "user\(i)@direct.example.org", password: "x", edge: "submission", client: "192.0.2.99", session: "s")
                    == .failure(.unknownAccount))
        }
        // A sixth account from the same address: held back by the address's count; another address goes through.
        #expect(await auth.authenticate(user: alice.description, password: password, edge: "submission", client: "192.0.2.99", session: "s")
                == .failure(.throttledAddress))
        #expect(await auth.authenticate(user: alice.description, password: password, edge: "submission", client: "192.0.2.100", session: "s")
                == .success(alice))
    }

    @Test func theThrottleTableIsBounded() {
        let throttle = SignInThrottle(clock: ManualClock(), capacity: 100)
        for i in 0..<1000 { throttle.record(account: "u\(i)@x.example", address: "10.0.\(i / 250).\(i % 250)", success: false) }
        #expect(throttle.rememberedKeys <= 100)
    }
}
