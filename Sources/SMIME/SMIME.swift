import CryptographicMessageSyntax
import InternetMessage
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// S/MIME 4.0 (RFC 8551) over CMS, in the shapes Direct uses.
public struct SMIME: Sendable {
    public var policy: AlgorithmPolicy
    public var limits: MessageLimits
    /// Signers' and recipients' certificates (and their RSA keys) parsed
    /// once across the messages this value handles.
    public let certificateCache: CertificateCache

    public init(policy: AlgorithmPolicy = .direct, limits: MessageLimits = .default,
                certificateCache: CertificateCache = CertificateCache()) {
        self.policy = policy
        self.limits = limits
        self.certificateCache = certificateCache
    }

    func parse(_ bytes: [UInt8]) throws -> MIMEEntity {
        // RFC 8551 3.1.1: S/MIME works on the canonical (CRLF) form.
        try MIMEEntity(parsing: LineEndings.canonicalize(bytes), limits: limits)
    }

    // MARK: Sign

    /// Signs a message. With `wrap` the whole message goes inside as
    /// message/rfc822 and only the routing headers stay outside (Direct default).
    public func sign(
        _ bytes: [UInt8], identity: SMIMEIdentity, digest: DigestAlgorithm = .sha256, opaque: Bool = false,
        wrap: Bool = true, signingTime: Date = Date()
    ) throws -> [UInt8] {
        let signed = try signedEntity(bytes, identity: identity, digest: digest, opaque: opaque, wrap: wrap, signingTime: signingTime)
        return Wrapping.assemble(outer: signed.outer, contentType: signed.contentType, extraHeaders: signed.contentHeaders, body: signed.body)
    }

    /// Wraps, signs and encrypts, as Direct sends (Direct AS 1.2 5.3, RFC 5751
    /// 3.1): the same bytes as `encrypt(sign(...), wrap: false)`, without
    /// writing out and re-reading the signed message in between.
    public func signAndEncrypt(
        _ bytes: [UInt8], identity: SMIMEIdentity, to recipients: [CertificateSummary], digest: DigestAlgorithm = .sha256,
        cipher: ContentEncryption = .aes256CBC, keyTransport: KeyTransport = .rsaOAEPSHA256, wrap: Bool = true,
        signingTime: Date = Date()
    ) throws -> [UInt8] {
        let signed = try signedEntity(bytes, identity: identity, digest: digest, opaque: false, wrap: wrap, signingTime: signingTime)
        let inner = EntityBuilder(headers: [("Content-Type", signed.contentType.description)] + signed.contentHeaders,
                                  body: signed.body).serialize()
        return try envelope(inner, outer: signed.outer, to: recipients, cipher: cipher, keyTransport: keyTransport)
    }

    /// The signed entity, before it is written out: the headers that stay
    /// outside, its Content-Type and other content headers, and its body.
    private func signedEntity(
        _ bytes: [UInt8], identity: SMIMEIdentity, digest: DigestAlgorithm, opaque: Bool, wrap: Bool, signingTime: Date
    ) throws -> (outer: [(name: String, value: String)], contentType: ContentType,
                 contentHeaders: [(name: String, value: String)], body: [UInt8]) {
        let message = try parse(bytes)
        let inner: [UInt8]
        let outer: [(name: String, value: String)]
        if wrap {
            inner = Wrapping.wrappedEntity(message)
            outer = Wrapping.headers(message) { n in Wrapping.routingHeaders.contains { $0.caseInsensitiveEquals(n) } }
        } else {
            inner = Wrapping.contentEntity(message)
            outer = Wrapping.headers(message) { !Wrapping.isContentHeader($0) }
        }
        let signedData = try CMSSignature.sign(
            content: inner, detached: !opaque, key: identity.key, certificate: identity.certificate,
            chain: identity.chain, digest: digest, signingTime: signingTime, policy: policy)
        if opaque {
            // RFC 8551 3.5.2: application/pkcs7-mime; smime-type=signed-data.
            let ct = ContentType(type: "application", subtype: "pkcs7-mime",
                                 parameters: [("smime-type", "signed-data"), ("name", "smime.p7m")])
            return (outer, ct,
                    [("Content-Transfer-Encoding", "base64"), ("Content-Disposition", "attachment; filename=smime.p7m")],
                    Base64.encode(signedData))
        }
        // RFC 8551 3.5.3: multipart/signed with a detached signature.
        let boundary = Multipart.makeBoundary()
        let signaturePart = EntityBuilder(
            headers: [
                ("Content-Type", "application/pkcs7-signature; name=smime.p7s"),
                ("Content-Transfer-Encoding", "base64"),
                ("Content-Disposition", "attachment; filename=smime.p7s"),
            ], body: Base64.encode(signedData)
        ).serialize()
        let ct = ContentType(type: "multipart", subtype: "signed", parameters: [
            ("protocol", "application/pkcs7-signature"), ("micalg", digest.micalg), ("boundary", boundary),
        ])
        let body = Multipart.body(parts: [inner, signaturePart], boundary: boundary,
                                  preamble: "This is an S/MIME signed message")
        return (outer, ct, [], body)
    }

