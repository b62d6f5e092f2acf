import SwiftASN1

/// KeyTransRecipientInfo (RFC 5652 6.2.1).
///
/// ```
/// KeyTransRecipientInfo ::= SEQUENCE {
///   version CMSVersion,  -- always set to 0 or 2
///   rid RecipientIdentifier,
///   keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
///   encryptedKey EncryptedKey }
/// ```
public struct KeyTransRecipientInfo: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var version: Int
    public var rid: CertificateIdentifier
    public var keyEncryptionAlgorithm: AlgorithmIdentifier
    public var encryptedKey: ArraySlice<UInt8>

    public init(rid: CertificateIdentifier, keyEncryptionAlgorithm: AlgorithmIdentifier, encryptedKey: ArraySlice<UInt8>) {
        // RFC 5652 6.2.1: 0 with issuerAndSerialNumber, 2 with subjectKeyIdentifier.
        self.version = rid.isSubjectKeyIdentifier ? 2 : 0
        self.rid = rid
        self.keyEncryptionAlgorithm = keyEncryptionAlgorithm
        self.encryptedKey = encryptedKey
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            guard let ridNode = nodes.next() else { throw CMSError.malformed("KeyTransRecipientInfo without rid") }
            let rid = try CertificateIdentifier(berEncoded: ridNode)
            let alg = try AlgorithmIdentifier(berEncoded: &nodes)
            let key = try ASN1OctetString(berEncoded: &nodes).bytes
            var info = KeyTransRecipientInfo(rid: rid, keyEncryptionAlgorithm: alg, encryptedKey: key)
            info.version = version
            return info
        }
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        .constructed(identifier, [
            try .value(version), try .value(rid), try .value(keyEncryptionAlgorithm),
            .primitive(.octetString, encryptedKey),
        ])
    }
}

/// RecipientInfo (RFC 5652 6.2). Only key transport is implemented; the other
/// choices are kept so that the error can name them.
///
/// ```
/// RecipientInfo ::= CHOICE {
///   ktri KeyTransRecipientInfo,
///   kari [1] KeyAgreeRecipientInfo,
///   kekri [2] KEKRecipientInfo,
///   pwri [3] PasswordRecipientinfo,
///   ori [4] OtherRecipientInfo }
/// ```
public enum RecipientInfo: Hashable, Sendable, BERParseable, DERSerializable {
    case keyTransport(KeyTransRecipientInfo)
    case other(tag: UInt, encoded: ASN1Any)

    public init(derEncoded node: ASN1Node) throws { try self.init(berEncoded: node) }

    public init(berEncoded node: ASN1Node) throws {
        if node.identifier == .sequence {
            self = .keyTransport(try KeyTransRecipientInfo(berEncoded: node))
        } else {
            self = .other(tag: node.identifier.tagNumber, encoded: ASN1Any(berEncoded: node))
        }
    }

    public func serialize(into coder: inout DER.Serializer) throws {
        switch self {
        case .keyTransport(let k): try coder.serialize(k)
        case .other(_, let any): try coder.serialize(any)
        }
    }

    public func derNode() throws -> DERNode {
        switch self {
        case .keyTransport(let k): return try k.derNode()
        case .other(_, let any): return try .value(any)
        }
    }

    public var typeName: String {
        switch self {
        case .keyTransport: return "key transport (ktri)"
        case .other(1, _): return "key agreement (kari)"
        case .other(2, _): return "key encryption key (kekri)"
        case .other(3, _): return "password (pwri)"
        case .other(let t, _): return "other recipient info [\(t)]"
        }
    }
}

