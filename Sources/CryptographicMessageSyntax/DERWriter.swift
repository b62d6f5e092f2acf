import SwiftASN1

/// A DER value to be written in one pass (X.690 8.1, 10.1: definite lengths,
/// the shortest length form).
///
/// swift-asn1's `DER.Serializer` reserves one length byte per constructed
/// node and shifts the node's content byte by byte when the length turns out
/// to need more, so a megabyte of ciphertext four levels deep is moved four
/// times. The CMS structures that carry message content (ContentInfo,
/// SignedData, EncapsulatedContentInfo, EnvelopedData, AuthEnvelopedData,
/// EncryptedContentInfo) describe themselves as a `DERNode` tree instead:
/// every length is known before anything is written, and the content is
/// copied once. Small fields are still encoded by swift-asn1 (`encoded`).
public indirect enum DERNode: Hashable, Sendable {
    /// One or more complete TLVs, already DER.
    case encoded(ArraySlice<UInt8>)
    case primitive(ASN1Identifier, ArraySlice<UInt8>)
    case constructed(ASN1Identifier, [DERNode])

    /// A value encoded by swift-asn1 (for small fields).
    public static func value(_ v: some DERSerializable) throws -> DERNode {
        var s = DER.Serializer()
        try s.serialize(v)
        return .encoded(s.serializedBytes[...])
    }

    /// A value encoded by swift-asn1 under an implicit tag.
    public static func value(_ v: some DERImplicitlyTaggable, identifier: ASN1Identifier) throws -> DERNode {
        var s = DER.Serializer()
        try v.serialize(into: &s, withIdentifier: identifier)
        return .encoded(s.serializedBytes[...])
    }

    /// A DER SET OF (X.690 11.6: elements sorted by their encodings).
    public static func setOf<T: DERSerializable>(_ elements: [T], identifier: ASN1Identifier = .set) throws -> DERNode {
        var s = DER.Serializer()
        try s.serializeSetOf(elements, identifier: identifier)
        return .encoded(s.serializedBytes[...])
    }

    /// A DER SET OF nodes (X.690 11.6: sorted by their encodings; one
    /// element needs no sorting and is not written out first).
    public static func setOf(nodes: [DERNode], identifier: ASN1Identifier = .set) -> DERNode {
        guard nodes.count > 1 else { return .constructed(identifier, nodes) }
        let encodings = nodes.map { $0.bytes() }.sorted { $0.lexicographicallyPrecedes($1) }
        return .constructed(identifier, encodings.map { .encoded($0[...]) })
    }

    /// `[n] EXPLICIT` around `inner`.
    public static func explicit(_ tagNumber: UInt, _ inner: DERNode) -> DERNode {
        .constructed(ASN1Identifier(tagWithNumber: tagNumber, tagClass: .contextSpecific), [inner])
    }

    /// The number of bytes this value takes, header included.
    public var encodedCount: Int {
        switch self {
        case .encoded(let bytes): return bytes.count
        case .primitive(let id, let content):
            return Self.headerCount(id, length: content.count) + content.count
        case .constructed(let id, let children):
            let length = Self.contentCount(children)
            return Self.headerCount(id, length: length) + length
        }
    }

    /// The DER bytes.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedCount)
        write(into: &out)
        return out
    }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .encoded(let bytes):
            out.append(contentsOf: bytes)
        case .primitive(let id, let content):
            Self.writeHeader(id, constructed: false, length: content.count, into: &out)
            out.append(contentsOf: content)
        case .constructed(let id, let children):
            Self.writeHeader(id, constructed: true, length: Self.contentCount(children), into: &out)
            for child in children { child.write(into: &out) }
        }
    }

    static func contentCount(_ children: [DERNode]) -> Int {
        children.reduce(0) { $0 + $1.encodedCount }
    }

    static func headerCount(_ id: ASN1Identifier, length: Int) -> Int {
        identifierCount(id) + lengthCount(length)
    }

    static func identifierCount(_ id: ASN1Identifier) -> Int {
        if id.tagNumber < 31 { return 1 }
        var n = 1
        var t = id.tagNumber
        while t > 0 {
            n += 1
            t >>= 7
        }
        return n
    }

    static func lengthCount(_ length: Int) -> Int {
        if length < 0x80 { return 1 }
        var n = 1
        var l = length
        while l > 0 {
            n += 1
            l >>= 8
        }
        return n
    }

    // X.690 8.1.2: identifier octets.
    static func writeHeader(_ id: ASN1Identifier, constructed: Bool, length: Int, into out: inout [UInt8]) {
        let classBits: UInt8
        switch id.tagClass {
        case .universal: classBits = 0x00
        case .application: classBits = 0x40
        case .contextSpecific: classBits = 0x80
        case .private: classBits = 0xC0
        }
        let constructedBit: UInt8 = constructed ? 0x20 : 0
        if id.tagNumber < 31 {
            out.append(classBits | constructedBit | UInt8(id.tagNumber))
        } else {
            out.append(classBits | constructedBit | 0x1F)
            var groups: [UInt8] = []
            var t = id.tagNumber
            while t > 0 {
                groups.append(UInt8(t & 0x7F))
                t >>= 7
            }
            for (i, g) in groups.reversed().enumerated() {
                out.append(i == groups.count - 1 ? g : g | 0x80)
            }
        }
        // X.690 8.1.3 / 10.1: definite form, as few octets as possible.
        if length < 0x80 {
            out.append(UInt8(length))
        } else {
            let count = lengthCount(length) - 1
            out.append(0x80 | UInt8(count))
            for shift in stride(from: (count - 1) * 8, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: length >> shift))
            }
        }
    }
}

/// A CMS structure that writes itself as a `DERNode` tree.
public protocol DERNodeConvertible {
    func derNode(identifier: ASN1Identifier) throws -> DERNode
}

extension DERNodeConvertible where Self: CMSCodable {
    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        coder.serializeRawBytes(try derNode(identifier: identifier).bytes())
    }

    public func derNode() throws -> DERNode { try derNode(identifier: Self.defaultIdentifier) }

    /// The DER encoding, written in one pass.
    public func derBytes() throws -> [UInt8] { try derNode().bytes() }
}
