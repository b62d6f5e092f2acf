import DirectCore
import SwiftASN1

/// The few LDAP v3 operations certificate discovery needs (RFC 4511): an
/// anonymous simple bind, a search, unbind; and the responses to them.
public enum LDAPOperation: Sendable, Equatable {
    /// RFC 4511 4.2: BindRequest ::= [APPLICATION 0] SEQUENCE { version, name, authentication simple [0] }.
    case bindRequest(name: String, password: [UInt8])
    /// RFC 4511 4.2.2: BindResponse ::= [APPLICATION 1] LDAPResult.
    case bindResponse(LDAPResult)
    /// RFC 4511 4.3: UnbindRequest ::= [APPLICATION 2] NULL.
    case unbindRequest
    /// RFC 4511 4.5.1.
    case searchRequest(LDAPSearch)
    /// RFC 4511 4.5.2: SearchResultEntry ::= [APPLICATION 4].
    case searchResultEntry(dn: String, attributes: [(type: String, values: [[UInt8]])])
    /// RFC 4511 4.5.2: SearchResultDone ::= [APPLICATION 5] LDAPResult.
    case searchResultDone(LDAPResult)
    /// SearchResultReference [APPLICATION 19] and anything else: kept by tag, not followed.
    case other(tag: UInt)

    public static func == (a: LDAPOperation, b: LDAPOperation) -> Bool {
        switch (a, b) {
        case (.bindRequest(let n1, let p1), .bindRequest(let n2, let p2)): return n1 == n2 && p1 == p2
        case (.bindResponse(let r1), .bindResponse(let r2)), (.searchResultDone(let r1), .searchResultDone(let r2)): return r1 == r2
        case (.unbindRequest, .unbindRequest): return true
        case (.searchRequest(let s1), .searchRequest(let s2)): return s1 == s2
        case (.searchResultEntry(let d1, let a1), .searchResultEntry(let d2, let a2)):
            return d1 == d2 && a1.map(\.type) == a2.map(\.type) && a1.map(\.values) == a2.map(\.values)
        case (.other(let t1), .other(let t2)): return t1 == t2
        default: return false
        }
    }
}

/// LDAPResult (RFC 4511 4.1.9).
public struct LDAPResult: Sendable, Equatable {
    public var code: Int
    public var matchedDN: String
    public var diagnostic: String

    public init(code: Int, matchedDN: String = "", diagnostic: String = "") {
        self.code = code
        self.matchedDN = matchedDN
        self.diagnostic = diagnostic
    }

    public static let success = 0
    /// 4: sizeLimitExceeded still delivers the entries returned so far.
    public static let sizeLimitExceeded = 4
}

/// A search (RFC 4511 4.5.1) with the two filters discovery uses.
public struct LDAPSearch: Sendable, Equatable {
    public enum Scope: Int, Sendable { case baseObject = 0, singleLevel = 1, wholeSubtree = 2 }
    public enum Filter: Sendable, Equatable {
        /// equalityMatch [3] AttributeValueAssertion.
        case equal(String, String)
        /// present [7] AttributeDescription.
        case present(String)
    }

    public var base: String
    public var scope: Scope
    public var sizeLimit: Int
    public var timeLimit: Int
    public var filter: Filter
    public var attributes: [String]

    public init(base: String, scope: Scope, sizeLimit: Int = 0, timeLimit: Int = 0, filter: Filter, attributes: [String]) {
        self.base = base
        self.scope = scope
        self.sizeLimit = sizeLimit
        self.timeLimit = timeLimit
        self.filter = filter
        self.attributes = attributes
    }
}

/// LDAPMessage ::= SEQUENCE { messageID, protocolOp, controls [0] OPTIONAL } (RFC 4511 4.1.1).
public struct LDAPMessage: Sendable, Equatable {
    public var id: Int
    public var operation: LDAPOperation

    public init(id: Int, operation: LDAPOperation) {
        self.id = id
        self.operation = operation
    }

    /// Largest message accepted (certificates are a few KB; a whole entry is bounded too).
    public static let maxSize = 4 << 20

