import DirectCore
import DirectTrust
import X509

/// How one recipient fared in one SMTP transaction.
public enum RecipientOutcome: Sendable, Equatable {
    case accepted
    /// Try again later (4xx, a connection failure).
    case transient(String)
    /// Do not try again (5xx).
    case permanent(String)
}

/// Sends prepared (signed and encrypted) messages to another HISP: the SMTP
/// client behind MX lookups and configured routes.
public protocol OutboundTransport: Sendable {
    /// One transaction to `domain` for `recipients`; an outcome for each.
    func send(domain: String, from: String, to recipients: [String], message: [UInt8]) async -> [String: RecipientOutcome]
}

/// Finds the certificates a message to `address` may be encrypted to, judged
/// by the outgoing anchors of `localDomain` (discovery, DIRECT-NOTES 3).
public protocol RecipientCertificates: Sendable {
    func certificates(for address: DirectAddress, localDomain: String) async -> (chosen: [Certificate], reason: String)
}

/// The anchors that judge signers of messages arriving for a local domain.
public protocol IncomingTrust: Sendable {
    func trust(localDomain: String) async -> DirectTrust
}
