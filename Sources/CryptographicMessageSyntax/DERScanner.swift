import SwiftASN1

/// One DER identifier and length (X.690 8.1.2, 8.1.3, 10.1), read without
/// building nodes. Nil for what it leaves to swift-asn1: the high-tag-number
/// form, [UNIVERSAL 0], the indefinite length, a length not in its shortest
/// form or of more than four octets, and a length that runs past `end`.
struct TLVHeader {
    let tag: UInt8
    let start: Int
    let contentStart: Int
    let end: Int

    init?(_ b: ArraySlice<UInt8>, at i: Int, end limit: Int) {
        guard i >= b.startIndex, limit <= b.endIndex, i + 2 <= limit else { return nil }
        let tag = b[i]
        guard tag & 0x1F != 0x1F, tag & 0xDF != 0 else { return nil }
        let first = b[i + 1]
        var p = i + 2
        var length = 0
        if first < 0x80 {
            length = Int(first)
        } else {
            let octets = Int(first & 0x7F)
            // X.690 10.1: the shortest form, so no leading zero octet and no long form under 128.
            guard (1...4).contains(octets), p + octets <= limit, b[p] != 0 else { return nil }
            for _ in 0..<octets {
                length = length << 8 | Int(b[p])
                p += 1
            }
            guard length >= 0x80 else { return nil }
        }
        guard length <= limit - p else { return nil }
        self.tag = tag
        self.start = i
        self.contentStart = p
        self.end = p + length
    }

    var isConstructed: Bool { tag & 0x20 != 0 }
}

/// Reads the fields of a DER structure in order, for the `quickParse` of
/// the CMS structures every message carries (SignedData, EnvelopedData).
///
/// swift-asn1 builds a node for every TLV it parses and copies every ANY it
/// returns twice; this reads the same fields straight from the bytes. It
/// reads only DER with short tags (what nearly every peer sends) and
/// answers nil for anything else, so that the full BER parse reads it or
/// names what is malformed. Whatever it does read gives exactly what the full
/// parse gives: every ANY it returns is checked to be well formed to the
/// bottom, as swift-asn1's parse checks it.
struct DERScanner {
    let bytes: ArraySlice<UInt8>
    private(set) var position: Int
    let end: Int

    /// The fields inside `bytes`, which must hold one TLV with nothing after it.
    init?(wholeOf bytes: ArraySlice<UInt8>, tag: UInt8) {
        guard let outer = TLVHeader(bytes, at: bytes.startIndex, end: bytes.endIndex), outer.tag == tag,
            outer.end == bytes.endIndex
        else { return nil }
        self.init(bytes, inside: outer)
    }

    /// The fields inside `header`.
    init(_ bytes: ArraySlice<UInt8>, inside header: TLVHeader) {
        self.bytes = bytes
        self.position = header.contentStart
        self.end = header.end
    }

    var isAtEnd: Bool { position == end }

    /// The tag of the next field, without reading it.
    var nextTag: UInt8? { position < end ? bytes[position] : nil }

    /// The next field, if it has `tag`.
    mutating func next(_ tag: UInt8) -> TLVHeader? {
        guard let h = TLVHeader(bytes, at: position, end: end), h.tag == tag else { return nil }
        position = h.end
        return h
    }

    /// The next field, whatever its tag.
    mutating func next() -> TLVHeader? {
        guard let h = TLVHeader(bytes, at: position, end: end) else { return nil }
        position = h.end
        return h
    }

    /// The fields inside the next field, if it has `tag`.
    mutating func enter(_ tag: UInt8) -> DERScanner? {
        next(tag).map { DERScanner(bytes, inside: $0) }
    }

    func encoding(of h: TLVHeader) -> ArraySlice<UInt8> { bytes[h.start..<h.end] }
    func content(of h: TLVHeader) -> ArraySlice<UInt8> { bytes[h.contentStart..<h.end] }

    /// A version: an INTEGER of one octet, 0 to 127.
    mutating func smallInteger() -> Int? {
        guard let h = next(0x02), h.end == h.contentStart + 1, bytes[h.contentStart] < 0x80 else { return nil }
        return Int(bytes[h.contentStart])
    }

