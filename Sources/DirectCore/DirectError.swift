/// What kind of failure an error is, which decides how every edge reports it:
/// the command line maps `.security` to exit 1 and the rest to exit 2, and the
/// SMTP server (later) maps each kind to its reply class.
public enum FailureKind: Sendable, Hashable {
    /// A security or trust check failed: bad signature, untrusted signer,
    /// refused algorithm, message not addressed to us.
    case security
    /// The input could not be parsed or is malformed.
    case malformedInput
    /// The input exceeds an explicit limit (size, depth, count).
    case limitExceeded
    /// The request is well formed but asks for something we do not support.
    case unsupported
}

/// An SMTP reply: basic code (RFC 5321 4.2) and enhanced status code (RFC 3463).
public struct SMTPReplyCode: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var enhanced: String

    public init(_ code: Int, _ enhanced: String) {
        self.code = code
        self.enhanced = enhanced
    }

    public var description: String { "\(code) \(enhanced)" }

    /// RFC 3463 5.7.x: security or policy status.
    public static let securityFailure = SMTPReplyCode(554, "5.7.5")
    /// RFC 3463 5.6.x: media error (malformed content).
    public static let malformedContent = SMTPReplyCode(554, "5.6.0")
    /// RFC 3463 5.3.4: message too big for system.
    public static let tooBig = SMTPReplyCode(552, "5.3.4")
    /// RFC 3463 5.6.3: conversion required and not supported / unsupported content.
    public static let unsupportedContent = SMTPReplyCode(554, "5.6.3")
}

/// The one error protocol every DirectHISP module's errors conform to, so that
/// edges can report them without knowing the module.
public protocol DirectError: Error, CustomStringConvertible, Sendable {
    var kind: FailureKind { get }
    /// A reason safe to show a remote peer (no key material, no PHI).
    var peerSafeText: String { get }
}

extension DirectError {
    public var smtpReply: SMTPReplyCode {
        switch kind {
        case .security: return .securityFailure
        case .malformedInput: return .malformedContent
        case .limitExceeded: return .tooBig
        case .unsupported: return .unsupportedContent
        }
    }

    public var peerSafeText: String { description }
}
