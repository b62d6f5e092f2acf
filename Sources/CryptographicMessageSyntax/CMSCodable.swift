import SwiftASN1

/// A CMS structure: parsed from BER (which includes DER: peers send both,
/// RFC 5652 1.1 requires accepting BER), always written as DER.
public protocol CMSCodable: BERImplicitlyTaggable, Sendable {
    /// A quicker reading of a common encoding, or nil to use the full BER
    /// parse (which also reports what is malformed).
    static func quickParse(_ bytes: ArraySlice<UInt8>) -> Self?
}

extension CMSCodable {
    public init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    /// The DER encoding.
    public func derBytes() throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(self)
        return s.serializedBytes
    }

    /// Parses BER or DER bytes, turning swift-asn1's errors into `CMSError.malformed`
    /// that names the structure.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> Self {
        try parseBER(ArraySlice(bytes))
    }

    public static func quickParse(_ bytes: ArraySlice<UInt8>) -> Self? { nil }

    /// `bytes` parsed as `Self` (by `quickParse` when it can); swift-asn1's
    /// errors become `CMSError.malformed` naming `Self`.
    static func parseBER(_ bytes: ArraySlice<UInt8>) throws -> Self {
        if let quick = quickParse(bytes) { return quick }
        do {
            return try Self(berEncoded: BER.parse(bytes))
        } catch let e as CMSError {
            throw e
        } catch {
            throw CMSError.malformed("\(Self.self): \(error)")
        }
    }
}

/// AlgorithmIdentifier (RFC 5280 4.1.1.2).
///
/// ```
/// AlgorithmIdentifier ::= SEQUENCE {
///   algorithm   OBJECT IDENTIFIER,
///   parameters  ANY DEFINED BY algorithm OPTIONAL }
/// ```
public struct AlgorithmIdentifier: CMSCodable, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var algorithm: ASN1ObjectIdentifier
    public var parameters: ASN1Any?

    public init(_ algorithm: ASN1ObjectIdentifier, parameters: ASN1Any? = nil) {
        self.algorithm = algorithm
        self.parameters = parameters
    }

    /// With an explicit NULL parameter, as RSA algorithms are written (RFC 3370 2.1, RFC 4055 2.1).
    public static func withNull(_ algorithm: ASN1ObjectIdentifier) -> AlgorithmIdentifier {
        AlgorithmIdentifier(algorithm, parameters: try? ASN1Any(erasing: ASN1Null()))
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let oid = try ASN1ObjectIdentifier(berEncoded: &nodes)
            let params = nodes.next().map { ASN1Any(berEncoded: $0) }
            return AlgorithmIdentifier(oid, parameters: params)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(algorithm)
            if let parameters { try coder.serialize(parameters) }
        }
    }

    public var name: String { CMSOID.name(algorithm) }
}

/// ContentInfo (RFC 5652 3).
///
/// ```
/// ContentInfo ::= SEQUENCE {
///   contentType ContentType,
///   content [0] EXPLICIT ANY DEFINED BY contentType }
/// ```
public struct ContentInfo: CMSCodable, DERNodeConvertible, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var contentType: ASN1ObjectIdentifier
    /// The content: as received (`.encoded`, BER or DER, not re-encoded) or
    /// as built for writing.
    public var content: DERNode

    public init(contentType: ASN1ObjectIdentifier, content: DERNode) {
        self.contentType = contentType
        self.content = content
    }

    public init(contentType: ASN1ObjectIdentifier, wrapping value: some CMSCodable & DERNodeConvertible) throws {
        self.contentType = contentType
        self.content = try value.derNode()
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
            let content = try BER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                DERNode.encoded($0.encodedBytes)
            }
            return ContentInfo(contentType: type, content: content)
        }
    }

    public func derNode(identifier: ASN1Identifier) throws -> DERNode {
        .constructed(identifier, [try .value(contentType), .explicit(0, content)])
    }

    /// Parses a ContentInfo without parsing its content, which `unwrap`
    /// parses once, as the type its content type names. swift-asn1 builds
    /// the node tree of everything it parses, so a full parse here would
    /// parse a SignedData (with its certificates) twice. What the shallow
    /// reader does not handle (indefinite lengths, as `openssl cms -stream`
    /// writes, high tag numbers, anything malformed) goes to the full parse,
    /// which reports the error.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> ContentInfo {
        let slice = ArraySlice(bytes)
        return try shallow(slice) ?? parseBER(slice)
    }

    static func shallow(_ b: ArraySlice<UInt8>) -> ContentInfo? {
        // RFC 5652 3: SEQUENCE { OBJECT IDENTIFIER, [0] EXPLICIT content }, nothing after it.
        guard let outer = TLVHeader(b, at: b.startIndex, end: b.endIndex), outer.tag == 0x30, outer.end == b.endIndex,
            let oid = TLVHeader(b, at: outer.contentStart, end: outer.end), oid.tag == 0x06,
            let type = try? ASN1ObjectIdentifier(derEncoded: b[oid.start..<oid.end]),
            let explicit = TLVHeader(b, at: oid.end, end: outer.end), explicit.tag == 0xA0, explicit.end == outer.end,
            let inner = TLVHeader(b, at: explicit.contentStart, end: explicit.end), inner.end == explicit.end
        else { return nil }
        return ContentInfo(contentType: type, content: .encoded(b[inner.start..<inner.end]))
    }

    /// The content parsed as `T`, after checking the content type.
    public func unwrap<T: CMSCodable>(_ type: T.Type, expecting oid: ASN1ObjectIdentifier) throws -> T {
        guard contentType == oid else {
            throw CMSError.unexpectedContentType(expected: CMSOID.name(oid), found: CMSOID.name(contentType))
        }
        if case .encoded(let bytes) = content { return try T.parseBER(bytes) }
        return try T.parseBER(content.bytes()[...])
    }
}