    /// A positive INTEGER's content octets without a leading zero octet, as
    /// swift-asn1 reads a serial number into `ArraySlice<UInt8>`.
    mutating func unsignedInteger() -> ArraySlice<UInt8>? {
        guard let h = next(0x02), h.end > h.contentStart, bytes[h.contentStart] & 0x80 == 0 else { return nil }
        let content = content(of: h)
        return content.first == 0 ? content.dropFirst() : content
    }

    /// A primitive OCTET STRING's content (a constructed one is BER).
    mutating func octetString(tag: UInt8 = 0x04) -> ArraySlice<UInt8>? {
        next(tag).map { content(of: $0) }
    }

    mutating func objectIdentifier() -> ASN1ObjectIdentifier? {
        guard let h = next(0x06) else { return nil }
        let encoded = encoding(of: h)
        // The identifiers of the algorithms and attributes we know are made once.
        if let known = KnownObjectIdentifiers.byEncoding[encoded] { return known }
        return try? ASN1ObjectIdentifier(derEncoded: encoded)
    }

    /// The next field as an ANY, after checking that it is well formed.
    mutating func any() -> ASN1Any? {
        guard let h = next(), Self.isWellFormed(bytes, h, depth: 0) else { return nil }
        return try? ASN1Any(erasing: RawDER(bytes: encoding(of: h)))
    }

    /// AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
    mutating func algorithmIdentifier() -> AlgorithmIdentifier? {
        guard var fields = enter(0x30), let oid = fields.objectIdentifier() else { return nil }
        var parameters: ASN1Any? = nil
        if !fields.isAtEnd {
            guard let p = fields.any() else { return nil }
            parameters = p
        }
        guard fields.isAtEnd else { return nil }
        return AlgorithmIdentifier(oid, parameters: parameters)
    }

    /// SignerIdentifier or RecipientIdentifier (RFC 5652 5.3, 6.2.1).
    mutating func certificateIdentifier() -> CertificateIdentifier? {
        if let ski = octetString(tag: 0x80) { return .subjectKeyIdentifier(Array(ski)) }
        guard var fields = enter(0x30), let issuer = fields.any(), let serial = fields.unsignedInteger(), fields.isAtEnd
        else { return nil }
        return .issuerAndSerialNumber(IssuerAndSerialNumber(issuer: issuer, serialNumber: serial))
    }

    /// Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }
    mutating func attribute() -> CMSAttribute? {
        guard var fields = enter(0x30), let type = fields.objectIdentifier(), var values = fields.enter(0x31),
            fields.isAtEnd
        else { return nil }
        var list: [ASN1Any] = []
        while !values.isAtEnd {
            guard let value = values.any() else { return nil }
            list.append(value)
        }
        return CMSAttribute(type: type, values: list)
    }

    /// The attributes inside the next field, if it has `tag`.
    mutating func attributes(_ tag: UInt8) -> [CMSAttribute]? {
        guard var inner = enter(tag) else { return nil }
        var list: [CMSAttribute] = []
        while !inner.isAtEnd {
            guard let a = inner.attribute() else { return nil }
            list.append(a)
        }
        return list
    }

    /// Everything inside `h` is DER TLVs that exactly fill their parents,
    /// within a nesting depth well under swift-asn1's limit of 50.
    static func isWellFormed(_ b: ArraySlice<UInt8>, _ h: TLVHeader, depth: Int) -> Bool {
        guard h.isConstructed else { return true }
        guard depth < 24 else { return false }
        var i = h.contentStart
        while i < h.end {
            guard let child = TLVHeader(b, at: i, end: h.end), isWellFormed(b, child, depth: depth + 1) else { return false }
            i = child.end
        }
        return true
    }
}

/// Bytes already checked to be DER, written as they are.
struct RawDER: DERSerializable {
    let bytes: ArraySlice<UInt8>
    func serialize(into coder: inout DER.Serializer) throws { coder.serializeRawBytes(bytes) }
}

enum KnownObjectIdentifiers {
    /// The DER encoding (tag and length included) of each identifier in `CMSOID`.
    static let byEncoding: [ArraySlice<UInt8>: ASN1ObjectIdentifier] = {
        var table: [ArraySlice<UInt8>: ASN1ObjectIdentifier] = [:]
        for oid in CMSOID.all {
            var s = DER.Serializer()
            guard (try? s.serialize(oid)) != nil else { continue }
            table[s.serializedBytes[...]] = oid
        }
        return table
    }()
}
