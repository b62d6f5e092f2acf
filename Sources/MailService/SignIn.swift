import DirectCore
import Foundation
import Storage

/// When password guessing is slowed and stopped (every edge that takes a password).
public struct SignInPolicy: Sendable, Equatable {
    /// After this many failures (per account, and per client address) within
    /// `window`, each further attempt must wait: 1 s, then 2, 4, ... up to `maxDelay`.
    public var delayAfterFailures: Int
    /// This many failures within `window` lock the account (or address) out for `lockout`.
    public var lockoutFailures: Int
    public var window: TimeInterval
    public var lockout: TimeInterval
    public var maxDelay: TimeInterval

    public init(delayAfterFailures: Int = 5, lockoutFailures: Int = 10, window: TimeInterval = 900, lockout: TimeInterval = 900,
                maxDelay: TimeInterval = 60) {
        self.delayAfterFailures = max(1, delayAfterFailures)
        self.lockoutFailures = max(1, lockoutFailures)
        self.window = window
        self.lockout = lockout
        self.maxDelay = maxDelay
    }
}

/// Failed sign-ins counted per account and per client address, in memory.
/// An attempt that is throttled is refused before any password is checked, so
/// guessing costs the guesser time and the HISP nothing. Bounded: at most
/// `capacity` accounts and addresses are remembered (each remembered entry
/// cost its guesser a full scrypt; when full, the table starts afresh).
public final class SignInThrottle: Sendable {
    public let policy: SignInPolicy
    let clock: any Clock

    struct Record: Sendable {
        /// Times of the failures within the window, oldest first (at most `lockoutFailures`).
        var failures: [Date] = []
        var notBefore: Date = .distantPast
    }

    public enum Key: Hashable, Sendable {
        case account(String)
        case address(String)
    }

    private let records: BoundedCache<Key, Record>

    public init(policy: SignInPolicy = SignInPolicy(), clock: any Clock = SystemClock(), capacity: Int = 100_000) {
        self.policy = policy
        self.clock = clock
        records = BoundedCache(capacity: capacity)
    }

    /// Whether an attempt for `account` from `address` may be checked now; when not,
    /// which key holds it back (for the audit, never for the client).
    public func admit(account: String, address: String) -> Key? {
        let now = clock.now()
        for key in Self.keys(account: account, address: address) {
            if let r = records.value(key), r.notBefore > now { return key }
        }
        return nil
    }

    /// A checked attempt's result. A success clears the account's failures (not the
    /// address's: one good password must not reset the guessing of others from there).
    public func record(account: String, address: String, success: Bool) {
        let now = clock.now()
        if success {
            records.set(.account(Self.normalized(account)), nil)
            return
        }
        for key in Self.keys(account: account, address: address) {
            records.update(key) { entry in
                var r = entry ?? Record()
                r.failures.removeAll { now.timeIntervalSince($0) >= policy.window }
                r.failures.append(now)
                if r.failures.count > policy.lockoutFailures { r.failures.removeFirst(r.failures.count - policy.lockoutFailures) }
                let n = r.failures.count
                if n >= policy.lockoutFailures {
                    r.notBefore = now.addingTimeInterval(policy.lockout)
                } else if n >= policy.delayAfterFailures {
                    let doublings = Double(n - policy.delayAfterFailures)
                    r.notBefore = now.addingTimeInterval(min(policy.maxDelay, pow(2, doublings)))
                }
                entry = r
            }
        }
    }

    /// How many accounts and addresses are remembered now (bounded by the capacity).
    public var rememberedKeys: Int { records.count }

    static func normalized(_ account: String) -> String { account.lowercased() }

    static func keys(account: String, address: String) -> [Key] {
        [.account(normalized(account)), .address(address)]
    }
}

/// What a sign-in attempt came to. The edge answers both failures the same way
/// (no account enumeration); the reason is for the audit trail.
public enum SignInResult: Sendable, Equatable {
    case success(DirectAddress)
    case failure(SignInFailure)

    public var address: DirectAddress? {
        if case .success(let a) = self { return a }
        return nil
    }
}

public enum SignInFailure: String, Sendable, Equatable {
    case unknownAccount = "unknown account"
    case wrongPassword = "wrong password"
    case throttledAccount = "account throttled"
    case throttledAddress = "client address throttled"
    case storeUnavailable = "store unavailable"
}

/// The one authenticator for every edge (SMTP AUTH now): scrypt passwords from
/// the store, the throttle before them, and an audit event for every attempt
/// with the edge and the client address.
public final class Authenticator: Sendable {
    let store: HISPStore
    let passwords: PasswordVerifier
    public let throttle: SignInThrottle
    /// A hash no password matches, checked for unknown accounts so that they cost
    /// the same time as known ones.
    private let decoy: String

    public init(store: HISPStore, passwords: PasswordVerifier, throttle: SignInThrottle) {
        self.store = store
        self.passwords = passwords
        self.throttle = throttle
        decoy = (try? PasswordHash.make(Envelope.randomBytes(24).map { String(format: "%02x", $0) }.joined())) ?? ""
    }

    /// Checks `password` for `user` arriving over `edge` (e.g. "submission") from `client`.
    public func authenticate(user: String, password: String, edge: String, client: String, session: String) async -> SignInResult {
        let result = await check(user: user, password: password, client: client)
        let outcome: String
        var detail = "user \(SafeText.escape(String(user.prefix(320)))) from \(client), session \(session)"
        switch result {
        case .success:
            outcome = "ok"
        case .failure(let why):
            outcome = "failed"
            detail += ": \(why.rawValue)"
        }
        // HIPAA 164.312(b): every attempt, with the edge and the client address.
        try? await store.recordEvent("auth", object: edge, outcome: outcome, detail: detail)
        return result
    }

    private func check(user: String, password: String, client: String) async -> SignInResult {
        if let held = throttle.admit(account: user, address: client) {
            // Refused before any work: no store read, no scrypt.
            if case .account = held { return .failure(.throttledAccount) }
            return .failure(.throttledAddress)
        }
        var hash: String? = nil
        let address = DirectAddress(user)
        do {
            if let address { hash = try await store.passwordHash(address) }
        } catch StoreError.notFound {
            hash = nil
        } catch {
            return .failure(.storeUnavailable)
        }
        guard let address, let hash else {
            // The same work as a wrong password, so that timing tells no account apart.
            _ = PasswordHash.verify(password, against: decoy)
            throttle.record(account: user, address: client, success: false)
            return .failure(.unknownAccount)
        }
        let ok = passwords.verify(password, for: address.description, against: hash)
        throttle.record(account: user, address: client, success: ok)
        return ok ? .success(address) : .failure(.wrongPassword)
    }
}
