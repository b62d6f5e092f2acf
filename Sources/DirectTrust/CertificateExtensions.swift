import SwiftASN1
import X509

/// certificatePolicies (RFC 5280 4.2.1.4): the policy identifiers asserted.
///
/// ```
/// certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
/// PolicyInformation ::= SEQUENCE { policyIdentifier CertPolicyId, policyQualifiers SEQUENCE OF ... OPTIONAL }
/// ```
enum CertificatePolicyOIDs {
    static let oid: ASN1ObjectIdentifier = [2, 5, 29, 32]
    static let maxPolicies = 64

    static func read(_ cert: Certificate) throws -> [ASN1ObjectIdentifier] {
        guard let ext = cert.extensions[oid: oid] else { return [] }
        var oids: [ASN1ObjectIdentifier] = []
        try DER.sequence(DER.parse(ext.value), identifier: .sequence) { list in
            while let info = list.next() {
                let id = try DER.sequence(info, identifier: .sequence) { n in
                    let id = try ASN1ObjectIdentifier(derEncoded: &n)
                    while n.next() != nil {}
                    return id
                }
                oids.append(id)
                guard oids.count <= maxPolicies else { throw TrustError.malformed("more than \(maxPolicies) certificate policies") }
            }
        }
        return oids
    }
}

/// cRLDistributionPoints (RFC 5280 4.2.1.13): the fullName URIs.
///
/// ```
/// CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
/// DistributionPoint ::= SEQUENCE {
///   distributionPoint [0] DistributionPointName OPTIONAL, reasons [1] ReasonFlags OPTIONAL, cRLIssuer [2] GeneralNames OPTIONAL }
/// DistributionPointName ::= CHOICE { fullName [0] GeneralNames, nameRelativeToCRLIssuer [1] RelativeDistinguishedName }
/// ```
enum CRLDistributionPointURLs {
    static let oid: ASN1ObjectIdentifier = [2, 5, 29, 31]
    static let maxURLs = 16

    static func read(_ cert: Certificate) throws -> [String] {
        guard let ext = cert.extensions[oid: oid] else { return [] }
        var urls: [String] = []
        let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        try DER.sequence(DER.parse(ext.value), identifier: .sequence) { points in
            while let point = points.next() {
                try DER.sequence(point, identifier: .sequence) { fields in
                    while let field = fields.next() {
                        guard field.identifier == tag0 else { continue }
                        try DER.explicitlyTagged(field, tagNumber: 0, tagClass: .contextSpecific) { name in
                            guard name.identifier == tag0, case .constructed(let names) = name.content else { return }
                            for n in names {
                                if case .uniformResourceIdentifier(let u) = try GeneralName(derEncoded: n) { urls.append(u) }
                            }
                        }
                    }
                }
                guard urls.count <= maxURLs else { throw TrustError.malformed("more than \(maxURLs) CRL distribution points") }
            }
        }
        return urls
    }
}
