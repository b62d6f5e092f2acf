/// The TLS rules every listener and every client of the HISP follows (NIST SP
/// 800-52r2 3.1 and 3.3.1; Direct requires TLS 1.2 or newer).
public enum TLSPolicy {
    /// The TLS 1.2 cipher suites on offer, in OpenSSL/BoringSSL syntax: ECDHE
    /// key exchange (forward secrecy) with an AEAD cipher only, never CBC with
    /// SHA-1 or static RSA key transport (SP 800-52r2 3.3.1.1). TLS 1.3 has
    /// only AEAD suites of its own. The order is ours; swift-nio-ssl does not
    /// let a server enforce its own order (SSL_OP_CIPHER_SERVER_PREFERENCE),
    /// so a client may choose among these, every one of which is acceptable.
    public static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
}
