import SwiftASN1

/// EncapsulatedContentInfo (RFC 5652 5.2).
///
/// ```
/// EncapsulatedContentInfo ::= SEQUENCE {
///   eContentType ContentType,
///   eContent [0] EXPLICIT OCTET STRING OPTIONAL }
/// ```
/// Absent `eContent` means a detached signature (multipart/signed).
public struct EncapsulatedContentInfo: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var eContentType: ASN1ObjectIdentifier
    public var eContent: ArraySlice<UInt8>?

    public init(eContentType: ASN1ObjectIdentifier, eContent: ArraySlice<UInt8>? = nil) {
        self.eContentType = eContentType
        self.eContent = eContent
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
            // BER peers (openssl cms -stream) send a constructed OCTET STRING;
            // swift-asn1 joins its segments.
            let content = try BER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try ASN1OctetString(berEncoded: $0).bytes
            }
            return EncapsulatedContentInfo(eContentType: type, eContent: content)
        }
    }

    /// The next EncapsulatedContentInfo in DER (see `SignedData.quickParse`), or nil.
    static func scan(_ outer: inout DERScanner) -> EncapsulatedContentInfo? {
        guard var fields = outer.enter(0x30), let type = fields.objectIdentifier() else { return nil }
        var content: ArraySlice<UInt8>? = nil
        if !fields.isAtEnd {
            guard var explicit = fields.enter(0xA0), let octets = explicit.octetString(), explicit.isAtEnd else { return nil }
            content = octets
        }
        guard fields.isAtEnd else { return nil }
        return EncapsulatedContentInfo(eContentType: type, eContent: content)
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        var fields: [DERNode] = [try .value(eContentType)]
        if let eContent { fields.append(.explicit(0, .primitive(.octetString, eContent))) }
        return .constructed(identifier, fields)
    }
}