/// EncryptedContentInfo (RFC 5652 6.1).
///
/// ```
/// EncryptedContentInfo ::= SEQUENCE {
///   contentType ContentType,
///   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
///   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
/// ```
public struct EncryptedContentInfo: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    static let contentTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    public var contentType: ASN1ObjectIdentifier
    public var contentEncryptionAlgorithm: AlgorithmIdentifier
    public var encryptedContent: ArraySlice<UInt8>?

    public init(contentType: ASN1ObjectIdentifier, contentEncryptionAlgorithm: AlgorithmIdentifier, encryptedContent: ArraySlice<UInt8>?) {
        self.contentType = contentType
        self.contentEncryptionAlgorithm = contentEncryptionAlgorithm
        self.encryptedContent = encryptedContent
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
            let alg = try AlgorithmIdentifier(berEncoded: &nodes)
            var content: ArraySlice<UInt8>? = nil
            if let n = nodes.next() {
                guard n.identifier == Self.contentTag else {
                    throw CMSError.malformed("EncryptedContentInfo: unexpected field \(n.identifier)")
                }
                // Primitive in DER; constructed from segments in BER (openssl -stream).
                content = try ASN1OctetString(berEncoded: n, withIdentifier: Self.contentTag).bytes
            }
            return EncryptedContentInfo(contentType: type, contentEncryptionAlgorithm: alg, encryptedContent: content)
        }
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        var fields: [DERNode] = [try .value(contentType), try .value(contentEncryptionAlgorithm)]
        // [0] IMPLICIT OCTET STRING: primitive.
        if let encryptedContent { fields.append(.primitive(Self.contentTag, encryptedContent)) }
        return .constructed(identifier, fields)
    }
}

/// Parses the optional [0] originatorInfo, which we do not use.
private func skipOptional(_ nodes: inout ASN1NodeCollection.Iterator, tag: UInt) {
    var copy = nodes
    if let n = copy.next(), n.identifier == ASN1Identifier(tagWithNumber: tag, tagClass: .contextSpecific) {
        _ = nodes.next()
    }
}

/// Limit on recipients in one message.
public let maxRecipientInfos = 256

/// EnvelopedData (RFC 5652 6.1).
///
/// ```
/// EnvelopedData ::= SEQUENCE {
///   version CMSVersion,
///   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
///   recipientInfos RecipientInfos,
///   encryptedContentInfo EncryptedContentInfo,
///   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
/// ```
public struct EnvelopedData: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var version: Int
    public var recipientInfos: [RecipientInfo]
    public var encryptedContentInfo: EncryptedContentInfo

    public init(recipientInfos: [RecipientInfo], encryptedContentInfo: EncryptedContentInfo) {
        // RFC 5652 6.1: 2 when any ktri is version 2, else 0 (no originatorInfo,
        // no unprotected attributes, only ktri recipients here).
        let anyV2 = recipientInfos.contains {
            if case .keyTransport(let k) = $0 { return k.version == 2 }
            return true
        }
        self.version = anyV2 ? 2 : 0
        self.recipientInfos = recipientInfos
        self.encryptedContentInfo = encryptedContentInfo
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            skipOptional(&nodes, tag: 0)
            let ris = try BER.set(of: RecipientInfo.self, identifier: .set, nodes: &nodes)
            guard ris.count <= maxRecipientInfos else {
                throw CMSError.limitExceeded("more than \(maxRecipientInfos) recipients")
            }
            let eci = try EncryptedContentInfo(berEncoded: &nodes)
            skipOptional(&nodes, tag: 1)
            var ed = EnvelopedData(recipientInfos: ris, encryptedContentInfo: eci)
            ed.version = version
            return ed
        }
    }

    /// EnvelopedData read from DER without swift-asn1's node tree (see
    /// `DERScanner`), when it has only key-transport recipients and no
    /// originator info. Anything else, or anything the full parse would
    /// refuse, returns nil: the full parse then reads it or reports the error.
    public static func quickParse(_ b: ArraySlice<UInt8>) -> EnvelopedData? {
        guard var fields = DERScanner(wholeOf: b, tag: 0x30), let version = fields.smallInteger(),
            var set = fields.enter(0x31)
        else { return nil }
        var recipients: [RecipientInfo] = []
        while !set.isAtEnd {
            guard recipients.count < maxRecipientInfos, var ktri = set.enter(0x30), let v = ktri.smallInteger(),
                let rid = ktri.certificateIdentifier(), let alg = ktri.algorithmIdentifier(),
                let key = ktri.octetString(), ktri.isAtEnd
            else { return nil }
            var info = KeyTransRecipientInfo(rid: rid, keyEncryptionAlgorithm: alg, encryptedKey: key)
            info.version = v
            recipients.append(.keyTransport(info))
        }
        guard var eci = fields.enter(0x30), let type = eci.objectIdentifier(), let alg = eci.algorithmIdentifier()
        else { return nil }
        var content: ArraySlice<UInt8>? = nil
        if !eci.isAtEnd {
            // [0] IMPLICIT OCTET STRING, primitive in DER.
            guard let c = eci.octetString(tag: 0x80) else { return nil }
            content = c
        }
        guard eci.isAtEnd else { return nil }
        // unprotectedAttrs [1], not used: skipped as the full parse skips it, once it is known to be well formed.
        if fields.nextTag == 0xA1 {
            guard let attrs = fields.next(0xA1), DERScanner.isWellFormed(b, attrs, depth: 0) else { return nil }
        }
        guard fields.isAtEnd else { return nil }
        var ed = EnvelopedData(
            recipientInfos: recipients,
            encryptedContentInfo: EncryptedContentInfo(contentType: type, contentEncryptionAlgorithm: alg, encryptedContent: content))
        ed.version = version
        return ed
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        .constructed(identifier, [
            try .value(version), .setOf(nodes: try recipientInfos.map { try $0.derNode() }), try encryptedContentInfo.derNode(),
        ])
    }
}