    // MARK: Encrypt

    /// Encrypts a message to every recipient certificate. A message that is
    /// already signed is encrypted as it is (wrapping happens once).
    public func encrypt(
        _ bytes: [UInt8], to recipients: [CertificateSummary], cipher: ContentEncryption = .aes256CBC,
        keyTransport: KeyTransport = .rsaOAEPSHA256, wrap: Bool = true
    ) throws -> [UInt8] {
        let message = try parse(bytes)
        let inner: [UInt8]
        let outer: [(name: String, value: String)]
        if Wrapping.isSigned(message) || !wrap {
            inner = Wrapping.contentEntity(message)
            outer = Wrapping.headers(message) { !Wrapping.isContentHeader($0) }
        } else {
            inner = Wrapping.wrappedEntity(message)
            outer = Wrapping.headers(message) { n in Wrapping.routingHeaders.contains { $0.caseInsensitiveEquals(n) } }
        }
        return try envelope(inner, outer: outer, to: recipients, cipher: cipher, keyTransport: keyTransport)
    }

    /// `inner` enveloped to the recipients, under the outer headers.
    private func envelope(
        _ inner: [UInt8], outer: [(name: String, value: String)], to recipients: [CertificateSummary],
        cipher: ContentEncryption, keyTransport: KeyTransport
    ) throws -> [UInt8] {
        let envelope = try CMSEnvelope.encrypt(
            content: inner, recipients: recipients.map { EnvelopeRecipient(certificate: $0) }, cipher: cipher,
            keyTransport: keyTransport, policy: policy, certificateCache: certificateCache)
        // RFC 8551 3.3 / RFC 8551 3.4 (authEnveloped-data).
        let smimeType = cipher.isAuthenticated ? "authEnveloped-data" : "enveloped-data"
        let ct = ContentType(type: "application", subtype: "pkcs7-mime",
                             parameters: [("smime-type", smimeType), ("name", "smime.p7m")])
        return Wrapping.assemble(
            outer: outer, contentType: ct,
            extraHeaders: [("Content-Transfer-Encoding", "base64"), ("Content-Disposition", "attachment; filename=smime.p7m")],
            base64Body: envelope)
    }

    // MARK: Decrypt

    /// Decrypts an enveloped or auth-enveloped message and returns the
    /// decrypted MIME entity.
    public func decrypt(_ bytes: [UInt8], identity: SMIMEIdentity) throws -> (entity: [UInt8], details: DecryptedContent) {
        let message = try parse(bytes)
        let ct = message.contentType
        let smimeType = ct[parameter: "smime-type"]?.lowercased()
        let isEnvelope = Wrapping.isPKCS7Mime(ct) && (smimeType == nil || smimeType == "enveloped-data" || smimeType == "authenveloped-data")
        // RFC 8551 3.2.2: some agents send application/octet-stream with a .p7m name.
        let isOctetP7m = ct.mimeType == "application/octet-stream" && (ct[parameter: "name"]?.lowercased().hasSuffix(".p7m") ?? false)
        guard isEnvelope || isOctetP7m else {
            throw SMIMEError.notSMIME(expected: "enveloped-data", found: ct.description)
        }
        let der = try message.decodedBody()
        let info = try ContentInfo.parse(der)
        let result = try CMSEnvelope.decrypt(info, certificate: identity.certificate, key: identity.key, policy: policy)
        return (LineEndings.canonicalize(result.content), result)
    }

    // MARK: Verify

    public struct Verified: Sendable {
        /// The signed content, unwrapped to the original message when wrapped.
        public let content: [UInt8]
        /// Whether the signed content was a wrapped message/rfc822.
        public let wasWrapped: Bool
        public let signers: [VerifiedSigner]
        /// The trusted chain of the first trusted signer, leaf first.
        public let chain: [Certificate]
    }

