import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import DirectCore
import Foundation
import SwiftASN1

/// PKCS#12 (RFC 7292): the .p12/.pfx file that carries an address's private
/// key and certificate chain to a workstation or mail client, and that
/// providers hand over when they move a Direct address.
///
/// Written: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC; RFC 8018) for the key bag
/// and the certificates, a SHA-256 HMAC over the whole (RFC 7292 5.1).
/// Read: the same, any PBES2 with AES-CBC or 3DES, and the legacy
/// pbeWithSHAAnd3-KeyTripleDES-CBC and pbeWithSHAAnd40/128BitRC2-CBC that
/// Windows and `openssl pkcs12 -legacy` write; SHA-1 or SHA-2 MACs.
public enum PKCS12 {
    /// Parser limits: file size, bags, nested SafeContents, KDF iterations.
    public static let maxFileSize = 4 << 20
    public static let maxBags = 256
    public static let maxNesting = 4
    public static let maxIterations = 10_000_000
    /// PBKDF2 and MAC iterations when writing (OWASP's figure for PBKDF2-HMAC-SHA256).
    public static let defaultIterations = 600_000

    /// What a PKCS#12 file held: the private key (PKCS#8 DER), the certificate
    /// that goes with it and every other certificate (the chain).
    public struct Contents: Sendable {
        public var privateKey: [UInt8]
        public var certificate: [UInt8]
        public var chain: [[UInt8]]
        public var friendlyName: String?
        /// How the key and certificates were protected, for the operator.
        public var protection: [String]
    }

    // MARK: Writing

