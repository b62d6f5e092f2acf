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
}
