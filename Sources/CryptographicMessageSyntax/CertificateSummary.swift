import SwiftASN1
import Crypto
import CryptoExtras

/// The parts of an X.509 certificate (RFC 5280 4.1) that CMS needs to
/// identify signers and recipients and to apply the algorithm policy,
/// parsed by us so that a certificate swift-certificates refuses (a 1024-bit
/// key, say) can still be named in the error.
///
/// ```
/// Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, signatureAlgorithm, signatureValue }
/// TBSCertificate ::= SEQUENCE {
///   version [0] EXPLICIT Version DEFAULT v1, serialNumber, signature AlgorithmIdentifier,
///   issuer Name, validity Validity, subject Name, subjectPublicKeyInfo,
///   issuerUniqueID [1] IMPLICIT OPTIONAL, subjectUniqueID [2] IMPLICIT OPTIONAL,
///   extensions [3] EXPLICIT Extensions OPTIONAL }
/// ```
public struct CertificateSummary: Sendable, Hashable {
    public enum KeyType: Sendable, Hashable, CustomStringConvertible {
        case rsa(bits: Int)
        case ec(curve: ASN1ObjectIdentifier)
        case other(ASN1ObjectIdentifier)

        public var description: String {
            switch self {
            case .rsa(let bits): return "RSA-\(bits)"
            case .ec(let curve):
                if curve == CMSOID.secp256r1 { return "EC P-256" }
                if curve == CMSOID.secp384r1 { return "EC P-384" }
                return "EC \(curve)"
            case .other(let oid): return "key algorithm \(oid)"
            }
        }
    }

    public let der: [UInt8]
    public let serialNumber: ArraySlice<UInt8>
    /// The issuer and subject Names exactly as encoded.
    public let issuer: [UInt8]
    public let subject: [UInt8]
    public let signatureAlgorithm: ASN1ObjectIdentifier
    /// SubjectPublicKeyInfo DER.
    public let subjectPublicKeyInfo: [UInt8]
    public let keyType: KeyType
    public let subjectKeyIdentifier: [UInt8]?
    /// The issuer Name as swift-asn1 holds it, for IssuerAndSerialNumber.
    private let issuerName: ASN1Any

    /// Refuses certificates larger than this (a Direct certificate is a few KB).
    public static let maxSize = 64 * 1024

    public init(der: [UInt8]) throws {
        guard der.count <= Self.maxSize else { throw CMSError.limitExceeded("certificate larger than \(Self.maxSize) bytes") }
        self.der = der
        do {
            let root = try DER.parse(der)
            var fields: (ArraySlice<UInt8>, [UInt8], [UInt8], ASN1ObjectIdentifier, [UInt8], KeyType, [UInt8]?, ASN1Any)!
            try DER.sequence(root, identifier: .sequence) { outer in
                guard let tbs = outer.next() else { throw CMSError.malformed("certificate without tbsCertificate") }
                let sigAlg = try AlgorithmIdentifier(berEncoded: &outer)
                _ = try ASN1BitString(derEncoded: &outer)  // signatureValue
                fields = try DER.sequence(tbs, identifier: .sequence) { n in
                    _ = try DER.optionalExplicitlyTagged(&n, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                    let serial = try ArraySlice<UInt8>(derEncoded: &n)
                    _ = try AlgorithmIdentifier(berEncoded: &n)
                    guard let issuer = n.next(), let _ = n.next(), let subject = n.next(), let spki = n.next() else {
                        throw CMSError.malformed("truncated tbsCertificate")
                    }
                    let keyType = try Self.keyType(spki)
                    var ski: [UInt8]? = nil
                    while let field = n.next() {
                        if field.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) {
                            ski = try Self.subjectKeyIdentifier(field)
                        }
                    }
                    return (serial, Array(issuer.encodedBytes), Array(subject.encodedBytes), sigAlg.algorithm,
                            Array(spki.encodedBytes), keyType, ski, ASN1Any(derEncoded: issuer))
                }
            }
            (serialNumber, issuer, subject, signatureAlgorithm, subjectPublicKeyInfo, keyType, subjectKeyIdentifier, issuerName) = fields
        } catch let e as CMSError {
            throw e
        } catch {
            throw CMSError.malformed("certificate: \(error)")
        }
    }

    private static func keyType(_ spki: ASN1Node) throws -> KeyType {
        try DER.sequence(spki, identifier: .sequence) { n in
            let alg = try AlgorithmIdentifier(berEncoded: &n)
            let key = try ASN1BitString(derEncoded: &n)
            if alg.algorithm == CMSOID.rsaEncryption {
                // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1)
                let modulus = try DER.sequence(try DER.parse(key.bytes), identifier: .sequence) { k in
                    let modulus = try ArraySlice<UInt8>(derEncoded: &k)
                    _ = try ArraySlice<UInt8>(derEncoded: &k)  // publicExponent
                    return modulus
                }
                let trimmed = modulus.drop { $0 == 0 }
                let bits = trimmed.isEmpty ? 0 : (trimmed.count - 1) * 8 + (8 - trimmed.first!.leadingZeroBitCount)
                return .rsa(bits: bits)
            }
            if alg.algorithm == CMSOID.ecPublicKey, let p = alg.parameters {
                return .ec(curve: try ASN1ObjectIdentifier(asn1Any: p))
            }
            return .other(alg.algorithm)
        }
    }