    public static func export(
        privateKey pkcs8: [UInt8], certificate: [UInt8], chain: [[UInt8]], friendlyName: String?, password: String,
        iterations: Int = defaultIterations
    ) throws -> [UInt8] {
        guard (1...maxIterations).contains(iterations) else {
            throw PKCS12Error.limitExceeded("\(iterations) iterations is outside 1...\(maxIterations)")
        }
        let localKeyID = Array(SHA256.hash(data: certificate))
        var attributes = [try CMSAttribute(type: OID.localKeyID, values: [ASN1Any(erasing: ASN1OctetString(contentBytes: localKeyID[...]))])]
        if let friendlyName {
            attributes.append(try CMSAttribute(type: OID.friendlyName, values: [ASN1Any(erasing: ASN1BMPString(contentBytes: BMPText.encode(friendlyName)[...]))]))
        }
        // The certificates: the one matching the key carries the attributes; all are encrypted (RFC 7292 5.1 step 1).
        var certBags = DER.Serializer()
        try certBags.appendConstructedNode(identifier: .sequence) { s in
            for (index, der) in ([certificate] + chain).enumerated() {
                try s.appendConstructedNode(identifier: .sequence) { s in
                    try s.serialize(OID.certBag)
                    try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try s.serialize(OID.x509Certificate)
                            try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                                try s.serialize(ASN1OctetString(contentBytes: der[...]))
                            }
                        }
                    }
                    if index == 0 { try s.serializeSetOf(attributes) }
                }
            }
        }
        let (certAlgorithm, certCiphertext) = try PBES2.encrypt(certBags.serializedBytes, password: password, iterations: iterations)
        // The key: a pkcs8ShroudedKeyBag (RFC 7292 4.2.2) in plain data.
        let (keyAlgorithm, keyCiphertext) = try PBES2.encrypt(pkcs8, password: password, iterations: iterations)
        var keyBags = DER.Serializer()
        try keyBags.appendConstructedNode(identifier: .sequence) { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(OID.pkcs8ShroudedKeyBag)
                try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.serialize(keyAlgorithm)
                        try s.serialize(ASN1OctetString(contentBytes: keyCiphertext[...]))
                    }
                }
                try s.serializeSetOf(attributes)
            }
        }
        var authSafe = DER.Serializer()
        try authSafe.appendConstructedNode(identifier: .sequence) { s in
            // ContentInfo(encryptedData): EncryptedData ::= SEQUENCE { version 0, EncryptedContentInfo } (RFC 5652 8).
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(CMSOID.encryptedData)
                try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.serialize(0)
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try s.serialize(CMSOID.data)
                            try s.serialize(certAlgorithm)
                            s.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                                $0.append(contentsOf: certCiphertext)
                            }
                        }
                    }
                }
            }
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(CMSOID.data)
                try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                    try s.serialize(ASN1OctetString(contentBytes: keyBags.serializedBytes[...]))
                }
            }
        }
        let authSafeBytes = authSafe.serializedBytes
        let macSalt = randomBytes(16)
        let mac = MAC.compute(.sha256, data: authSafeBytes, password: password, salt: macSalt, iterations: iterations)
        var pfx = DER.Serializer()
        try pfx.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(3)
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(CMSOID.data)
                try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                    try s.serialize(ASN1OctetString(contentBytes: authSafeBytes[...]))
                }
            }
            // MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.appendConstructedNode(identifier: .sequence) { s in
                    try s.serialize(AlgorithmIdentifier.withNull(CMSOID.sha256))
                    try s.serialize(ASN1OctetString(contentBytes: mac[...]))
                }
                try s.serialize(ASN1OctetString(contentBytes: macSalt[...]))
                try s.serialize(iterations)
            }
        }
        return pfx.serializedBytes
    }

    // MARK: Reading

    public static func read(_ bytes: [UInt8], password: String) throws -> Contents {
        guard bytes.count <= maxFileSize else { throw PKCS12Error.limitExceeded("file larger than \(maxFileSize) bytes") }
        let (authSafe, macData) = try parsePFX(bytes)
        var protection: [String] = []
        if let macData {
            try macData.verify(authSafe, password: password)
            protection.append("MAC \(macData.hashName), \(macData.iterations) iterations")
        } else {
            // RFC 7292 5: integrity by password is optional, but a file without it cannot tell a wrong password from damage.
            protection.append("no MAC")
        }
        var reader = BagReader(password: password)
        let contentInfos: [ContentInfo] = try parse("AuthenticatedSafe", authSafe) { node in
            try BER.sequence(of: ContentInfo.self, identifier: .sequence, rootNode: node)
        }
        for info in contentInfos {
            switch info.contentType {
            case CMSOID.data:
                try reader.readSafeContents(try octets(info.content), depth: 0)
            case CMSOID.encryptedData:
                let (plaintext, scheme) = try decryptEncryptedData(info.content, password: password)
                protection.append("certificates: \(scheme)")
                try reader.readSafeContents(plaintext, depth: 0)
            case CMSOID.envelopedData:
                throw PKCS12Error.unsupported("public-key privacy mode (envelopedData) is not supported; export with a password")
            default:
                throw PKCS12Error.malformed("unknown AuthenticatedSafe content type \(info.contentType)")
            }
        }
        protection += reader.keyProtection
        guard !reader.keys.isEmpty else { throw PKCS12Error.malformed("the file holds no private key") }
        guard reader.keys.count == 1 else {
            throw PKCS12Error.unsupported("the file holds \(reader.keys.count) private keys; export one address per file")
        }
        let key = reader.keys[0]
        guard !reader.certificates.isEmpty else { throw PKCS12Error.malformed("the file holds no certificate") }
        // The certificate that goes with the key: same localKeyID, else the same public key.
        let publicKey = (try? LocalPrivateKey(der: key.der))?.publicKeySPKI
        let index = reader.certificates.firstIndex { key.localKeyID != nil && $0.localKeyID == key.localKeyID }
            ?? reader.certificates.firstIndex { cert in
                publicKey != nil && (try? CertificateSummary(der: cert.der))?.subjectPublicKeyInfo == publicKey
            }
        guard let index else { throw PKCS12Error.malformed("no certificate in the file matches its private key") }
        let chain = reader.certificates.enumerated().filter { $0.offset != index }.map(\.element.der)
        return Contents(
            privateKey: key.der, certificate: reader.certificates[index].der, chain: chain,
            friendlyName: key.friendlyName ?? reader.certificates[index].friendlyName, protection: protection)
    }

    /// PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }
    static func parsePFX(_ bytes: [UInt8]) throws -> ([UInt8], MacData?) {
        try parse("PFX", bytes) { root in
            try BER.sequence(root, identifier: .sequence) { nodes in
                let version = try Int(berEncoded: &nodes)
                guard version == 3 else { throw PKCS12Error.unsupported("PFX version \(version) (only v3 exists)") }
                guard let infoNode = nodes.next() else { throw PKCS12Error.malformed("PFX has no authSafe") }
                let info = try ContentInfo(berEncoded: infoNode)
                guard info.contentType == CMSOID.data else {
                    throw PKCS12Error.unsupported("public-key integrity mode (authSafe of type \(info.contentType)) is not supported")
                }
                let authSafe = try octets(info.content)
                let mac = try nodes.next().map { try MacData(node: $0) }
                return (authSafe, mac)
            }
        }
    }

    static func decryptEncryptedData(_ content: DERNode, password: String) throws -> ([UInt8], String) {
        guard case .encoded(let bytes) = content else { throw PKCS12Error.malformed("encryptedData content") }
        let info: EncryptedContentInfo = try parse("EncryptedData", Array(bytes)) { node in
            try BER.sequence(node, identifier: .sequence) { nodes in
                _ = try Int(berEncoded: &nodes)  // version 0 or 2
                return try EncryptedContentInfo(berEncoded: &nodes)
            }
        }
        guard let ciphertext = info.encryptedContent else { throw PKCS12Error.malformed("encryptedData without content") }
        return try PasswordEncryption.decrypt(ciphertext, algorithm: info.contentEncryptionAlgorithm, password: password)
    }

    static func octets(_ content: DERNode) throws -> [UInt8] {
        guard case .encoded(let bytes) = content else { throw PKCS12Error.malformed("data content") }
        return try parse("data", Array(bytes)) { Array(try ASN1OctetString(berEncoded: $0).bytes) }
    }

    /// Runs a swift-asn1 parse, naming the structure when it fails.
    static func parse<T>(_ what: String, _ bytes: [UInt8], _ body: (ASN1Node) throws -> T) throws -> T {
        do {
            return try body(try BER.parse(bytes))
        } catch let e as PKCS12Error {
            throw e
        } catch {
            throw PKCS12Error.malformed("\(what): \(error)")
        }
    }

    static func randomBytes(_ count: Int) -> [UInt8] { SecureRandom.bytes(count) }

    enum OID {
        static let keyBag: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 10, 1, 1]
        static let pkcs8ShroudedKeyBag: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 10, 1, 2]
        static let certBag: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 10, 1, 3]
        static let safeContentsBag: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 12, 10, 1, 6]
        static let x509Certificate: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 22, 1]
        static let friendlyName: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 20]
        static let localKeyID: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 21]
    }
}