/// SignerInfo (RFC 5652 5.3).
///
/// ```
/// SignerInfo ::= SEQUENCE {
///   version CMSVersion,
///   sid SignerIdentifier,
///   digestAlgorithm DigestAlgorithmIdentifier,
///   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
///   signatureAlgorithm SignatureAlgorithmIdentifier,
///   signature SignatureValue,
///   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
/// ```
public struct SignerInfo: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    static let signedAttrsTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let unsignedAttrsTag = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)

    public var version: Int
    public var sid: CertificateIdentifier
    public var digestAlgorithm: AlgorithmIdentifier
    public var signedAttrs: [CMSAttribute]?
    /// The signed attributes exactly as received, re-tagged as a universal
    /// SET: the bytes the signature covers (RFC 5652 5.4).
    public var signedAttrsForSignature: [UInt8]?
    public var signatureAlgorithm: AlgorithmIdentifier
    public var signature: ArraySlice<UInt8>
    public var unsignedAttrs: [CMSAttribute]?

    public init(
        sid: CertificateIdentifier, digestAlgorithm: AlgorithmIdentifier, signedAttrs: [CMSAttribute]?,
        signatureAlgorithm: AlgorithmIdentifier, signature: ArraySlice<UInt8>, signedAttrsEncoding: [UInt8]? = nil
    ) throws {
        // RFC 5652 5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
        self.version = sid.isSubjectKeyIdentifier ? 3 : 1
        self.sid = sid
        self.digestAlgorithm = digestAlgorithm
        self.signedAttrs = signedAttrs
        self.signatureAlgorithm = signatureAlgorithm
        self.signature = signature
        self.unsignedAttrs = nil
        if let signedAttrs {
            // The caller that signed has the encoding already (it is what was signed).
            self.signedAttrsForSignature = try signedAttrsEncoding ?? Self.encodeSignedAttributes(signedAttrs)
        }
    }

    /// RFC 5652 5.4: the DER of the SET OF attributes with the universal SET tag.
    public static func encodeSignedAttributes(_ attrs: [CMSAttribute]) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serializeSetOf(attrs)
        return s.serializedBytes
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            guard let sidNode = nodes.next() else { throw CMSError.malformed("SignerInfo without sid") }
            let sid = try CertificateIdentifier(berEncoded: sidNode)
            let digestAlgorithm = try AlgorithmIdentifier(berEncoded: &nodes)
            var signedAttrs: [CMSAttribute]? = nil
            var raw: [UInt8]? = nil
            var copy = nodes
            if let next = copy.next(), next.identifier == Self.signedAttrsTag {
                _ = nodes.next()
                signedAttrs = try BER.set(of: CMSAttribute.self, identifier: Self.signedAttrsTag, rootNode: next)
                // RFC 5652 5.4: the signature covers the DER of the attributes with
                // an EXPLICIT SET OF tag; signed attributes must be DER, so the
                // received bytes with the tag byte replaced are exactly that.
                var bytes = Array(next.encodedBytes)
                bytes[0] = 0x31
                raw = bytes
            }
            let signatureAlgorithm = try AlgorithmIdentifier(berEncoded: &nodes)
            let signature = try ASN1OctetString(berEncoded: &nodes).bytes
            let unsigned = try BER.optionalImplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) {
                try BER.set(of: CMSAttribute.self, identifier: Self.unsignedAttrsTag, rootNode: $0)
            }
            var info = try SignerInfo(
                sid: sid, digestAlgorithm: digestAlgorithm, signedAttrs: nil,
                signatureAlgorithm: signatureAlgorithm, signature: signature)
            info.version = version
            info.signedAttrs = signedAttrs
            info.signedAttrsForSignature = raw
            info.unsignedAttrs = unsigned
            return info
        }
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        var fields: [DERNode] = [try .value(version), try .value(sid), try .value(digestAlgorithm)]
        if var raw = signedAttrsForSignature {
            raw[0] = 0xA0  // [0] IMPLICIT, constructed
            fields.append(.encoded(raw[...]))
        }
        fields.append(try .value(signatureAlgorithm))
        fields.append(.primitive(.octetString, signature))
        if let unsignedAttrs { fields.append(try .setOf(unsignedAttrs, identifier: Self.unsignedAttrsTag)) }
        return .constructed(identifier, fields)
    }

    /// The value of a signed attribute that must be single-valued (RFC 5652 11).
    public func signedAttribute(_ oid: ASN1ObjectIdentifier) throws -> ASN1Any? {
        guard let attrs = signedAttrs else { return nil }
        let matching = attrs.filter { $0.type == oid }
        guard !matching.isEmpty else { return nil }
        guard matching.count == 1, matching[0].values.count == 1 else {
            throw CMSError.malformed("signed attribute \(oid) must occur once with one value")
        }
        return matching[0].values[0]
    }

    /// The next SignerInfo in DER (see `SignedData.quickParse`), or nil.
    static func scan(_ outer: inout DERScanner) -> SignerInfo? {
        guard var fields = outer.enter(0x30), let version = fields.smallInteger(), let sid = fields.certificateIdentifier(),
            let digestAlgorithm = fields.algorithmIdentifier()
        else { return nil }
        var signedAttrs: [CMSAttribute]? = nil
        var raw: [UInt8]? = nil
        if fields.nextTag == 0xA0 {
            let at = fields.position
            guard let attrs = fields.attributes(0xA0) else { return nil }
            signedAttrs = attrs
            // RFC 5652 5.4: the signature covers these bytes with the SET OF tag.
            var bytes = Array(fields.bytes[at..<fields.position])
            bytes[0] = 0x31
            raw = bytes
        }
        guard let signatureAlgorithm = fields.algorithmIdentifier(), let signature = fields.octetString() else { return nil }
        var unsigned: [CMSAttribute]? = nil
        if fields.nextTag == 0xA1 {
            guard let attrs = fields.attributes(0xA1) else { return nil }
            unsigned = attrs
        }
        guard fields.isAtEnd,
            var info = try? SignerInfo(
                sid: sid, digestAlgorithm: digestAlgorithm, signedAttrs: nil, signatureAlgorithm: signatureAlgorithm,
                signature: signature)
        else { return nil }
        info.version = version
        info.signedAttrs = signedAttrs
        info.signedAttrsForSignature = raw
        info.unsignedAttrs = unsigned
        return info
    }
}