/// AuthEnvelopedData (RFC 5083 2.1).
///
/// ```
/// AuthEnvelopedData ::= SEQUENCE {
///   version CMSVersion,
///   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
///   recipientInfos RecipientInfos,
///   authEncryptedContentInfo EncryptedContentInfo,
///   authAttrs [1] IMPLICIT AuthAttributes OPTIONAL,
///   mac MessageAuthenticationCode,
///   unauthAttrs [2] IMPLICIT UnauthAttributes OPTIONAL }
/// ```
public struct AuthEnvelopedData: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    static let authAttrsTag = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
    public var version: Int
    public var recipientInfos: [RecipientInfo]
    public var authEncryptedContentInfo: EncryptedContentInfo
    /// The authenticated attributes as received, re-tagged as a universal SET
    /// (RFC 5083 2.2: the AAD).
    public var authAttrsForAAD: [UInt8]?
    public var mac: ArraySlice<UInt8>

    public init(recipientInfos: [RecipientInfo], authEncryptedContentInfo: EncryptedContentInfo, mac: ArraySlice<UInt8>) {
        self.version = 0  // RFC 5083 2.1: always 0.
        self.recipientInfos = recipientInfos
        self.authEncryptedContentInfo = authEncryptedContentInfo
        self.authAttrsForAAD = nil
        self.mac = mac
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            skipOptional(&nodes, tag: 0)
            let ris = try BER.set(of: RecipientInfo.self, identifier: .set, nodes: &nodes)
            guard ris.count <= maxRecipientInfos else {
                throw CMSError.limitExceeded("more than \(maxRecipientInfos) recipients")
            }
            let eci = try EncryptedContentInfo(berEncoded: &nodes)
            var aad: [UInt8]? = nil
            var copy = nodes
            if let n = copy.next(), n.identifier == Self.authAttrsTag {
                _ = nodes.next()
                var bytes = Array(n.encodedBytes)
                bytes[0] = 0x31
                aad = bytes
            }
            let mac = try ASN1OctetString(berEncoded: &nodes).bytes
            skipOptional(&nodes, tag: 2)
            var ad = AuthEnvelopedData(recipientInfos: ris, authEncryptedContentInfo: eci, mac: mac)
            ad.version = version
            ad.authAttrsForAAD = aad
            return ad
        }
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        var fields: [DERNode] = [
            try .value(version), .setOf(nodes: try recipientInfos.map { try $0.derNode() }), try authEncryptedContentInfo.derNode(),
        ]
        if var aad = authAttrsForAAD {
            aad[0] = 0xA1  // [1] IMPLICIT, constructed
            fields.append(.encoded(aad[...]))
        }
        fields.append(.primitive(.octetString, mac))
        return .constructed(identifier, fields)
    }
}

