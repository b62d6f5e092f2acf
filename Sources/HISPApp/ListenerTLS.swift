import DirectCore
import Crypto
import Foundation
import NIOSSL
import SMTPServer
import SwiftASN1
import X509

/// The certificate the SMTP listeners present in STARTTLS.
public enum ListenerTLS {
    /// A server context (TLS 1.2 or newer, AEAD suites only) from PEM files, or
    /// from a self-signed pair in `directory` (made on first use) when none is
    /// given; with an RSA pair beside an ECDSA one, clients that cannot verify
    /// ECDSA get the RSA certificate.
    public static func context(certificate: String?, key: String?, rsaCertificate: String? = nil, rsaKey: String? = nil,
                               selfSignedIn directory: String, hostname: String, addresses: [String] = []) throws
        -> (context: ServerTLS, certificatePath: String, selfSigned: Bool)
    {
        var certPath = certificate
        var keyPath = key
        var selfSigned = false
        if certPath == nil && keyPath == nil {
            (certPath, keyPath) = try selfSignedPair(directory: directory, hostname: hostname, addresses: addresses)
            selfSigned = true
        }
        guard let certPath, let keyPath else { throw ConfigurationError("tls: give both certificate and key, or neither") }
        let (primary, _) = try serverContext(certPath, keyPath, what: "tls")
        let primaryIsECDSA = try isECDSA(certPath)
        var rsa: NIOSSLContext? = nil
        switch (rsaCertificate, rsaKey) {
        case (nil, nil):
            break
        case (let c?, let k?):
            let (context, _) = try serverContext(c, k, what: "tls.rsa_certificate")
            guard try !isECDSA(c) else { throw ConfigurationError("tls.rsa_certificate: \(c) is not an RSA certificate") }
            guard primaryIsECDSA else {
                throw ConfigurationError("tls.rsa_certificate goes beside an ECDSA certificate; \(certPath) is not one")
            }
            rsa = context
        default:
            throw ConfigurationError("tls: give both rsa_certificate and rsa_key, or neither")
        }
        // NIST SP 800-52r2 3.3.1: the server's order of TLS 1.2 suites, by one context per suite.
        var tls12: [(suite: UInt16, ecdsa: Bool, context: NIOSSLContext)] = []
        for suite in TLSPolicy.tls12Suites {
            let pair = suite.ecdsa == primaryIsECDSA ? (certPath, keyPath) : suite.ecdsa ? nil : rsaCertificate.flatMap { c in rsaKey.map { (c, $0) } }
            guard let (c, k) = pair else { continue }
            tls12.append((suite.code, suite.ecdsa, try serverContext(c, k, what: "tls", suites: suite.name).0))
        }
        return (ServerTLS(primary: primary, rsa: rsa, tls12: tls12), certPath, selfSigned)
    }

    /// Whether the first certificate of a PEM file has an ECDSA (P-256 or P-384) key.
    static func isECDSA(_ path: String) throws -> Bool {
        let pem = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        guard let first = pem.components(separatedBy: "-----END CERTIFICATE-----").first,
              let certificate = try? Certificate(pemEncoded: first + "-----END CERTIFICATE-----\n")
        else { throw ConfigurationError("tls: \(path) holds no readable certificate") }
        return P256.Signing.PublicKey(certificate.publicKey) != nil || P384.Signing.PublicKey(certificate.publicKey) != nil
    }

    static func serverContext(_ certPath: String, _ keyPath: String, what: String, suites: String = TLSPolicy.tls12CipherSuites) throws
        -> (NIOSSLContext, NIOSSLPrivateKey)
    {
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certPath)
            privateKey = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigurationError("\(what): cannot load \(certPath) / \(keyPath): \(error)")
        }
        guard !chain.isEmpty else { throw ConfigurationError("\(what): \(certPath) holds no certificate") }
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        config.minimumTLSVersion = .tlsv12
        // NIST SP 800-52r2 3.3.1: AEAD suites with ECDHE only.
        config.cipherSuites = suites
        return (try NIOSSLContext(configuration: config), privateKey)
    }

    /// DIRECTORY/listener.pem and listener.key (mode 0600): ECDSA P-256, one year,
    /// named for `hostname`, localhost, 127.0.0.1 and each literal address the listeners
    /// are bound to (a client given "127.0.0.50" checks that name). An existing pair is
    /// kept while it names all of them, and made again when a listener moved to a new address.
    /// For development; give a real pair in production.
    static func selfSignedPair(directory: String, hostname: String, addresses: [String] = []) throws -> (String, String) {
        let certPath = (directory as NSString).appendingPathComponent("listener.pem")
        let keyPath = (directory as NSString).appendingPathComponent("listener.key")
        var sans: [GeneralName] = [.dnsName(hostname), .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        if hostname == "localhost" { sans.removeFirst() }
        for address in addresses {
            guard let bytes = IPAddressBytes.parse(address), bytes.contains(where: { $0 != 0 }) else { continue }
            let name = GeneralName.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))
            if !sans.contains(name) { sans.append(name) }
        }
        if FileManager.default.fileExists(atPath: certPath) && FileManager.default.fileExists(atPath: keyPath) {
            let existing = try? Certificate(pemEncoded: String(contentsOfFile: certPath, encoding: .utf8))
            let named = (try? existing?.extensions.subjectAlternativeNames).flatMap { $0 }.map(Array.init) ?? []
            if sans.allSatisfy(named.contains) { return (certPath, keyPath) }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(hostname) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 300,
            notValidAfter: now + 365 * 86_400, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // No key usage: a self-signed certificate that clients pin as its own trust
                // root must not be barred from signing itself (RFC 5280 4.2.1.3, OpenSSL/BoringSSL check_issued).
                Critical(BasicConstraints.notCertificateAuthority)
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sans)
            },
            issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM().pemString + "\n"
        try? FileManager.default.removeItem(atPath: keyPath)
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]),
              FileManager.default.createFile(atPath: certPath, contents: Data(pem.utf8), attributes: [.posixPermissions: 0o644])
        else { throw ConfigurationError("cannot write \(directory)/listener.pem and listener.key") }
        return (certPath, keyPath)
    }
}

/// A literal IPv4 or IPv6 address as its 4 or 16 bytes (an IP subjectAltName, RFC 5280 4.2.1.6); nil for a host name.
public enum IPAddressBytes {
    public static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