/// Walks SafeContents (RFC 7292 4.2), collecting keys and certificates.
struct BagReader {
    struct Item {
        var der: [UInt8]
        var localKeyID: [UInt8]?
        var friendlyName: String?
    }

    let password: String
    var keys: [Item] = []
    var certificates: [Item] = []
    var keyProtection: [String] = []
    var bags = 0

    init(password: String) { self.password = password }

    /// SafeContents ::= SEQUENCE OF SafeBag
    /// SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF PKCS12Attribute OPTIONAL }
    mutating func readSafeContents(_ bytes: [UInt8], depth: Int) throws {
        guard depth < PKCS12.maxNesting else { throw PKCS12Error.limitExceeded("SafeContents nested deeper than \(PKCS12.maxNesting)") }
        let bagList: [(ASN1ObjectIdentifier, ASN1Node, [CMSAttribute])] = try PKCS12.parse("SafeContents", bytes) { root in
            guard case .constructed(let children) = root.content, root.identifier == .sequence else {
                throw PKCS12Error.malformed("SafeContents is not a SEQUENCE")
            }
            return try children.map { bag in
                try BER.sequence(bag, identifier: .sequence) { nodes in
                    let id = try ASN1ObjectIdentifier(berEncoded: &nodes)
                    let value = try BER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { $0 }
                    let attributes = try nodes.next().map { try BER.set(of: CMSAttribute.self, identifier: .set, rootNode: $0) } ?? []
                    return (id, value, attributes)
                }
            }
        }
        for (id, value, attributes) in bagList {
            bags += 1
            guard bags <= PKCS12.maxBags else { throw PKCS12Error.limitExceeded("more than \(PKCS12.maxBags) bags") }
            let localKeyID = attributes.first { $0.type == PKCS12.OID.localKeyID }?.values.first
                .flatMap { try? ASN1OctetString(asn1Any: $0) }.map { Array($0.bytes) }
            let friendlyName = attributes.first { $0.type == PKCS12.OID.friendlyName }?.values.first
                .flatMap { try? ASN1BMPString(asn1Any: $0) }.map { BMPText.decode($0.bytes) }
            switch id {
            case PKCS12.OID.pkcs8ShroudedKeyBag:
                // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING } (RFC 5208 6)
                let (algorithm, ciphertext) = try PKCS12.parse("EncryptedPrivateKeyInfo", Array(value.encodedBytes)) { node in
                    try BER.sequence(node, identifier: .sequence) { nodes in
                        (try AlgorithmIdentifier(berEncoded: &nodes), try ASN1OctetString(berEncoded: &nodes).bytes)
                    }
                }
                let (der, scheme) = try PasswordEncryption.decrypt(ciphertext, algorithm: algorithm, password: password)
                keys.append(Item(der: der, localKeyID: localKeyID, friendlyName: friendlyName))
                keyProtection.append("private key: \(scheme)")
            case PKCS12.OID.keyBag:
                keys.append(Item(der: Array(value.encodedBytes), localKeyID: localKeyID, friendlyName: friendlyName))
                keyProtection.append("private key: not encrypted")
            case PKCS12.OID.certBag:
                // CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }
                let der: [UInt8]? = try PKCS12.parse("CertBag", Array(value.encodedBytes)) { node in
                    try BER.sequence(node, identifier: .sequence) { nodes in
                        let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
                        let bytes = try BER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                            try ASN1OctetString(berEncoded: $0).bytes
                        }
                        return type == PKCS12.OID.x509Certificate ? Array(bytes) : nil  // SDSI certificates are skipped
                    }
                }
                if let der { certificates.append(Item(der: der, localKeyID: localKeyID, friendlyName: friendlyName)) }
            case PKCS12.OID.safeContentsBag:
                try readSafeContents(Array(value.encodedBytes), depth: depth + 1)
            default:
                continue  // CRL and secret bags carry nothing an address needs
            }
        }
    }
}

/// MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 } (RFC 7292 4)
struct MacData {
    let hash: MAC.Hash
    let digest: [UInt8]
    let salt: [UInt8]
    let iterations: Int

    var hashName: String { hash.name }

    init(node: ASN1Node) throws {
        (hash, digest, salt, iterations) = try BER.sequence(node, identifier: .sequence) { nodes in
            guard let digestInfo = nodes.next() else { throw PKCS12Error.malformed("MacData has no DigestInfo") }
            let (algorithm, digest) = try BER.sequence(digestInfo, identifier: .sequence) { d in
                (try AlgorithmIdentifier(berEncoded: &d), Array(try ASN1OctetString(berEncoded: &d).bytes))
            }
            let salt = Array(try ASN1OctetString(berEncoded: &nodes).bytes)
            let iterations = try nodes.next().map { try Int(berEncoded: $0) } ?? 1
            guard let hash = MAC.Hash(oid: algorithm.algorithm) else {
                throw PKCS12Error.unsupported("MAC digest \(algorithm.name)")
            }
            return (hash, digest, salt, iterations)
        }
        guard (1...PKCS12.maxIterations).contains(iterations) else {
            throw PKCS12Error.limitExceeded("MAC iteration count \(iterations) is outside 1...\(PKCS12.maxIterations)")
        }
    }

    func verify(_ data: [UInt8], password: String) throws {
        // RFC 7292 5.2 (step 2 on reading): a MAC that does not match means a wrong password or a damaged file.
        guard MAC.matches(hash, data: data, password: password, salt: salt, iterations: iterations, expected: digest) else {
            throw PKCS12Error.wrongPassword
        }
    }
}

public enum PKCS12Error: DirectError, Equatable {
    case malformed(String)
    case wrongPassword
    case unsupported(String)
    case limitExceeded(String)

    public var kind: FailureKind {
        switch self {
        case .malformed: return .malformedInput
        case .wrongPassword: return .security
        case .unsupported: return .unsupported
        case .limitExceeded: return .limitExceeded
        }
    }

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed PKCS#12: \(s)"
        case .wrongPassword: return "wrong password (or a damaged file): the PKCS#12 integrity check failed"
        case .unsupported(let s): return "unsupported PKCS#12: \(s)"
        case .limitExceeded(let s): return "PKCS#12 limit exceeded: \(s)"
        }
    }
}
