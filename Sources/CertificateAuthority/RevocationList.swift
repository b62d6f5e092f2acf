import CryptographicMessageSyntax
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Issues X.509 v2 CRLs (RFC 5280 5).
///
/// ```
/// CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm, signatureValue BIT STRING }
/// TBSCertList ::= SEQUENCE {
///   version Version OPTIONAL, -- v2
///   signature AlgorithmIdentifier, issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL,
///   revokedCertificates SEQUENCE OF SEQUENCE {
///     userCertificate CertificateSerialNumber, revocationDate Time, crlEntryExtensions OPTIONAL } OPTIONAL,
///   crlExtensions [0] EXPLICIT Extensions OPTIONAL }
/// ```
public enum RevocationList {
    public struct Entry: Sendable, Hashable {
        /// The serial number's INTEGER content octets (big-endian, as in the certificate).
        public var serial: [UInt8]
        public var revocationDate: Date
        public init(serial: [UInt8], revocationDate: Date) {
            self.serial = serial
            self.revocationDate = revocationDate
        }
    }

    /// Limit on entries in one CRL we write.
    public static let maxEntries = 1_000_000

    /// The DER of a CRL signed by `issuer` (which must allow cRLSign).
    /// `crlNumber` must grow with every CRL the issuer publishes (RFC 5280 5.2.3).
    public static func issue(
        issuer: Issuer, entries: [Entry], thisUpdate: Date, nextUpdate: Date, crlNumber: UInt64
    ) throws -> [UInt8] {
        guard thisUpdate < nextUpdate else { throw CAError.invalidArgument("nextUpdate must be after thisUpdate") }
        guard entries.count <= maxEntries else { throw CAError.invalidArgument("more than \(maxEntries) revoked serials") }
        let sigAlg = try issuer.key.directSignatureAlgorithm
        let algorithm = try algorithmIdentifier(sigAlg)
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(1)  // RFC 5280 5.1.2.1: v2, required when extensions are present
            try s.serialize(algorithm)
            try s.serialize(issuer.certificate.subject)
            try s.serialize(UTCDateTime(thisUpdate).asn1Time())
            try s.serialize(UTCDateTime(nextUpdate).asn1Time())
            if !entries.isEmpty {
                try s.appendConstructedNode(identifier: .sequence) { s in
                    for e in entries {
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try s.serialize(ArraySlice(Self.normalizedSerial(e.serial)))
                            try s.serialize(UTCDateTime(e.revocationDate).asn1Time())
                        }
                    }
                }
            }
            try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                try s.appendConstructedNode(identifier: .sequence) { s in
                    // RFC 5280 5.2.1 / 5.2.3: AKI and CRL number are required in a conforming CRL.
                    try s.serialize(Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: issuer.subjectKeyIdentifier), critical: false))
                    var n = DER.Serializer()
                    try n.serialize(Self.integerBytes(crlNumber)[...])
                    try s.serialize(Certificate.Extension(oid: DirectExtensions.crlNumberOID, critical: false, value: n.serializedBytes[...]))
                }
            }
        }
        let tbsBytes = tbs.serializedBytes
        let signature = try issuer.key.sign(bytes: tbsBytes, signatureAlgorithm: sigAlg)
        var out = DER.Serializer()
        try out.appendConstructedNode(identifier: .sequence) { s in
            s.serializeRawBytes(tbsBytes)
            try s.serialize(algorithm)
            try s.serialize(ASN1BitString(bytes: signature.rawRepresentation[...]))
        }
        return out.serializedBytes
    }

    /// RFC 5280 4.1.1.2 / RFC 5754 3.2 / RFC 5758 3.2: the AlgorithmIdentifier.
    static func algorithmIdentifier(_ alg: Certificate.SignatureAlgorithm) throws -> AlgorithmIdentifier {
        switch alg {
        case .sha256WithRSAEncryption: return .withNull(CMSOID.sha256WithRSAEncryption)
        case .ecdsaWithSHA256: return AlgorithmIdentifier(CMSOID.ecdsaWithSHA256)
        case .ecdsaWithSHA384: return AlgorithmIdentifier(CMSOID.ecdsaWithSHA384)
        default: throw CAError.unsupported("signature algorithm \(alg)")
        }
    }

    /// INTEGER content octets: minimal, and positive (a leading 0 when the top bit is set).
    static func normalizedSerial(_ bytes: [UInt8]) -> [UInt8] {
        var b = Array(bytes.drop { $0 == 0 })
        if b.isEmpty { return [0] }
        if b[0] & 0x80 != 0 { b.insert(0, at: 0) }
        return b
    }

    static func integerBytes(_ n: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        var v = n
        repeat {
            bytes.insert(UInt8(v & 0xFF), at: 0)
            v >>= 8
        } while v > 0
        return normalizedSerial(bytes)
    }

    /// PEM of a CRL ("X509 CRL", RFC 7468 6).
    public static func pem(_ der: [UInt8]) -> String {
        PEMDocument(type: "X509 CRL", derBytes: der).pemString + "\n"
    }
}
