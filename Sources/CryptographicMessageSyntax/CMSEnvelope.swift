import SwiftASN1
import DirectCore
import Crypto
import CryptoExtras
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Content-encryption algorithms we produce (RFC 3565, RFC 5084).
public enum ContentEncryption: String, Sendable, CaseIterable {
    case aes128CBC = "aes-128-cbc"
    case aes192CBC = "aes-192-cbc"
    case aes256CBC = "aes-256-cbc"
    case aes128GCM = "aes-128-gcm"
    case aes256GCM = "aes-256-gcm"

    public var oid: ASN1ObjectIdentifier {
        switch self {
        case .aes128CBC: return CMSOID.aes128CBC
        case .aes192CBC: return CMSOID.aes192CBC
        case .aes256CBC: return CMSOID.aes256CBC
        case .aes128GCM: return CMSOID.aes128GCM
        case .aes256GCM: return CMSOID.aes256GCM
        }
    }

    public var keyBytes: Int {
        switch self {
        case .aes128CBC, .aes128GCM: return 16
        case .aes192CBC: return 24
        case .aes256CBC, .aes256GCM: return 32
        }
    }

    public var isAuthenticated: Bool { self == .aes128GCM || self == .aes256GCM }
}

/// What a decryption produced.
public struct DecryptedContent: Sendable {
    public let content: [UInt8]
    public let contentEncryption: ASN1ObjectIdentifier
    public let keyTransport: KeyTransport
    public let authenticated: Bool
}

/// A recipient: its certificate and how to identify it.
public struct EnvelopeRecipient: Sendable {
    public let certificate: CertificateSummary
    public let useSubjectKeyIdentifier: Bool

    public init(certificate: CertificateSummary, useSubjectKeyIdentifier: Bool = false) {
        self.certificate = certificate
        self.useSubjectKeyIdentifier = useSubjectKeyIdentifier
    }
}

/// EnvelopedData (RFC 5652 6) and AuthEnvelopedData (RFC 5083) with key
/// transport recipients.
public enum CMSEnvelope {
    /// RFC 5084 3.2: GCM tag length; we always write 16 and read 12 to 16.
    static let gcmTagLength = 16

