import Delivery
import DirectCore
import Foundation
import InternetMessage
import Logging
import SecurityAgent
import Storage

public struct MailServiceConfiguration: Sendable {
    /// Refuse a recipient without a trusted certificate when it is named
    /// (SMTP RCPT) instead of sending the sender a DSN later.
    public var rejectUntrustedAtRCPT: Bool
    /// How long a verified password is remembered (`PasswordVerifier`; 0: never).
    public var passwordMemory: TimeInterval
    /// Sign-in throttling and lockout.
    public var signIn: SignInPolicy
    /// The time the throttle reads (a test clock in tests).
    public var clock: any Clock

    public init(rejectUntrustedAtRCPT: Bool = false, passwordMemory: TimeInterval = 600, signIn: SignInPolicy = SignInPolicy(),
                clock: any Clock = SystemClock()) {
        self.rejectUntrustedAtRCPT = rejectUntrustedAtRCPT
        self.passwordMemory = passwordMemory
        self.signIn = signIn
        self.clock = clock
    }
}

/// The mail core every edge (SMTP submission and MX, IMAP, POP3, web, API)
/// stands on: the Direct rules for sending (`submit`) and receiving
/// (`accept`), the mailboxes, the status of what was sent, and sign-in.
/// No edge reaches the store, the security agent or the queue but through
/// it; it knows no transport (docs/architecture.md).
public final class MailService: Sendable {
    public let configuration: MailServiceConfiguration
    /// The queue (and its security agent, discovery and trust).
    public let queue: DirectGateway
    let store: HISPStore
    let logger: Logger
    /// Sign-in for every edge: passwords, throttling, audit.
    public let authenticator: Authenticator

    public init(configuration: MailServiceConfiguration = MailServiceConfiguration(), queue: DirectGateway) {
        self.configuration = configuration
        self.queue = queue
        self.store = queue.store
        self.logger = queue.logger
        self.authenticator = Authenticator(
            store: queue.store, passwords: PasswordVerifier(lifetime: configuration.passwordMemory),
            throttle: SignInThrottle(policy: configuration.signIn, clock: configuration.clock))
    }

    /// Runs the queue's workers until cancelled, delivering mail for our own domains in process.
    public func run() async {
        await queue.run(inProcess: self)
    }
}
