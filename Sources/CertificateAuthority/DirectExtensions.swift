import SwiftASN1
import X509

/// The extensions swift-certificates has no type for, encoded here.
enum DirectExtensions {
    static let crlDistributionPointsOID: ASN1ObjectIdentifier = [2, 5, 29, 31]
    static let certificatePoliciesOID: ASN1ObjectIdentifier = [2, 5, 29, 32]
    static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]

    /// RFC 5280 4.2.1.13: one DistributionPoint whose fullName is the URL.
    ///
    /// ```
    /// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint
    /// DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
    /// DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }
    /// ```
    static func crlDistributionPoints(_ url: String) throws -> Certificate.Extension {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { s in
                    try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { s in
                        try s.serialize(GeneralName.uniformResourceIdentifier(url))
                    }
                }
            }
        }
        return Certificate.Extension(oid: crlDistributionPointsOID, critical: false, value: s.serializedBytes[...])
    }

    /// RFC 5280 4.2.1.4: the policy OIDs, without qualifiers.
    ///
    /// ```
    /// certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
    /// PolicyInformation ::= SEQUENCE { policyIdentifier CertPolicyId, policyQualifiers ... OPTIONAL }
    /// ```
    static func certificatePolicies(_ oids: [ASN1ObjectIdentifier]) throws -> Certificate.Extension {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            for oid in oids {
                try s.appendConstructedNode(identifier: .sequence) { s in try s.serialize(oid) }
            }
        }
        return Certificate.Extension(oid: certificatePoliciesOID, critical: false, value: s.serializedBytes[...])
    }

    /// The policy OIDs of a certificate (empty without the extension).
    static func policies(of cert: Certificate) throws -> [ASN1ObjectIdentifier] {
        guard let ext = cert.extensions[oid: certificatePoliciesOID] else { return [] }
        return try DER.sequence(of: PolicyInformationOID.self, identifier: .sequence, rootNode: DER.parse(ext.value)).map(\.oid)
    }

    /// The CRL distribution point URLs of a certificate.
    static func crlURLs(of cert: Certificate) throws -> [String] {
        guard let ext = cert.extensions[oid: crlDistributionPointsOID] else { return [] }
        var urls: [String] = []
        let root = try DER.parse(ext.value)
        try DER.sequence(root, identifier: .sequence) { points in
            while let point = points.next() {
                try DER.sequence(point, identifier: .sequence) { fields in
                    while let field = fields.next() {
                        guard field.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) else { continue }
                        try DER.explicitlyTagged(field, tagNumber: 0, tagClass: .contextSpecific) { name in
                            // fullName [0] IMPLICIT GeneralNames
                            guard name.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific),
                                case .constructed(let names) = name.content
                            else { return }
                            for n in names {
                                if case .uniformResourceIdentifier(let u) = try GeneralName(derEncoded: n) { urls.append(u) }
                            }
                        }
                    }
                }
            }
        }
        return urls
    }
}

/// PolicyInformation, keeping only the identifier.
struct PolicyInformationOID: DERParseable {
    let oid: ASN1ObjectIdentifier
    init(derEncoded node: ASN1Node) throws {
        oid = try DER.sequence(node, identifier: .sequence) { n in
            let oid = try ASN1ObjectIdentifier(derEncoded: &n)
            while n.next() != nil {}
            return oid
        }
    }
}
