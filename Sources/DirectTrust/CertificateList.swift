import CryptographicMessageSyntax
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A parsed X.509 CRL (RFC 5280 5.1), keeping what revocation checking needs.
///
/// ```
/// CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
/// TBSCertList ::= SEQUENCE {
///   version Version OPTIONAL, signature AlgorithmIdentifier, issuer Name,
///   thisUpdate Time, nextUpdate Time OPTIONAL,
///   revokedCertificates SEQUENCE OF SEQUENCE {
///     userCertificate CertificateSerialNumber, revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
///   crlExtensions [0] EXPLICIT Extensions OPTIONAL }
/// ```
public struct CertificateList: Sendable {
    /// Limits: a CRL this large is refused before parsing.
    public static let maxBytes = 32 * 1024 * 1024
    public static let maxEntries = 2_000_000

    public let tbsBytes: ArraySlice<UInt8>
    public let signatureAlgorithm: Certificate.SignatureAlgorithm?
    public let signatureAlgorithmName: String
    public let signature: [UInt8]
    public let issuer: DistinguishedName
    public let thisUpdate: Date
    public let nextUpdate: Date?
    /// Revoked serial numbers (INTEGER content octets, minimal form).
    public let revokedSerials: Set<[UInt8]>

    /// Reads DER, or PEM ("X509 CRL"), as distribution points serve either.
    public init(bytes: [UInt8]) throws {
        guard bytes.count <= Self.maxBytes else { throw TrustError.malformed("CRL larger than \(Self.maxBytes) bytes") }
        var der = bytes
        if let text = String(validating: bytes.prefix(64 * 1024 * 1024), as: UTF8.self), text.contains("-----BEGIN X509 CRL-----") {
            guard let block = PEMText.firstBlock(text, labels: ["X509 CRL"]) else { throw TrustError.malformed("unreadable PEM CRL") }
            der = block
        }
        do {
            let root = try DER.parse(der)
            var parsed: (ArraySlice<UInt8>, AlgorithmIdentifier, [UInt8], DistinguishedName, Date, Date?, Set<[UInt8]>)!
            try DER.sequence(root, identifier: .sequence) { outer in
                guard let tbs = outer.next() else { throw TrustError.malformed("CRL without tbsCertList") }
                let alg = try AlgorithmIdentifier(berEncoded: &outer)
                let sig = try ASN1BitString(derEncoded: &outer)
                let fields = try DER.sequence(tbs, identifier: .sequence) { n -> (DistinguishedName, Date, Date?, Set<[UInt8]>) in
                    var copy = n
                    if let first = copy.next(), first.identifier == .integer { _ = n.next() }  // version
                    _ = try AlgorithmIdentifier(berEncoded: &n)
                    let issuer = try DistinguishedName(derEncoded: &n)
                    guard let thisNode = n.next() else { throw TrustError.malformed("CRL without thisUpdate") }
                    let thisUpdate = try Self.time(thisNode)
                    var nextUpdate: Date? = nil
                    var serials = Set<[UInt8]>()
                    while let node = n.next() {
                        if node.identifier == .utcTime || node.identifier == .generalizedTime {
                            nextUpdate = try Self.time(node)
                        } else if node.identifier == .sequence {
                            try DER.sequence(node, identifier: .sequence) { entries in
                                while let entry = entries.next() {
                                    let serial: ArraySlice<UInt8> = try DER.sequence(entry, identifier: .sequence) { e in
                                        let s = try ArraySlice<UInt8>(derEncoded: &e)
                                        while e.next() != nil {}
                                        return s
                                    }
                                    serials.insert(Self.minimal(serial))
                                    guard serials.count <= Self.maxEntries else {
                                        throw TrustError.malformed("CRL with more than \(Self.maxEntries) entries")
                                    }
                                }
                            }
                        }
                        // [0] crlExtensions: nothing we rely on.
                    }
                    return (issuer, thisUpdate, nextUpdate, serials)
                }
                parsed = (tbs.encodedBytes, alg, Array(sig.bytes), fields.0, fields.1, fields.2, fields.3)
            }
            tbsBytes = parsed.0
            signatureAlgorithmName = parsed.1.name
            signatureAlgorithm = Self.x509Algorithm(parsed.1.algorithm)
            signature = parsed.2
            issuer = parsed.3
            thisUpdate = parsed.4
            nextUpdate = parsed.5
            revokedSerials = parsed.6
        } catch let e as TrustError {
            throw e
        } catch {
            throw TrustError.malformed("CRL: \(error)")
        }
    }

    /// Whether `issuer` signed this CRL (RFC 5280 6.3.3 (f)).
    public func isSigned(by issuer: Certificate) -> Bool {
        guard let alg = signatureAlgorithm else { return false }
        return issuer.publicKey.isValidSignature(signature, for: tbsBytes, signatureAlgorithm: alg)
    }

    public func isRevoked(_ serial: Certificate.SerialNumber) -> Bool {
        revokedSerials.contains(Self.minimal(serial.bytes))
    }

    static func minimal(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        let b = bytes.drop { $0 == 0 }
        return b.isEmpty ? [0] : Array(b)
    }

    static func time(_ node: ASN1Node) throws -> Date {
        let t: UTCDateTime
        if node.identifier == .utcTime {
            let u = try UTCTime(derEncoded: node)
            t = UTCDateTime(year: u.year, month: u.month, day: u.day, hour: u.hours, minute: u.minutes, second: u.seconds)
        } else {
            let g = try GeneralizedTime(derEncoded: node)
            t = UTCDateTime(year: g.year, month: g.month, day: g.day, hour: g.hours, minute: g.minutes, second: g.seconds)
        }
        guard let d = t.date else { throw TrustError.malformed("CRL time out of range") }
        return d
    }

    /// The signature algorithms Direct accepts on a CRL (SHA-256 or stronger).
    static func x509Algorithm(_ oid: ASN1ObjectIdentifier) -> Certificate.SignatureAlgorithm? {
        switch oid {
        case CMSOID.sha256WithRSAEncryption: return .sha256WithRSAEncryption
        case CMSOID.sha384WithRSAEncryption: return .sha384WithRSAEncryption
        case CMSOID.sha512WithRSAEncryption: return .sha512WithRSAEncryption
        case CMSOID.ecdsaWithSHA256: return .ecdsaWithSHA256
        case CMSOID.ecdsaWithSHA384: return .ecdsaWithSHA384
        case CMSOID.ecdsaWithSHA512: return .ecdsaWithSHA512
        default: return nil
        }
    }
}
