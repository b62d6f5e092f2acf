import SwiftASN1
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The content-encryption algorithms we offer in SMIMECapabilities, strongest first.
let advertisedCapabilities: [ASN1ObjectIdentifier] = [
    CMSOID.aes256GCM, CMSOID.aes128GCM, CMSOID.aes256CBC, CMSOID.aes192CBC, CMSOID.aes128CBC,
]

/// A signer whose signature was checked cryptographically (not yet for trust).
public struct VerifiedSigner: Sendable {
    public let certificate: CertificateSummary
    public let digest: DigestAlgorithm
    public let signingTime: Date?
}

/// Producing and checking SignedData (RFC 5652 5).
public enum CMSSignature {
    /// Signs `content` and returns the DER of a ContentInfo holding SignedData.
    /// With `detached`, eContent is omitted (multipart/signed, RFC 8551 3.5.3).
    public static func sign(
        content: [UInt8], detached: Bool, key: CMSSigningKey, certificate: CertificateSummary,
        chain: [CertificateSummary] = [], digest: DigestAlgorithm = .sha256, signingTime: Date = Date(),
        useSubjectKeyIdentifier: Bool = false, policy: AlgorithmPolicy = .direct
    ) throws -> [UInt8] {
        // The policy applies when producing too: no signing with a weak key.
        try policy.checkDigest(digest.oid)
        try policy.checkKey(certificate, role: "signing")
        try policy.checkCertificateSignature(certificate)

        let messageDigest = digest.hash(content)
        // RFC 5652 5.3 / RFC 8551 2.5: contentType and messageDigest are required
        // when attributes are present; signingTime and SMIMECapabilities SHOULD be.
        let attributes: [CMSAttribute] = [
            CMSAttribute(type: CMSOID.contentTypeAttribute, values: [try ASN1Any(erasing: CMSOID.data)]),
            CMSAttribute(type: CMSOID.signingTimeAttribute, values: [try signingTimeValue(signingTime)]),
            CMSAttribute(type: CMSOID.messageDigestAttribute, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: ArraySlice(messageDigest)))]),
            CMSAttribute(type: CMSOID.smimeCapabilitiesAttribute, values: [try encodedCapabilities ?? capabilitiesValue()]),
        ]
        let signedBytes = try SignerInfo.encodeSignedAttributes(attributes)
        let signature = try key.sign(signedBytes, digest: digest)

        let sid: CertificateIdentifier
        if useSubjectKeyIdentifier {
            guard let ski = certificate.subjectKeyIdentifier else {
                throw CMSError.invalidKey("the signer certificate has no subject key identifier (\(certificate.displayName))")
            }
            sid = .subjectKeyIdentifier(ski)
        } else {
            sid = .issuerAndSerialNumber(try certificate.issuerAndSerialNumber())
        }
        let digestAlg = AlgorithmIdentifier(digest.oid)  // RFC 5754 2: parameters absent.
        let signer = try SignerInfo(
            sid: sid, digestAlgorithm: digestAlg, signedAttrs: attributes,
            signatureAlgorithm: key.signatureAlgorithm(digest: digest), signature: ArraySlice(signature),
            signedAttrsEncoding: signedBytes)
        let signedData = SignedData(
            digestAlgorithms: [digestAlg],
            encapContentInfo: EncapsulatedContentInfo(eContentType: CMSOID.data, eContent: detached ? nil : ArraySlice(content)),
            certificates: [certificate.der] + chain.map(\.der),
            signerInfos: [signer])
        return try ContentInfo(contentType: CMSOID.signedData, wrapping: signedData).derBytes()
    }

    /// RFC 5652 11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
    static func signingTimeValue(_ date: Date) throws -> ASN1Any {
        try UTCDateTime(date).asn1Time()
    }

    /// The SMIMECapabilities value, encoded once: it is the same in every signature.
    static let encodedCapabilities: ASN1Any? = try? capabilitiesValue()

    /// SMIMECapabilities ::= SEQUENCE OF SMIMECapability (RFC 8551 2.5.2).
    static func capabilitiesValue() throws -> ASN1Any {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { coder in
            for oid in advertisedCapabilities {
                try coder.appendConstructedNode(identifier: .sequence) { c in try c.serialize(oid) }
            }
        }
        return try ASN1Any(derEncoded: DER.parse(s.serializedBytes))
    }

    /// Checks every signer's signature over `content` (the detached content, or
    /// nil to use eContent). Returns the signers in order; throws at the first
    /// signer whose signature fails, naming the check.
    public static func verifySignatures(
        _ signedData: SignedData, detachedContent: ArraySlice<UInt8>?, policy: AlgorithmPolicy = .direct,
        certificateCache: CertificateCache? = nil
    ) throws -> [VerifiedSigner] {
        guard !signedData.signerInfos.isEmpty else { throw CMSError.noSignerInfos }
        let content: ArraySlice<UInt8>
        if let detachedContent {
            content = detachedContent
        } else if let e = signedData.encapContentInfo.eContent {
            content = e
        } else {
            throw CMSError.noContentToVerify
        }
        let certificates = signedData.certificates.compactMap { der in
            try? certificateCache.map { try $0.summary(der) } ?? CertificateSummary(der: der)
        }
        var verified: [VerifiedSigner] = []
        for signer in signedData.signerInfos {
            // Policy before any work: the digest algorithm.
            try policy.checkDigest(signer.digestAlgorithm.algorithm)
            guard let digest = DigestAlgorithm(oid: signer.digestAlgorithm.algorithm) else {
                throw CMSError.unsupportedAlgorithm("digest \(signer.digestAlgorithm.name)")
            }
            try checkSignatureAlgorithm(signer.signatureAlgorithm, digest: digest, policy: policy)
            guard let cert = certificates.first(where: { $0.matches(signer.sid) }) else {
                throw CMSError.signerCertificateNotFound(describe(signer.sid))
            }
            try policy.checkKey(cert, role: "signer")
            try policy.checkCertificateSignature(cert)

            let computed = digest.hash(content)
            let signedBytes: [UInt8]
            var signingTime: Date? = nil
            if let raw = signer.signedAttrsForSignature {
                // RFC 5652 5.4 / 11.1 / 11.2.
                guard let ct = try signer.signedAttribute(CMSOID.contentTypeAttribute) else {
                    throw CMSError.missingSignedAttribute("content-type")
                }
                guard (try? ASN1ObjectIdentifier(asn1Any: ct)) == signedData.encapContentInfo.eContentType else {
                    throw CMSError.contentTypeAttributeMismatch
                }
                guard let md = try signer.signedAttribute(CMSOID.messageDigestAttribute) else {
                    throw CMSError.missingSignedAttribute("message-digest")
                }
                let mdBytes = try ASN1OctetString(asn1Any: md).bytes
                guard constantTimeEquals(mdBytes, computed) else { throw CMSError.messageDigestMismatch }
                if let st = try signer.signedAttribute(CMSOID.signingTimeAttribute) {
                    signingTime = parseTime(st)
                }
                signedBytes = raw
            } else {
                // RFC 5652 5.4: without attributes the signature covers the content itself.
                signedBytes = Array(content)
            }
            guard try PublicKeyOperations.verify(
                signature: signer.signature, over: signedBytes, digest: digest, certificate: cert, cache: certificateCache)
            else {
                throw CMSError.signatureInvalid("signature of \(cert.displayName) does not match the signed data")
            }
            verified.append(VerifiedSigner(certificate: cert, digest: digest, signingTime: signingTime))
        }
        return verified
    }

    /// The digest each combined signature algorithm implies.
    static let impliedDigest: [ASN1ObjectIdentifier: ASN1ObjectIdentifier] = [
        CMSOID.sha1WithRSAEncryption: CMSOID.sha1, CMSOID.md5WithRSAEncryption: CMSOID.md5,
        CMSOID.ecdsaWithSHA1: CMSOID.sha1, CMSOID.sha256WithRSAEncryption: CMSOID.sha256,
        CMSOID.sha384WithRSAEncryption: CMSOID.sha384, CMSOID.sha512WithRSAEncryption: CMSOID.sha512,
        CMSOID.ecdsaWithSHA256: CMSOID.sha256, CMSOID.ecdsaWithSHA384: CMSOID.sha384,
        CMSOID.ecdsaWithSHA512: CMSOID.sha512,
    ]

    /// The signature algorithm must agree with the digest (RFC 5754 3).
    static func checkSignatureAlgorithm(_ alg: AlgorithmIdentifier, digest: DigestAlgorithm, policy: AlgorithmPolicy) throws {
        if alg.algorithm == CMSOID.rsaEncryption || alg.algorithm == CMSOID.ecPublicKey { return }
        guard let hash = impliedDigest[alg.algorithm] else {
            throw CMSError.unsupportedAlgorithm("signature algorithm \(alg.name)")
        }
        try policy.checkDigest(hash)
        guard hash == digest.oid else {
            throw CMSError.signatureInvalid("signature algorithm \(alg.name) disagrees with digest \(digest.micalg)")
        }
    }

    static func parseTime(_ any: ASN1Any) -> Date? {
        if let t = try? UTCTime(asn1Any: any) {
            return UTCDateTime(year: t.year, month: t.month, day: t.day, hour: t.hours, minute: t.minutes, second: t.seconds).date
        }
        if let t = try? GeneralizedTime(asn1Any: any) {
            return UTCDateTime(year: t.year, month: t.month, day: t.day, hour: t.hours, minute: t.minutes, second: t.seconds).date
        }
        return nil
    }

    public static func describe(_ id: CertificateIdentifier) -> String {
        switch id {
        case .issuerAndSerialNumber(let ias):
            return "issuer \(DistinguishedNameText.render(ias.issuer.derBytesOrEmpty)), serial \(ias.serialNumber.map { String(format2: $0) }.joined())"
        case .subjectKeyIdentifier(let ski):
            return "subject key identifier \(ski.map { String(format2: $0) }.joined())"
        }
    }
}

func constantTimeEquals<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for (x, y) in zip(a, b) { diff |= x ^ y }
    return diff == 0
}