/// SignedData (RFC 5652 5.1).
///
/// ```
/// SignedData ::= SEQUENCE {
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }
/// ```
public struct SignedData: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    static let certificatesTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let crlsTag = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
    /// Limits on what one SignedData may carry.
    public static let maxCertificates = 64
    public static let maxSigners = 16

    public var version: Int
    public var digestAlgorithms: [AlgorithmIdentifier]
    public var encapContentInfo: EncapsulatedContentInfo
    /// DER of each X.509 certificate in `certificates` (other CertificateChoices are skipped).
    public var certificates: [[UInt8]]
    /// RevocationInfoChoices as received, kept for the trust layer.
    public var crls: [ASN1Any]
    public var signerInfos: [SignerInfo]

    public init(
        digestAlgorithms: [AlgorithmIdentifier], encapContentInfo: EncapsulatedContentInfo,
        certificates: [[UInt8]], signerInfos: [SignerInfo]
    ) {
        // RFC 5652 5.1: version 3 if any SignerInfo is version 3 or the
        // content is not id-data; 1 otherwise (no attribute certificates here).
        let needs3 = signerInfos.contains { $0.version == 3 } || encapContentInfo.eContentType != CMSOID.data
        self.version = needs3 ? 3 : 1
        self.digestAlgorithms = digestAlgorithms
        self.encapContentInfo = encapContentInfo
        self.certificates = certificates
        self.crls = []
        self.signerInfos = signerInfos
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            let digestAlgorithms = try BER.set(of: AlgorithmIdentifier.self, identifier: .set, nodes: &nodes)
            let encap = try EncapsulatedContentInfo(berEncoded: &nodes)
            var certificates: [[UInt8]] = []
            var crls: [ASN1Any] = []
            var copy = nodes
            if let next = copy.next(), next.identifier == Self.certificatesTag {
                _ = nodes.next()
                try BER.set(next, identifier: Self.certificatesTag) { certNodes in
                    while let c = certNodes.next() {
                        // CertificateChoices: only the plain Certificate (a SEQUENCE) is used.
                        if c.identifier == .sequence { certificates.append(Array(c.encodedBytes)) }
                        guard certificates.count <= Self.maxCertificates else {
                            throw CMSError.limitExceeded("more than \(Self.maxCertificates) certificates in SignedData")
                        }
                    }
                }
            }
            copy = nodes
            if let next = copy.next(), next.identifier == Self.crlsTag {
                _ = nodes.next()
                try BER.set(next, identifier: Self.crlsTag) { crlNodes in
                    while let c = crlNodes.next() { crls.append(ASN1Any(berEncoded: c)) }
                }
            }
            let signers = try BER.set(of: SignerInfo.self, identifier: .set, nodes: &nodes)
            guard signers.count <= Self.maxSigners else {
                throw CMSError.limitExceeded("more than \(Self.maxSigners) signers in SignedData")
            }
            var sd = SignedData(
                digestAlgorithms: digestAlgorithms, encapContentInfo: encap, certificates: certificates,
                signerInfos: signers)
            sd.version = version
            sd.crls = crls
            return sd
        }
    }

    /// SignedData read from DER without swift-asn1's node tree (see
    /// `DERScanner`): the certificates are cut out as bytes (their fields are
    /// read later, once per certificate, through the certificate cache) and
    /// the rest is read field by field. Anything else, or anything the full
    /// parse would refuse, returns nil: the full parse then reads it or
    /// reports the error.
    public static func quickParse(_ b: ArraySlice<UInt8>) -> SignedData? {
        guard var fields = DERScanner(wholeOf: b, tag: 0x30), let version = fields.smallInteger(),
            var digestSet = fields.enter(0x31)
        else { return nil }
        var digestAlgorithms: [AlgorithmIdentifier] = []
        while !digestSet.isAtEnd {
            guard let alg = digestSet.algorithmIdentifier() else { return nil }
            digestAlgorithms.append(alg)
        }
        guard let encap = EncapsulatedContentInfo.scan(&fields) else { return nil }
        var certificates: [[UInt8]] = []
        if fields.nextTag == 0xA0, var set = fields.enter(0xA0) {
            while !set.isAtEnd {
                guard let choice = set.next(), DERScanner.isWellFormed(b, choice, depth: 0),
                    certificates.count < maxCertificates
                else { return nil }
                // CertificateChoices: only the plain Certificate (a SEQUENCE) is used.
                if choice.tag == 0x30 { certificates.append(Array(set.encoding(of: choice))) }
            }
        }
        var crls: [ASN1Any] = []
        if fields.nextTag == 0xA1, var set = fields.enter(0xA1) {
            while !set.isAtEnd {
                guard let crl = set.any() else { return nil }
                crls.append(crl)
            }
        }
        guard var signerSet = fields.enter(0x31) else { return nil }
        var signers: [SignerInfo] = []
        while !signerSet.isAtEnd {
            guard signers.count < maxSigners, let signer = SignerInfo.scan(&signerSet) else { return nil }
            signers.append(signer)
        }
        guard fields.isAtEnd else { return nil }
        var sd = SignedData(
            digestAlgorithms: digestAlgorithms, encapContentInfo: encap, certificates: certificates, signerInfos: signers)
        sd.version = version
        sd.crls = crls
        return sd
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        var fields: [DERNode] = [try .value(version), try .setOf(digestAlgorithms), try encapContentInfo.derNode()]
        if !certificates.isEmpty {
            // A SET OF in DER is sorted by encoding (X.690 11.6).
            let sorted = certificates.sorted { $0.lexicographicallyPrecedes($1) }
            fields.append(.constructed(Self.certificatesTag, sorted.map { .encoded($0[...]) }))
        }
        if !crls.isEmpty { fields.append(try .setOf(crls, identifier: Self.crlsTag)) }
        fields.append(.setOf(nodes: try signerInfos.map { try $0.derNode() }))
        return .constructed(identifier, fields)
    }
}