    /// Verifies a signed message (multipart/signed or signed-data) over the exact
    /// received bytes, then asks `trust` whether a signer is trusted.
    public func verify(_ bytes: [UInt8], trust: some SignerTrustEvaluating) async throws -> Verified {
        let message = try parse(bytes)
        let ct = message.contentType
        let signedData: SignedData
        let content: ArraySlice<UInt8>
        // The signed entity, when parsing the message has parsed it already.
        var signedPart: MIMEEntity? = nil
        if ct.mimeType == "multipart/signed" {
            // RFC 8551 3.5.3 / RFC 1847 2.1: exactly two parts.
            guard message.parts.count == 2 else {
                throw SMIMEError.malformedSMIME("multipart/signed has \(message.parts.count) parts, expected 2")
            }
            let sigPart = message.parts[1]
            guard Wrapping.isPKCS7Signature(sigPart.contentType) else {
                throw SMIMEError.malformedSMIME("second part is \(sigPart.contentType.mimeType), expected application/pkcs7-signature")
            }
            let info = try ContentInfo.parse(try sigPart.decodedBody())
            signedData = try info.unwrap(SignedData.self, expecting: CMSOID.signedData)
            // The first part's exact bytes, as received (RFC 1847 2.1).
            content = message.parts[0].bytes
            signedPart = message.parts[0]
            guard signedData.encapContentInfo.eContent == nil || signedData.encapContentInfo.eContent == content else {
                throw SMIMEError.malformedSMIME("multipart/signed carries different encapsulated content")
            }
        } else if Wrapping.isPKCS7Mime(ct) {
            let info = try ContentInfo.parse(try message.decodedBody())
            if info.contentType == CMSOID.envelopedData || info.contentType == CMSOID.authEnvelopedData {
                throw SMIMEError.notSMIME(expected: "signed", found: "\(ct.mimeType) enveloped-data (decrypt it first)")
            }
            signedData = try info.unwrap(SignedData.self, expecting: CMSOID.signedData)
            guard let e = signedData.encapContentInfo.eContent else { throw CMSError.noContentToVerify }
            content = e
        } else {
            throw SMIMEError.notSMIME(expected: "signed", found: ct.description)
        }

        let signers = try CMSSignature.verifySignatures(
            signedData, detachedContent: content, policy: policy, certificateCache: certificateCache)
        // Each included certificate is parsed once; the signer's own is the
        // leaf, the others are candidate intermediates.
        let included: [(der: [UInt8], certificate: Certificate)] = signedData.certificates.compactMap { der in
            (try? certificateCache.certificate(der)).map { (der, $0) }
        }
        var firstFailure: String? = nil
        var trustedChain: [Certificate]? = nil
        for signer in signers {
            let leafDER = signer.certificate.der
            let leaf: Certificate
            if let parsed = included.first(where: { $0.der == leafDER })?.certificate {
                leaf = parsed
            } else {
                do {
                    leaf = try CertificateLoading.x509(signer.certificate)
                } catch {
                    if firstFailure == nil { firstFailure = "\(error)" }
                    continue
                }
            }
            let intermediates = included.filter { $0.der != leafDER }.map(\.certificate)
            switch await trust.evaluateSigner(leaf, intermediates: intermediates) {
            case .trusted(let chain):
                if trustedChain == nil { trustedChain = chain }
            case .untrusted(let reason):
                if firstFailure == nil { firstFailure = reason }
            }
        }
        guard let chain = trustedChain else {
            throw SMIMEError.untrustedSigner(firstFailure ?? "no signer")
        }

        let signedEntity = try signedPart ?? MIMEEntity(parsing: Array(content), limits: limits)
        if signedEntity.contentType.mimeType == "message/rfc822" {
            return Verified(content: Array(signedEntity.bodyBytes), wasWrapped: true, signers: signers, chain: chain)
        }
        // Not wrapped: the outer non-content headers and the signed entity form the message.
        let outer = Wrapping.rawHeaderBytes(message) { n in
            !Wrapping.isContentHeader(n) && !n.caseInsensitiveEquals("MIME-Version")
        }
        let mimeVersion = outer.isEmpty ? [] : Array("MIME-Version: 1.0\r\n".utf8)
        return Verified(content: outer + mimeVersion + Array(content), wasWrapped: false, signers: signers, chain: chain)
    }
}
