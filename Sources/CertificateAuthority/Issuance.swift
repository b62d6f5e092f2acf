import Crypto
import CryptoExtras
import DirectCore
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A CA certificate with its private key, checked to be able to issue.
public struct Issuer: Sendable {
    public let certificate: Certificate
    public let key: Certificate.PrivateKey

    /// Checks the pair: the key belongs to the certificate, and the
    /// certificate is a CA (RFC 5280 4.2.1.9) allowed to sign what `purpose`
    /// needs (4.2.1.3: keyCertSign for certificates, cRLSign for CRLs).
    public init(certificate: Certificate, key: Certificate.PrivateKey, purpose: Purpose = .certificates) throws {
        guard key.publicKey == certificate.publicKey else {
            throw CAError.issuerRefused("the issuer key does not belong to the issuer certificate \(certificate.subject)")
        }
        let bc = try? certificate.extensions.basicConstraints
        guard case .isCertificateAuthority = bc else {
            throw CAError.issuerRefused("\(certificate.subject) is not a CA certificate (basicConstraints cA is not set)")
        }
        if let ku = try? certificate.extensions.keyUsage {
            switch purpose {
            case .certificates where !ku.keyCertSign:
                throw CAError.issuerRefused("key usage of \(certificate.subject) does not allow keyCertSign")
            case .crls where !ku.cRLSign:
                throw CAError.issuerRefused("key usage of \(certificate.subject) does not allow cRLSign")
            default: break
            }
        }
        self.certificate = certificate
        self.key = key
    }

    public enum Purpose: Sendable { case certificates, crls }

    var subjectKeyIdentifier: ArraySlice<UInt8> {
        (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
    }
}

/// Key usage of an end-entity certificate (RFC 5280 4.2.1.3).
public enum CertificateUsage: String, CaseIterable, Sendable {
    case sign, encrypt, both
}

/// Issues CA and end-entity certificates in the Direct profile.
public enum CertificateAuthority {
    /// Certificates start this long before "now", for clocks that lag.
    public static let backdating: TimeInterval = 300

    /// Optional extensions an issued certificate can carry.
    public struct Pointers: Sendable {
        /// RFC 5280 4.2.1.13: where the issuer's CRL is published.
        public var crlURL: String?
        /// RFC 5280 4.2.2.1: where the issuer's certificate is published.
        public var aiaURL: String?
        /// RFC 5280 4.2.2.1 / RFC 6960: the OCSP responder for this certificate.
        public var ocspURL: String?
        public init(crlURL: String? = nil, aiaURL: String? = nil, ocspURL: String? = nil) {
            self.crlURL = crlURL
            self.aiaURL = aiaURL
            self.ocspURL = ocspURL
        }

        var urls: [String] { [crlURL, aiaURL, ocspURL].compactMap { $0 } }

        /// AuthorityInformationAccess with caIssuers and OCSP, when either is given.
        var authorityInformationAccess: AuthorityInformationAccess? {
            var descriptions: [AuthorityInformationAccess.AccessDescription] = []
            if let aiaURL { descriptions.append(.init(method: .issuingCA, location: .uniformResourceIdentifier(aiaURL))) }
            if let ocspURL { descriptions.append(.init(method: .ocspServer, location: .uniformResourceIdentifier(ocspURL))) }
            return descriptions.isEmpty ? nil : AuthorityInformationAccess(descriptions)
        }
    }

    /// A root CA (self-signed) or, with `issuer`, an intermediate CA.
    public static func createCA(
        subject: DistinguishedName, key: Certificate.PrivateKey, notBefore: Date, notAfter: Date,
        issuer: Issuer? = nil, pointers: Pointers = Pointers()
    ) throws -> Certificate {
        try checkValidity(notBefore, notAfter)
        for url in pointers.urls { try checkURL(url) }
        let signer = issuer?.key ?? key
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: key.publicKey)
            if let issuer { AuthorityKeyIdentifier(keyIdentifier: issuer.subjectKeyIdentifier) }
            if let aia = pointers.authorityInformationAccess { aia }
        }
        var all = extensions
        if let url = pointers.crlURL { try all.append(DirectExtensions.crlDistributionPoints(url)) }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: issuer?.certificate.subject ?? subject, subject: subject,
            signatureAlgorithm: try signer.directSignatureAlgorithm, extensions: all, issuerPrivateKey: signer)
    }

    /// An address- or domain-bound end-entity certificate (Direct AS 1.2 4.0):
    /// SAN, key usage for `usage`, SKI/AKI, CRL DP and AIA when given,
    /// policy OIDs when given, a serial from the system CSPRNG and a SHA-256
    /// (or P-384: SHA-384) signature.
    public static func issue(
        binding: CertificateBinding, publicKey: Certificate.PublicKey, usage: CertificateUsage,
        notBefore: Date, notAfter: Date, issuer: Issuer, pointers: Pointers = Pointers(),
        policies: [ASN1ObjectIdentifier] = []
    ) throws -> Certificate {
        try checkValidity(notBefore, notAfter)
        for url in pointers.urls { try checkURL(url) }
        let isRSA = publicKey.keyKind == .rsa
        if !isRSA && usage != .sign {
            // EC keys cannot be used for key transport (RSA only in Direct).
            throw CAError.unsupported("an EC key can only sign: use --usage sign, or an RSA key for encryption")
        }
        let subject = try DistinguishedName { CommonName(binding.text) }
        let san: GeneralName
        switch binding {
        case .address(let a): san = .rfc822Name(a.description)
        case .domain(let d): san = .dnsName(d)
        }
        let ku = KeyUsage(
            digitalSignature: usage != .encrypt, keyEncipherment: usage != .sign && isRSA)
        let extensions = try Certificate.Extensions {
            BasicConstraints.notCertificateAuthority
            Critical(ku)
            SubjectAlternativeNames([san])
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: issuer.subjectKeyIdentifier)
            if let aia = pointers.authorityInformationAccess { aia }
        }
        var all = extensions
        if let url = pointers.crlURL { try all.append(DirectExtensions.crlDistributionPoints(url)) }
        if !policies.isEmpty { try all.append(DirectExtensions.certificatePolicies(policies)) }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: issuer.certificate.subject, subject: subject,
            signatureAlgorithm: try issuer.key.directSignatureAlgorithm, extensions: all, issuerPrivateKey: issuer.key)
    }

    static func checkValidity(_ notBefore: Date, _ notAfter: Date) throws {
        guard notBefore < notAfter else {
            throw CAError.invalidArgument("the validity ends (\(notAfter)) before it starts (\(notBefore))")
        }
    }

    static func checkURL(_ url: String) throws {
        guard url.utf8.count <= 2048, url.hasPrefix("http://") || url.hasPrefix("https://"), url.allSatisfy(\.isASCII),
            !url.contains(" ")
        else {
            throw CAError.invalidArgument("\(url) is not an http:// or https:// URL")
        }
    }

    /// PEM of a certificate (RFC 7468 5).
    public static func pem(_ certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString + "\n"
    }
}
