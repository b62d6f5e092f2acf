/// The TLS rules every listener and every client of the HISP follows (NIST SP
/// 800-52r2 3.1 and 3.3.1; Direct requires TLS 1.2 or newer).
public enum TLSPolicy {
    public struct Suite: Sendable, Equatable {
        /// The OpenSSL/BoringSSL name.
        public let name: String
        /// The IANA code point.
        public let code: UInt16
        /// Signed with an ECDSA certificate (else RSA).
        public let ecdsa: Bool
    }

    /// The TLS 1.2 cipher suites on offer, in the server's order of preference:
    /// ECDHE key exchange (forward secrecy) with an AEAD cipher only, never CBC
    /// with SHA-1 or SHA-2 or static RSA key transport (SP 800-52r2 3.3.1.1).
    /// TLS 1.3 has only AEAD suites of its own.
    public static let tls12Suites = [
        Suite(name: "ECDHE-ECDSA-AES256-GCM-SHA384", code: 0xC02C, ecdsa: true),
        Suite(name: "ECDHE-ECDSA-AES128-GCM-SHA256", code: 0xC02B, ecdsa: true),
        Suite(name: "ECDHE-ECDSA-CHACHA20-POLY1305", code: 0xCCA9, ecdsa: true),
        Suite(name: "ECDHE-RSA-AES256-GCM-SHA384", code: 0xC030, ecdsa: false),
        Suite(name: "ECDHE-RSA-AES128-GCM-SHA256", code: 0xC02F, ecdsa: false),
        Suite(name: "ECDHE-RSA-CHACHA20-POLY1305", code: 0xCCA8, ecdsa: false),
    ]

    /// `tls12Suites` in OpenSSL/BoringSSL cipher-string syntax.
    public static let tls12CipherSuites = tls12Suites.map(\.name).joined(separator: ":")
}