    /// Encrypts `content` to every recipient and returns the DER of a ContentInfo.
    public static func encrypt(
        content: [UInt8], recipients: [EnvelopeRecipient], cipher: ContentEncryption = .aes256CBC,
        keyTransport: KeyTransport = .rsaOAEPSHA256, policy: AlgorithmPolicy = .direct, certificateCache: CertificateCache? = nil
    ) throws -> [UInt8] {
        guard !recipients.isEmpty else { throw CMSError.notAddressedToUs(recipients: []) }
        guard recipients.count <= maxRecipientInfos else {
            throw CMSError.limitExceeded("more than \(maxRecipientInfos) recipients")
        }
        try policy.checkContentEncryption(cipher.oid)
        for r in recipients {
            try policy.checkKey(r.certificate, role: "recipient")
            try policy.checkCertificateSignature(r.certificate)
        }
        // The content key and the IV (or nonce) in one system call.
        let ivLength = cipher.isAuthenticated ? 12 : 16
        var random = SecureRandom.bytes(cipher.keyBytes + ivLength)
        defer { random.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        // No slice of the key outlives its statement, so that the zeroing above finds the one buffer.
        let cek = SymmetricKey(data: random[..<cipher.keyBytes])
        let ivBytes = Array(random[cipher.keyBytes...])[...]  // not secret
        let transportAlg = try keyTransport.algorithmIdentifier
        let recipientInfos: [RecipientInfo] = try recipients.map { r in
            let encryptedKey = try PublicKeyOperations.encryptContentKey(
                random[..<cipher.keyBytes], to: r.certificate, transport: keyTransport, cache: certificateCache)
            let rid: CertificateIdentifier
            if r.useSubjectKeyIdentifier {
                guard let ski = r.certificate.subjectKeyIdentifier else {
                    throw CMSError.invalidKey("recipient certificate has no subject key identifier (\(r.certificate.displayName))")
                }
                rid = .subjectKeyIdentifier(ski)
            } else {
                rid = .issuerAndSerialNumber(try r.certificate.issuerAndSerialNumber())
            }
            return .keyTransport(KeyTransRecipientInfo(rid: rid, keyEncryptionAlgorithm: transportAlg, encryptedKey: ArraySlice(encryptedKey)))
        }

        if cipher.isAuthenticated {
            let nonce = try AES.GCM.Nonce(data: ivBytes)
            let sealed = try AES.GCM.seal(content, using: cek, nonce: nonce)
            let params = GCMParameters(nonce: ArraySlice(Array(nonce)), icvLength: gcmTagLength)
            let eci = EncryptedContentInfo(
                contentType: CMSOID.data,
                contentEncryptionAlgorithm: AlgorithmIdentifier(cipher.oid, parameters: try ASN1Any(erasing: params)),
                encryptedContent: ArraySlice(sealed.ciphertext))
            let aed = AuthEnvelopedData(recipientInfos: recipientInfos, authEncryptedContentInfo: eci, mac: ArraySlice(sealed.tag))
            return try ContentInfo(contentType: CMSOID.authEnvelopedData, wrapping: aed).derBytes()
        }
        let iv = try AES._CBC.IV(ivBytes: ivBytes)
        // RFC 5652 6.3: PKCS #7 padding of 1 to 16 bytes, added here in the one
        // copy of the content (swift-crypto would copy it, then grow it).
        let padLength = 16 - content.count % 16
        var padded = Data(count: content.count + padLength)
        padded.withUnsafeMutableBytes { out in
            content.withUnsafeBytes { out.copyMemory(from: $0) }
            out[content.count...].initializeMemory(as: UInt8.self, repeating: UInt8(padLength))
        }
        let ciphertext = try AES._CBC.encrypt(padded, using: cek, iv: iv, noPadding: true)
        let eci = EncryptedContentInfo(
            contentType: CMSOID.data,
            // RFC 3565 4.1: the parameter is the IV as an OCTET STRING.
            contentEncryptionAlgorithm: AlgorithmIdentifier(cipher.oid, parameters: try ASN1Any(erasing: ASN1OctetString(contentBytes: ivBytes))),
            encryptedContent: ArraySlice(ciphertext))
        let ed = EnvelopedData(recipientInfos: recipientInfos, encryptedContentInfo: eci)
        return try ContentInfo(contentType: CMSOID.envelopedData, wrapping: ed).derBytes()
    }

    /// Decrypts an EnvelopedData or AuthEnvelopedData ContentInfo addressed to
    /// `certificate`, whose private key is `key`.
    public static func decrypt(
        _ contentInfo: ContentInfo, certificate: CertificateSummary, key: CMSKeyTransportDecrypter,
        policy: AlgorithmPolicy = .direct
    ) throws -> DecryptedContent {
        let recipientInfos: [RecipientInfo]
        let eci: EncryptedContentInfo
        var mac: ArraySlice<UInt8>? = nil
        var aad: [UInt8]? = nil
        if contentInfo.contentType == CMSOID.envelopedData {
            let ed = try contentInfo.unwrap(EnvelopedData.self, expecting: CMSOID.envelopedData)
            recipientInfos = ed.recipientInfos
            eci = ed.encryptedContentInfo
        } else if contentInfo.contentType == CMSOID.authEnvelopedData {
            let aed = try contentInfo.unwrap(AuthEnvelopedData.self, expecting: CMSOID.authEnvelopedData)
            recipientInfos = aed.recipientInfos
            eci = aed.authEncryptedContentInfo
            mac = aed.mac
            aad = aed.authAttrsForAAD
        } else {
            throw CMSError.unexpectedContentType(expected: "id-envelopedData or id-ct-authEnvelopedData", found: CMSOID.name(contentInfo.contentType))
        }
        // Policy first, before any private-key operation.
        let cipherOID = eci.contentEncryptionAlgorithm.algorithm
        try policy.checkContentEncryption(cipherOID)
        guard let encrypted = eci.encryptedContent else { throw CMSError.malformed("EncryptedContentInfo without encryptedContent") }

        // RFC 5652 6.2: find the RecipientInfo for our certificate.
        var ktri: KeyTransRecipientInfo? = nil
        var others: [String] = []
        for ri in recipientInfos {
            switch ri {
            case .keyTransport(let k):
                if certificate.matches(k.rid) { ktri = k } else { others.append(CMSSignature.describe(k.rid)) }
            case .other:
                others.append(ri.typeName)
            }
            if ktri != nil { break }
        }
        guard let ktri else { throw CMSError.notAddressedToUs(recipients: others) }
        let transport = try KeyTransport(ktri.keyEncryptionAlgorithm)
        let keyLength = try Self.keyLength(cipherOID)
        let cekBytes = try key.decryptContentKey(ktri.encryptedKey, transport: transport, expectedLength: keyLength)
        guard cekBytes.count == keyLength else {
            throw CMSError.keyDecryptionFailed("decrypted key has \(cekBytes.count) bytes, \(CMSOID.name(cipherOID)) needs \(keyLength)")
        }
        let cek = SymmetricKey(data: cekBytes)

        guard let paramsAny = eci.contentEncryptionAlgorithm.parameters else {
            throw CMSError.malformed("\(CMSOID.name(cipherOID)) without parameters")
        }
        let plaintext: [UInt8]
        if let mac {
            let params = try GCMParameters(berASN1Any: paramsAny)
            // swift-crypto's AES-GCM takes full 16-byte tags only.
            guard mac.count == gcmTagLength, params.icvLength == gcmTagLength else {
                throw CMSError.unsupportedAlgorithm("AES-GCM with a \(mac.count)-byte tag (16 supported)")
            }
            do {
                let nonce = try AES.GCM.Nonce(data: params.nonce)
                let box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: encrypted, tag: mac)
                // RFC 5083 2.2: authAttrs, when present, are the AAD.
                let opened = try aad.map { try AES.GCM.open(box, using: cek, authenticating: $0) } ?? AES.GCM.open(box, using: cek)
                plaintext = Array(opened)
            } catch {
                throw CMSError.contentDecryptionFailed("AES-GCM authentication failed (wrong key or altered ciphertext)")
            }
        } else {
            let ivBytes = try ASN1OctetString(berASN1Any: paramsAny).bytes
            do {
                let iv = try AES._CBC.IV(ivBytes: ivBytes)
                plaintext = Array(try AES._CBC.decrypt(encrypted, using: cek, iv: iv))
            } catch {
                throw CMSError.contentDecryptionFailed("\(CMSOID.name(cipherOID)) decryption failed (wrong key or altered ciphertext)")
            }
        }
        return DecryptedContent(content: plaintext, contentEncryption: cipherOID, keyTransport: transport, authenticated: mac != nil)
    }

    static func keyLength(_ oid: ASN1ObjectIdentifier) throws -> Int {
        switch oid {
        case CMSOID.aes128CBC, CMSOID.aes128GCM: return 16
        case CMSOID.aes192CBC, CMSOID.aes192GCM: return 24
        case CMSOID.aes256CBC, CMSOID.aes256GCM: return 32
        default: throw CMSError.unsupportedAlgorithm("content encryption \(CMSOID.name(oid))")
        }
    }
}
