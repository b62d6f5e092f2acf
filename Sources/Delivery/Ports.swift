import DirectCore
import DirectTrust
import X509

/// How one recipient fared in one SMTP transaction.
public enum RecipientOutcome: Sendable, Equatable {
    case accepted
    /// Try again later (4xx, a connection failure).
    case transient(Refusal)
    /// Do not try again (5xx).
    case permanent(Refusal)
}

/// One prepared message for one destination domain.
public struct OutboundMessage: Sendable {
    public var from: String
    public var recipients: [String]
    public var message: [UInt8]

    public init(from: String, recipients: [String], message: [UInt8]) {
        self.from = from
        self.recipients = recipients
        self.message = message
    }
}

/// Sends prepared (signed and encrypted) messages to another HISP: the SMTP
/// client behind MX lookups and configured routes.
public protocol OutboundTransport: Sendable {
    /// Sends `messages` to `domain` (over one connection where it can); for
    /// each message, an outcome per recipient.
    func send(domain: String, messages: [OutboundMessage]) async -> [[String: RecipientOutcome]]
}

/// Finds the certificates a message to `address` may be encrypted to, judged
/// by the outgoing anchors of `localDomain` (discovery, Direct AS 1.2 5.3).
/// `reason` says where the chosen ones came from, or why none was chosen.
public protocol RecipientCertificates: Sendable {
    func certificates(for address: DirectAddress, localDomain: String) async -> (chosen: [Certificate], reason: String)
}

/// The anchors that judge signers of messages arriving for a local domain.
public protocol IncomingTrust: Sendable {
    func trust(localDomain: String) async -> DirectTrust
}

/// Delivery without SMTP for the domains this HISP hosts: the mail service
/// accepts the prepared message in process, with the same decryption,
/// verification, trust and MDNs as a message from another HISP.
public protocol InProcessDelivery: Sendable {
    func isLocal(domain: String) async -> Bool
    /// The outcome for each recipient of `message`.
    func deliverInProcess(_ message: OutboundMessage) async -> [String: RecipientOutcome]
}