/// GCMParameters (RFC 5084 3.2).
///
/// ```
/// GCMParameters ::= SEQUENCE {
///   aes-nonce OCTET STRING, -- recommended size is 12 octets
///   aes-ICVlen AES-GCM-ICVlen DEFAULT 12 }
/// ```
public struct GCMParameters: CMSCodable, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var nonce: ArraySlice<UInt8>
    public var icvLength: Int

    public init(nonce: ArraySlice<UInt8>, icvLength: Int) {
        self.nonce = nonce
        self.icvLength = icvLength
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let nonce = try ASN1OctetString(berEncoded: &nodes).bytes
            let icv = try nodes.next().map { try Int(berEncoded: $0) } ?? 12
            return GCMParameters(nonce: nonce, icvLength: icv)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(ASN1OctetString(contentBytes: nonce))
            if icvLength != 12 { try coder.serialize(icvLength) }  // DER omits DEFAULT values.
        }
    }
}

/// RSAES-OAEP-params (RFC 8017 A.2.1, RFC 4055 4.1).
///
/// ```
/// RSAES-OAEP-params ::= SEQUENCE {
///   hashFunc    [0] AlgorithmIdentifier DEFAULT sha1Identifier,
///   maskGenFunc [1] AlgorithmIdentifier DEFAULT mgf1SHA1Identifier,
///   pSourceFunc [2] AlgorithmIdentifier DEFAULT pSpecifiedEmptyIdentifier }
/// ```
public struct RSAESOAEPParams: CMSCodable, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var hash: ASN1ObjectIdentifier
    public var mgfHash: ASN1ObjectIdentifier
    /// The label (empty unless a pSpecified value is given).
    public var label: ArraySlice<UInt8>

    public init(hash: ASN1ObjectIdentifier, mgfHash: ASN1ObjectIdentifier, label: ArraySlice<UInt8> = []) {
        self.hash = hash
        self.mgfHash = mgfHash
        self.label = label
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let hash = try BER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try AlgorithmIdentifier(berEncoded: $0).algorithm
            } ?? CMSOID.sha1
            let mgf = try BER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) {
                try AlgorithmIdentifier(berEncoded: $0)
            }
            var mgfHash = CMSOID.sha1
            if let mgf {
                guard mgf.algorithm == CMSOID.mgf1, let p = mgf.parameters else {
                    throw CMSError.unsupportedAlgorithm("OAEP mask generation function \(mgf.algorithm)")
                }
                mgfHash = try AlgorithmIdentifier(berASN1Any: p).algorithm
            }
            let label: ArraySlice<UInt8> = try BER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) { n in
                let alg = try AlgorithmIdentifier(berEncoded: n)
                guard alg.algorithm == CMSOID.pSpecified else {
                    throw CMSError.unsupportedAlgorithm("OAEP label source \(alg.algorithm)")
                }
                return try alg.parameters.map { try ASN1OctetString(berASN1Any: $0).bytes } ?? []
            } ?? []
            return RSAESOAEPParams(hash: hash, mgfHash: mgfHash, label: label)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            if hash != CMSOID.sha1 {
                try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                    try coder.serialize(AlgorithmIdentifier(hash))
                }
            }
            if mgfHash != CMSOID.sha1 {
                try coder.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) { coder in
                    try coder.serialize(AlgorithmIdentifier(CMSOID.mgf1, parameters: ASN1Any(erasing: AlgorithmIdentifier(mgfHash))))
                }
            }
            if !label.isEmpty {
                try coder.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { coder in
                    try coder.serialize(AlgorithmIdentifier(CMSOID.pSpecified, parameters: ASN1Any(erasing: ASN1OctetString(contentBytes: label))))
                }
            }
        }
    }
}