    static func app(_ n: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: n, tagClass: .application) }
    static func ctx(_ n: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: n, tagClass: .contextSpecific) }

    /// DER (a subset of BER every server reads).
    public func encoded() throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { c in
            try c.serialize(id)
            switch operation {
            case .bindRequest(let name, let password):
                try c.appendConstructedNode(identifier: Self.app(0)) { b in
                    try b.serialize(3)
                    try b.serialize(ASN1OctetString(contentBytes: ArraySlice(name.utf8)))
                    b.appendPrimitiveNode(identifier: Self.ctx(0)) { $0.append(contentsOf: password) }
                }
            case .unbindRequest:
                c.appendPrimitiveNode(identifier: Self.app(2)) { _ in }
            case .searchRequest(let q):
                try c.appendConstructedNode(identifier: Self.app(3)) { r in
                    try r.serialize(ASN1OctetString(contentBytes: ArraySlice(q.base.utf8)))
                    r.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(q.scope.rawValue)) }
                    r.appendPrimitiveNode(identifier: .enumerated) { $0.append(0) }  // derefAliases: never
                    try r.serialize(q.sizeLimit)
                    try r.serialize(q.timeLimit)
                    try r.serialize(false)
                    switch q.filter {
                    case .equal(let attribute, let value):
                        try r.appendConstructedNode(identifier: Self.ctx(3)) { f in
                            try f.serialize(ASN1OctetString(contentBytes: ArraySlice(attribute.utf8)))
                            try f.serialize(ASN1OctetString(contentBytes: ArraySlice(value.utf8)))
                        }
                    case .present(let attribute):
                        r.appendPrimitiveNode(identifier: Self.ctx(7)) { $0.append(contentsOf: attribute.utf8) }
                    }
                    try r.appendConstructedNode(identifier: .sequence) { a in
                        for attr in q.attributes { try a.serialize(ASN1OctetString(contentBytes: ArraySlice(attr.utf8))) }
                    }
                }
            case .bindResponse(let result), .searchResultDone(let result):
                let tag: UInt = { if case .bindResponse = operation { return 1 } else { return 5 } }()
                try c.appendConstructedNode(identifier: Self.app(tag)) { r in try Self.serialize(result, into: &r) }
            case .searchResultEntry(let dn, let attributes):
                try c.appendConstructedNode(identifier: Self.app(4)) { e in
                    try e.serialize(ASN1OctetString(contentBytes: ArraySlice(dn.utf8)))
                    try e.appendConstructedNode(identifier: .sequence) { list in
                        for (type, values) in attributes {
                            try list.appendConstructedNode(identifier: .sequence) { p in
                                try p.serialize(ASN1OctetString(contentBytes: ArraySlice(type.utf8)))
                                try p.appendConstructedNode(identifier: .set) { set in
                                    for v in values { try set.serialize(ASN1OctetString(contentBytes: ArraySlice(v))) }
                                }
                            }
                        }
                    }
                }
            case .other(let tag):
                c.appendPrimitiveNode(identifier: Self.app(tag)) { _ in }
            }
        }
        return s.serializedBytes
    }

    static func serialize(_ result: LDAPResult, into r: inout DER.Serializer) throws {
        r.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(truncatingIfNeeded: result.code)) }
        try r.serialize(ASN1OctetString(contentBytes: ArraySlice(result.matchedDN.utf8)))
        try r.serialize(ASN1OctetString(contentBytes: ArraySlice(result.diagnostic.utf8)))
    }

    /// Parses one whole message (BER, as servers send it).
    public init(parsing bytes: ArraySlice<UInt8>) throws {
        guard bytes.count <= Self.maxSize else { throw LDAPError.limit("a message of \(bytes.count) octets") }
        let root: ASN1Node
        do { root = try BER.parse(bytes) } catch { throw LDAPError.malformed("not BER: \(error)") }
        guard root.identifier == .sequence, case .constructed(let items) = root.content else {
            throw LDAPError.malformed("an LDAPMessage is not a SEQUENCE")
        }
        var it = items.makeIterator()
        guard let idNode = it.next(), let opNode = it.next() else { throw LDAPError.malformed("an LDAPMessage without an ID or operation") }
        guard let id = try? Int(berEncoded: idNode) else { throw LDAPError.malformed("the message ID is not an INTEGER") }
        self.id = id
        guard opNode.identifier.tagClass == .application else { throw LDAPError.malformed("the operation is not an APPLICATION tag") }
        switch opNode.identifier.tagNumber {
        case 1: operation = .bindResponse(try Self.result(opNode))
        case 5: operation = .searchResultDone(try Self.result(opNode))
        case 4:
            guard case .constructed(let parts) = opNode.content else { throw LDAPError.malformed("SearchResultEntry is not constructed") }
            var p = parts.makeIterator()
            guard let dnNode = p.next(), let attrsNode = p.next(), case .constructed(let attrs) = attrsNode.content else {
                throw LDAPError.malformed("SearchResultEntry lacks its name or attributes")
            }
            let dn = try Self.string(dnNode)
            var attributes: [(String, [[UInt8]])] = []
            for attr in attrs {
                guard case .constructed(let pair) = attr.content else { throw LDAPError.malformed("an attribute is not a SEQUENCE") }
                var pi = pair.makeIterator()
                guard let typeNode = pi.next(), let valsNode = pi.next(), case .constructed(let vals) = valsNode.content else {
                    throw LDAPError.malformed("an attribute lacks its type or values")
                }
                attributes.append((try Self.string(typeNode), try vals.map { try Self.octets($0) }))
            }
            operation = .searchResultEntry(dn: dn, attributes: attributes.map { (type: $0.0, values: $0.1) })
        default:
            operation = .other(tag: opNode.identifier.tagNumber)
        }
    }

    static func octets(_ node: ASN1Node) throws -> [UInt8] {
        // OCTET STRING, primitive or (BER) constructed.
        do { return Array(try ASN1OctetString(berEncoded: node, withIdentifier: node.identifier).bytes) } catch {
            throw LDAPError.malformed("expected an OCTET STRING")
        }
    }

    static func string(_ node: ASN1Node) throws -> String {
        guard let s = String(bytes: try octets(node), encoding: .utf8) else { throw LDAPError.malformed("a string is not UTF-8") }
        return s
    }

    static func result(_ node: ASN1Node) throws -> LDAPResult {
        guard case .constructed(let parts) = node.content else { throw LDAPError.malformed("an LDAPResult is not constructed") }
        var p = parts.makeIterator()
        guard let codeNode = p.next(), codeNode.identifier == .enumerated, case .primitive(let codeBytes) = codeNode.content,
              (1...4).contains(codeBytes.count), let matched = p.next(), let diagnostic = p.next()
        else { throw LDAPError.malformed("an LDAPResult lacks its code, matchedDN or diagnosticMessage") }
        let code = codeBytes.reduce(0) { $0 << 8 | Int($1) }
        return LDAPResult(code: code, matchedDN: try string(matched), diagnostic: try string(diagnostic))
    }

    /// The length of the first whole BER TLV in `bytes`, or nil when more bytes are needed.
    /// LDAP uses definite lengths only (RFC 4511 5.1).
    public static func frameLength(_ bytes: ArraySlice<UInt8>) throws -> Int? {
        guard bytes.count >= 2 else { return nil }
        let first = bytes[bytes.startIndex + 1]
        if first & 0x80 == 0 { return 2 + Int(first) }
        let n = Int(first & 0x7F)
        guard n >= 1, n <= 4 else { throw LDAPError.malformed("a length of \(n) octets (indefinite lengths are not LDAP)") }
        guard bytes.count >= 2 + n else { return nil }
        var length = 0
        for b in bytes[(bytes.startIndex + 2)..<(bytes.startIndex + 2 + n)] { length = length << 8 | Int(b) }
        guard length <= maxSize else { throw LDAPError.limit("a message of \(length) octets (at most \(maxSize))") }
        return 2 + n + length
    }
}

public enum LDAPError: DirectError, Equatable {
    case malformed(String)
    case limit(String)
    /// The server answered with an error result.
    case result(String)
    case connection(String)

    public var kind: FailureKind {
        switch self {
        case .malformed: return .malformedInput
        case .limit: return .limitExceeded
        case .result, .connection: return .unsupported
        }
    }

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed LDAP message: \(s)"
        case .limit(let s): return "LDAP limit exceeded: \(s)"
        case .result(let s): return "LDAP server: \(s)"
        case .connection(let s): return "LDAP connection: \(s)"
        }
    }
}