    private static func subjectKeyIdentifier(_ extensionsField: ASN1Node) throws -> [UInt8]? {
        try DER.explicitlyTagged(extensionsField, tagNumber: 3, tagClass: .contextSpecific) { exts in
            try DER.sequence(exts, identifier: .sequence) { list in
                var result: [UInt8]? = nil
                while let ext = list.next() {
                    let found: [UInt8]? = try DER.sequence(ext, identifier: .sequence) { e in
                        let oid = try ASN1ObjectIdentifier(derEncoded: &e)
                        guard oid == CMSOID.subjectKeyIdentifier else {
                            while e.next() != nil {}
                            return nil
                        }
                        // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
                        guard var valueNode = e.next() else { throw CMSError.malformed("extension without value") }
                        if valueNode.identifier == .boolean {
                            guard let next = e.next() else { throw CMSError.malformed("extension without value") }
                            valueNode = next
                        }
                        let value = try ASN1OctetString(derEncoded: valueNode)
                        let inner = try ASN1OctetString(derEncoded: DER.parse(value.bytes))
                        return Array(inner.bytes)
                    }
                    if let found { result = found }
                }
                return result
            }
        }
    }

    /// Whether a CMS SignerIdentifier / RecipientIdentifier names this certificate.
    public func matches(_ id: CertificateIdentifier) -> Bool {
        switch id {
        case .issuerAndSerialNumber(let ias):
            return ias.issuer.derBytesOrEmpty == issuer
                && ias.serialNumber.drop(while: { $0 == 0 }) == serialNumber.drop(while: { $0 == 0 })
        case .subjectKeyIdentifier(let ski):
            return subjectKeyIdentifier == ski
        }
    }

    public func issuerAndSerialNumber() throws -> IssuerAndSerialNumber {
        IssuerAndSerialNumber(issuer: issuerName, serialNumber: serialNumber)
    }

    /// A short description for errors: subject and serial.
    public var displayName: String {
        "subject \(DistinguishedNameText.render(subject)), serial \(serialNumber.map { String(format2: $0) }.joined())"
    }
}

extension ASN1Any {
    /// The DER of the value; empty if it cannot be serialised (it was parsed, so it can).
    public var derBytesOrEmpty: [UInt8] {
        var s = DER.Serializer()
        guard (try? s.serialize(self)) != nil else { return [] }
        return s.serializedBytes
    }
}

extension String {
    init(format2 byte: UInt8) {
        let hex = Array("0123456789abcdef")
        self = String([hex[Int(byte >> 4)], hex[Int(byte & 15)]])
    }
}

/// Renders a Name (RFC 5280 4.1.2.4) as text in the RFC 4514 style for messages.
enum DistinguishedNameText {
    static let shortNames: [ASN1ObjectIdentifier: String] = [
        [2, 5, 4, 3]: "CN", [2, 5, 4, 6]: "C", [2, 5, 4, 7]: "L", [2, 5, 4, 8]: "ST", [2, 5, 4, 10]: "O",
        [2, 5, 4, 11]: "OU", [1, 2, 840, 113549, 1, 9, 1]: "emailAddress",
    ]

    static func render(_ der: [UInt8]) -> String {
        guard let root = try? DER.parse(der) else { return "(unparseable name)" }
        var parts: [String] = []
        _ = try? DER.sequence(root, identifier: .sequence) { rdns in
            while let rdn = rdns.next() {
                try DER.set(rdn, identifier: .set) { atvs in
                    while let atv = atvs.next() {
                        try DER.sequence(atv, identifier: .sequence) { a in
                            let oid = try ASN1ObjectIdentifier(derEncoded: &a)
                            guard let v = a.next() else { return }
                            let text: String
                            if case .primitive(let bytes) = v.content {
                                text = String(decoding: bytes, as: UTF8.self)
                            } else {
                                text = "?"
                            }
                            parts.append("\(shortNames[oid] ?? oid.description)=\(text)")
                        }
                    }
                }
            }
        }
        return parts.reversed().joined(separator: ",")
    }
}

extension CertificateSummary {
    /// The subjectPublicKey BIT STRING contents of a SubjectPublicKeyInfo.
    public static func publicKeyBits(spki: [UInt8]) throws -> [UInt8] {
        try DER.sequence(try DER.parse(spki), identifier: .sequence) { n in
            _ = try AlgorithmIdentifier(berEncoded: &n)
            return Array(try ASN1BitString(derEncoded: &n).bytes)
        }
    }
}