/// IssuerAndSerialNumber (RFC 5652 10.2.4).
///
/// ```
/// IssuerAndSerialNumber ::= SEQUENCE {
///   issuer Name,
///   serialNumber CertificateSerialNumber }
/// ```
public struct IssuerAndSerialNumber: CMSCodable, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    /// The issuer Name as encoded.
    public var issuer: ASN1Any
    /// The serial number's INTEGER content octets.
    public var serialNumber: ArraySlice<UInt8>

    public init(issuer: ASN1Any, serialNumber: ArraySlice<UInt8>) {
        self.issuer = issuer
        self.serialNumber = serialNumber
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            guard let issuerNode = nodes.next() else { throw CMSError.malformed("IssuerAndSerialNumber without issuer") }
            let serial = try ArraySlice<UInt8>(berEncoded: &nodes)
            return IssuerAndSerialNumber(issuer: ASN1Any(berEncoded: issuerNode), serialNumber: serial)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(issuer)
            try coder.serialize(serialNumber)
        }
    }
}

/// SignerIdentifier (RFC 5652 5.3) and RecipientIdentifier (RFC 5652 6.2.1)
/// have the same shape:
///
/// ```
/// SignerIdentifier ::= CHOICE {
///   issuerAndSerialNumber IssuerAndSerialNumber,
///   subjectKeyIdentifier [0] SubjectKeyIdentifier }
/// ```
public enum CertificateIdentifier: Hashable, Sendable, DERSerializable {
    case issuerAndSerialNumber(IssuerAndSerialNumber)
    case subjectKeyIdentifier([UInt8])

    static let skiTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)

    public init(berEncoded node: ASN1Node) throws {
        if node.identifier == Self.skiTag {
            let octets = try ASN1OctetString(berEncoded: node, withIdentifier: Self.skiTag)
            self = .subjectKeyIdentifier(Array(octets.bytes))
        } else {
            self = .issuerAndSerialNumber(try IssuerAndSerialNumber(berEncoded: node))
        }
    }

    public func serialize(into coder: inout DER.Serializer) throws {
        switch self {
        case .issuerAndSerialNumber(let ias): try coder.serialize(ias)
        case .subjectKeyIdentifier(let ski):
            try ASN1OctetString(contentBytes: ArraySlice(ski)).serialize(into: &coder, withIdentifier: Self.skiTag)
        }
    }

    public var isSubjectKeyIdentifier: Bool {
        if case .subjectKeyIdentifier = self { return true }
        return false
    }
}

/// Attribute (RFC 5652 5.3).
///
/// ```
/// Attribute ::= SEQUENCE {
///   attrType OBJECT IDENTIFIER,
///   attrValues SET OF AttributeValue }
/// ```
public struct CMSAttribute: CMSCodable, Hashable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public var type: ASN1ObjectIdentifier
    public var values: [ASN1Any]

    public init(type: ASN1ObjectIdentifier, values: [ASN1Any]) {
        self.type = type
        self.values = values
    }

    public init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
            let values = try BER.set(of: ASN1Any.self, identifier: .set, nodes: &nodes)
            return CMSAttribute(type: type, values: values)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(type)
            try coder.serializeSetOf(values)
        }
    }
}
