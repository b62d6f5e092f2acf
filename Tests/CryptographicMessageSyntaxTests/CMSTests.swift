import Crypto
import CryptoExtras
import Foundation
import SwiftASN1
import Testing
import X509
import HISPTesting
@testable import CryptographicMessageSyntax

@Suite struct CMSRoundTripTests {
    static let rsa = Result { try MemoryIdentity.make("rsa signer") }
    static let rsa2 = Result { try MemoryIdentity.make("rsa recipient") }

    @Test(arguments: DigestAlgorithm.allCases, [false, true])
    func signedDataRoundTripsAndVerifies(digest: DigestAlgorithm, detached: Bool) throws {
        let id = try Self.rsa.get()
        let content = Array("Content-Type: text/plain\r\n\r\nhello".utf8)
        let der = try CMSSignature.sign(content: content, detached: detached, key: id.key, certificate: id.summary, digest: digest)
        let info = try ContentInfo.parse(der)
        let sd = try info.unwrap(SignedData.self, expecting: CMSOID.signedData)
        // DER out: re-serialising what we parsed gives the same bytes.
        #expect(try ContentInfo(contentType: CMSOID.signedData, wrapping: sd).derBytes() == der)
        #expect(sd.encapContentInfo.eContent == (detached ? nil : ArraySlice(content)))
        let signers = try CMSSignature.verifySignatures(sd, detachedContent: detached ? ArraySlice(content) : nil)
        #expect(signers.count == 1)
        #expect(signers[0].digest == digest)
        #expect(signers[0].signingTime != nil)
    }

    @Test func ecdsaSignaturesVerify() async throws {
        let id = try MemoryIdentity.make("ec signer", ec: true)
        let der = try CMSSignature.sign(content: [1, 2, 3], detached: false, key: id.key, certificate: id.summary, digest: .sha384)
        let sd = try ContentInfo.parse(der).unwrap(SignedData.self, expecting: CMSOID.signedData)
        #expect(try CMSSignature.verifySignatures(sd, detachedContent: nil).count == 1)
    }

    @Test func signerIdentifiedBySubjectKeyIdentifier() async throws {
        let id = try Self.rsa.get()
        let der = try CMSSignature.sign(content: [9], detached: false, key: id.key, certificate: id.summary, useSubjectKeyIdentifier: true)
        let sd = try ContentInfo.parse(der).unwrap(SignedData.self, expecting: CMSOID.signedData)
        #expect(sd.signerInfos[0].version == 3)
        #expect(sd.version == 3)
        #expect(try CMSSignature.verifySignatures(sd, detachedContent: nil).count == 1)
    }

    @Test func rejectsContentChangedAfterSigning() async throws {
        let id = try Self.rsa.get()
        let der = try CMSSignature.sign(content: [1, 2, 3], detached: true, key: id.key, certificate: id.summary)
        let sd = try ContentInfo.parse(der).unwrap(SignedData.self, expecting: CMSOID.signedData)
        #expect(throws: CMSError.messageDigestMismatch) { try CMSSignature.verifySignatures(sd, detachedContent: [1, 2, 4]) }
    }

    @Test(arguments: ContentEncryption.allCases, [KeyTransport.rsaOAEPSHA256, .rsaPKCS1v15])
    func envelopesRoundTrip(cipher: ContentEncryption, transport: KeyTransport) throws {
        let a = try Self.rsa.get(), b = try Self.rsa2.get()
        let content = Array(repeating: UInt8(0x5A), count: 1000)
        let der = try CMSEnvelope.encrypt(content: content, recipients: [.init(certificate: a.summary), .init(certificate: b.summary, useSubjectKeyIdentifier: true)],
                                          cipher: cipher, keyTransport: transport)
        let info = try ContentInfo.parse(der)
        #expect(info.contentType == (cipher.isAuthenticated ? CMSOID.authEnvelopedData : CMSOID.envelopedData))
        for id in [a, b] {
            let out = try CMSEnvelope.decrypt(info, certificate: id.summary, key: id.key)
            #expect(out.content == content)
            #expect(out.keyTransport == transport)
        }
        if cipher.isAuthenticated {
            let aed = try info.unwrap(AuthEnvelopedData.self, expecting: CMSOID.authEnvelopedData)
            #expect(try ContentInfo(contentType: CMSOID.authEnvelopedData, wrapping: aed).derBytes() == der)
        } else {
            let ed = try info.unwrap(EnvelopedData.self, expecting: CMSOID.envelopedData)
            #expect(ed.version == 2)  // an SKI recipient makes it version 2 (RFC 5652 6.1)
            #expect(try ContentInfo(contentType: CMSOID.envelopedData, wrapping: ed).derBytes() == der)
        }
    }

    @Test func decryptionByAnotherKeyNamesTheRecipients() async throws {
        let a = try Self.rsa.get(), b = try Self.rsa2.get()
        let der = try CMSEnvelope.encrypt(content: [1], recipients: [.init(certificate: a.summary)])
        #expect(throws: CMSError.self) { try CMSEnvelope.decrypt(ContentInfo.parse(der), certificate: b.summary, key: b.key) }
        do {
            _ = try CMSEnvelope.decrypt(ContentInfo.parse(der), certificate: b.summary, key: b.key)
        } catch let e as CMSError {
            #expect(e.description.contains("not addressed to our key"))
            #expect(e.description.contains("CN=rsa signer"))
        }
    }

    @Test func pkcs1v15PaddingFailureLooksLikeAWrongKey() throws {
        let a = try Self.rsa.get()
        let der = try CMSEnvelope.encrypt(content: Array(repeating: 1, count: 64), recipients: [.init(certificate: a.summary)], keyTransport: .rsaPKCS1v15)
        var ed = try ContentInfo.parse(der).unwrap(EnvelopedData.self, expecting: CMSOID.envelopedData)
        guard case .keyTransport(var k) = ed.recipientInfos[0] else { Issue.record("no ktri"); return }
        k.encryptedKey[k.encryptedKey.startIndex + 5] ^= 0xFF
        ed.recipientInfos = [.keyTransport(k)]
        let tampered = try ContentInfo(contentType: CMSOID.envelopedData, wrapping: ed)
        // No padding error is reported (RFC 3218 2.3): a random content key is used instead, so the
        // content decryption fails, or (when the random key happens to give valid CBC padding) yields
        // garbage. Either way the caller learns nothing about the RSA padding.
        do {
            let garbage = try CMSEnvelope.decrypt(tampered, certificate: a.summary, key: a.key)
            #expect(garbage.content != Array(repeating: 1, count: 64))
        } catch let e as CMSError {
            #expect(e.description.contains("content decryption failed"))
        }
    }

    @Test func parameterStructuresRoundTrip() async throws {
        for p in [RSAESOAEPParams(hash: CMSOID.sha256, mgfHash: CMSOID.sha256), RSAESOAEPParams(hash: CMSOID.sha1, mgfHash: CMSOID.sha1)] {
            #expect(try RSAESOAEPParams.parse(p.derBytes()) == p)
        }
        // DER omits DEFAULT values: SHA-1 OAEP params are an empty SEQUENCE.
        #expect(try RSAESOAEPParams(hash: CMSOID.sha1, mgfHash: CMSOID.sha1).derBytes() == [0x30, 0x00])
        let g = GCMParameters(nonce: ArraySlice(repeating: 7, count: 12), icvLength: 16)
        #expect(try GCMParameters.parse(g.derBytes()) == g)
        #expect(try GCMParameters.parse(GCMParameters(nonce: [1], icvLength: 12).derBytes()).icvLength == 12)
    }

    @Test func keyTransportIsReadFromEveryEncodingOfItsParameters() async throws {
        for transport in KeyTransport.allCases {
            #expect(try KeyTransport(transport.algorithmIdentifier) == transport)
        }
        // RSAES-OAEP-SHA256 written with NULL parameters in its hash identifiers (as some
        // peers do) is not our encoding: it is parsed, and is the same algorithm.
        let hash = AlgorithmIdentifier.withNull(CMSOID.sha256)
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { c in
            try c.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { try $0.serialize(hash) }
            try c.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) {
                try $0.serialize(AlgorithmIdentifier(CMSOID.mgf1, parameters: try ASN1Any(erasing: hash)))
            }
        }
        let other = AlgorithmIdentifier(CMSOID.rsaesOAEP, parameters: try ASN1Any(derEncoded: DER.parse(s.serializedBytes)))
        #expect(other != (try KeyTransport.rsaOAEPSHA256.algorithmIdentifier))
        #expect(try KeyTransport(other) == .rsaOAEPSHA256)
    }

    @Test func policyRefusesWeakAlgorithmsByName() async throws {
        let p = AlgorithmPolicy.direct
        #expect(throws: CMSError.algorithmRefused("SHA-1 digest refused (allowed: SHA-256, SHA-384, SHA-512)")) { try p.checkDigest(CMSOID.sha1) }
        #expect(throws: CMSError.self) { try p.checkDigest(CMSOID.md5) }
        #expect(throws: CMSError.algorithmRefused("RC2-CBC content encryption refused (allowed: AES-CBC, AES-GCM)")) { try p.checkContentEncryption(CMSOID.rc2CBC) }
        #expect(throws: CMSError.self) { try p.checkContentEncryption(CMSOID.desCBC) }
        try p.checkContentEncryption(CMSOID.aes128CBC)
    }

    @Test func truncatedAndGarbageDERAreMalformed() async throws {
        let id = try Self.rsa.get()
        let der = try CMSSignature.sign(content: [1, 2, 3], detached: false, key: id.key, certificate: id.summary)
        for cut in [1, 10, der.count / 2, der.count - 1] {
            #expect(throws: CMSError.self) { try ContentInfo.parse(der.prefix(cut)).unwrap(SignedData.self, expecting: CMSOID.signedData) }
        }
        #expect(throws: CMSError.self) { try ContentInfo.parse([0x30, 0x80, 0x01]) }
    }

    /// The shallow ContentInfo reader gives what swift-asn1's full parse
    /// gives, leaves what it does not read to it, and lets nothing malformed
    /// through: trailing bytes and a content longer than its [0] are refused.
    @Test func shallowContentInfoParseAgreesWithTheFullParse() async throws {
        let id = try Self.rsa.get()
        for size in [3, 200, 70_000] {
            let der = try CMSSignature.sign(content: Array(repeating: 7, count: size), detached: false, key: id.key, certificate: id.summary)
            let shallow = try #require(ContentInfo.shallow(der[...]))
            let full = try ContentInfo(berEncoded: BER.parse(der))
            #expect(shallow == full)
            #expect(try ContentInfo.parse(der) == full)
            // Trailing bytes: not taken by the shallow reader, refused by the full parse.
            #expect(ContentInfo.shallow((der + [0x00])[...]) == nil)
            #expect(throws: CMSError.self) { try ContentInfo.parse(der + [0x00]) }
        }
        // BER with indefinite lengths (as `openssl cms -stream` writes) goes to the full parse.
        let oid: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01]  // id-data
        let indefinite: [UInt8] = [0x30, 0x80] + oid + [0xA0, 0x80, 0x04, 0x02, 0x41, 0x42, 0x00, 0x00, 0x00, 0x00]
        #expect(ContentInfo.shallow(indefinite[...]) == nil)
        let parsed = try ContentInfo.parse(indefinite)
        #expect(parsed.contentType == CMSOID.data)
        // An inner value that runs past its [0] is not split by the shallow reader.
        let overrun: [UInt8] = [0x30, 0x11] + oid + [0xA0, 0x04, 0x04, 0x05, 0x41, 0x42]
        #expect(ContentInfo.shallow(overrun[...]) == nil)
        #expect(throws: CMSError.self) { try ContentInfo.parse(overrun) }
    }
}

@Suite struct SignedDataQuickParseTests {
    /// What the full parse of `der` (a ContentInfo) holds as its SignedData.
    static func fullParse(_ der: [UInt8]) throws -> (SignedData, ArraySlice<UInt8>) {
        let info = try ContentInfo(berEncoded: BER.parse(der))
        guard case .encoded(let inner) = try ContentInfo.parse(der).content else { throw CMSError.malformed("not encoded") }
        return (try info.unwrap(SignedData.self, expecting: CMSOID.signedData), inner)
    }

    @Test func cuttingOutTheCertificatesGivesWhatTheFullParseGives() async throws {
        let signer = try CMSRoundTripTests.rsa.get(), other = try CMSRoundTripTests.rsa2.get()
        for chain in [[], [other.summary], Array(repeating: other.summary, count: 63)] {
            let der = try CMSSignature.sign(content: Array("hello".utf8), detached: true, key: signer.key,
                                            certificate: signer.summary, chain: chain)
            let (full, inner) = try Self.fullParse(der)
            let quick = try #require(SignedData.quickParse(inner))
            #expect(quick == (try SignedData(berEncoded: BER.parse(inner))))
            #expect(quick.certificates.count == chain.count + 1)
            #expect(full == quick)
            #expect(try CMSSignature.verifySignatures(quick, detachedContent: Array("hello".utf8)[...]).count == 1)
        }
    }

    @Test func whatItDoesNotReadGoesToTheFullParse() async throws {
        let signer = try CMSRoundTripTests.rsa.get()
        var sd = try Self.fullParse(try CMSSignature.sign(
            content: [1], detached: true, key: signer.key, certificate: signer.summary)).0
        // More certificates than the limit: the full parse names the limit.
        sd.certificates = Array(repeating: signer.summary.der, count: SignedData.maxCertificates + 1)
        let many = try sd.derBytes()
        #expect(SignedData.quickParse(many[...]) == nil)
        #expect(throws: CMSError.limitExceeded("more than 64 certificates in SignedData")) { try SignedData.parse(many) }
        // A certificate running past the end of its [0]: refused, as by the full parse.
        let der = try CMSSignature.sign(content: [1], detached: true, key: signer.key, certificate: signer.summary)
        var inner = Array(try Self.fullParse(der).1)
        let certAt = try #require(inner.firstIndex(of: 0xA0))
        #expect(inner[certAt + 1] == 0x82 && inner[certAt + 4] == 0x30 && inner[certAt + 5] == 0x82)
        inner[certAt + 7] &+= 1  // the low byte of the certificate's length (A0 82 xx xx 30 82 xx xx)
        #expect(SignedData.quickParse(inner[...]) == nil)
        #expect(throws: CMSError.self) { try SignedData.parse(inner) }
        // Indefinite lengths (openssl cms -stream) are read by the full parse.
        var indefinite = [UInt8](inner)
        indefinite[certAt + 7] &-= 1
        indefinite.replaceSubrange(0..<4, with: [0x30, 0x80])
        indefinite += [0x00, 0x00]
        #expect(SignedData.quickParse(indefinite[...]) == nil)
        #expect(try SignedData.parse(indefinite) == (try SignedData.parse(Array(try Self.fullParse(der).1))))
    }
}

/// The DER readers of SignedData and EnvelopedData give what swift-asn1's
/// full parse gives, and let nothing through that the full parse refuses.
@Suite struct DERScannerTests {
    /// A SignedData with what a peer may add: a second signer identified by
    /// its key identifier, unsigned attributes, a CRL, and no certificates.
    static func signedDataVariants() throws -> [[UInt8]] {
        let a = try CMSRoundTripTests.rsa.get(), b = try CMSRoundTripTests.rsa2.get()
        let one = try CMSSignature.sign(content: Array("hello".utf8), detached: false, key: a.key, certificate: a.summary)
        var sd = try SignedDataQuickParseTests.fullParse(one).0
        let other = try SignedDataQuickParseTests.fullParse(try CMSSignature.sign(
            content: Array("hello".utf8), detached: false, key: b.key, certificate: b.summary,
            useSubjectKeyIdentifier: true)).0
        var variants = [Array(try SignedDataQuickParseTests.fullParse(one).1)]
        sd.signerInfos.append(other.signerInfos[0])
        sd.signerInfos[1].unsignedAttrs = [CMSAttribute(type: CMSOID.signingTimeAttribute, values: [try ASN1Any(erasing: ASN1Null())])]
        sd.crls = [try ASN1Any(erasing: AlgorithmIdentifier(CMSOID.sha256))]
        sd.version = 3
        variants.append(try sd.derBytes())
        sd.certificates = []
        variants.append(try sd.derBytes())
        return variants
    }

    static func envelopedDataVariants() throws -> [[UInt8]] {
        let a = try CMSRoundTripTests.rsa.get(), b = try CMSRoundTripTests.rsa2.get()
        return try [
            CMSEnvelope.encrypt(content: Array("hello".utf8), recipients: [.init(certificate: a.summary)]),
            CMSEnvelope.encrypt(
                content: Array(repeating: 9, count: 40), recipients: [.init(certificate: a.summary), .init(certificate: b.summary, useSubjectKeyIdentifier: true)],
                keyTransport: .rsaPKCS1v15),
        ].map { der in
            guard case .encoded(let inner) = try ContentInfo.parse(der).content else { throw CMSError.malformed("not encoded") }
            return Array(inner)
        }
    }

    /// Every one-byte change and every truncation of `der`: whenever `quick`
    /// reads the result, the full parse reads it too, to an equal value.
    static func agreesUnderDamage<T: CMSCodable & Equatable>(_ der: [UInt8], _ quick: (ArraySlice<UInt8>) -> T?) throws -> (read: Int, damaged: Int) {
        var read = 0, damaged = 0
        func check(_ bytes: [UInt8]) {
            damaged += 1
            guard let q = quick(bytes[...]) else { return }
            read += 1
            let full = Result { try T(berEncoded: BER.parse(bytes)) }
            #expect((try? full.get()) == q, "quick parse read \(bytes.count) bytes the full parse reads as \(full)")
        }
        for i in der.indices {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var d = der
                d[i] ^= flip
                check(d)
            }
        }
        for cut in stride(from: 0, to: der.count, by: 7) { check(Array(der.prefix(cut))) }
        return (read, damaged)
    }

    @Test func signedDataIsReadAsTheFullParseReadsIt() async throws {
        for der in try Self.signedDataVariants() {
            let quick = try #require(SignedData.quickParse(der[...]))
            #expect(quick == (try SignedData(berEncoded: BER.parse(der))))
            #expect(try SignedData.parse(der) == quick)
        }
        let variants = try Self.signedDataVariants()
        // Written as a DER SET OF, the signers may come in either order.
        let two = try #require(SignedData.quickParse(variants[1][...]))
        #expect(two.signerInfos.filter { $0.sid.isSubjectKeyIdentifier && $0.unsignedAttrs?.count == 1 }.count == 1)
        #expect(two.crls.count == 1)
    }

    @Test func envelopedDataIsReadAsTheFullParseReadsIt() async throws {
        let a = try CMSRoundTripTests.rsa.get()
        for der in try Self.envelopedDataVariants() {
            let quick = try #require(EnvelopedData.quickParse(der[...]))
            #expect(quick == (try EnvelopedData(berEncoded: BER.parse(der))))
        }
        // And the message it read decrypts.
        let der = try CMSEnvelope.encrypt(content: Array("hello".utf8), recipients: [.init(certificate: a.summary)])
        #expect(try CMSEnvelope.decrypt(ContentInfo.parse(der), certificate: a.summary, key: a.key).content == Array("hello".utf8))
    }

    @Test func damagedSignedDataIsNeverReadDifferently() async throws {
        // The variant with two signers, unsigned attributes and a CRL, without the certificate to keep it short.
        let der = try Self.signedDataVariants()[2]
        let (read, damaged) = try Self.agreesUnderDamage(der, SignedData.quickParse)
        // Most changes land in values (signatures, digests, names) that both read alike; many are refused.
        #expect(read > 0 && read < damaged)
    }

    @Test func damagedEnvelopedDataIsNeverReadDifferently() async throws {
        for der in try Self.envelopedDataVariants() {
            let (read, damaged) = try Self.agreesUnderDamage(der, EnvelopedData.quickParse)
            #expect(read > 0 && read < damaged)
        }
    }

    @Test func readsOnlyTheShortestLengthForm() async throws {
        // 0x81 0x05 is a long form for a length under 128: BER, not DER.
        #expect(TLVHeader([0x04, 0x81, 0x05, 1, 2, 3, 4, 5], at: 0, end: 8) == nil)
        #expect(TLVHeader([0x04, 0x82, 0x00, 0x05, 1, 2, 3, 4, 5], at: 0, end: 9) == nil)
        #expect(TLVHeader([0x04, 0x05, 1, 2, 3, 4, 5], at: 0, end: 7)?.end == 7)
        #expect(TLVHeader([0x00, 0x00], at: 0, end: 2) == nil)  // end-of-contents
        let long = [UInt8]([0x04, 0x81, 0x80]) + Array(repeating: 0, count: 128)
        #expect(TLVHeader(long[...], at: 0, end: long.count)?.contentStart == 3)
    }
}

@Suite struct DERWriterTests {
    /// The one-pass writer produces exactly what swift-asn1's serializer does,
    /// across every length-form boundary (X.690 8.1.3.3-8.1.3.5).
    @Test(arguments: [0, 1, 127, 128, 255, 256, 65535, 65536, 70000])
    func matchesSwiftASN1AtLengthBoundaries(size: Int) throws {
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0) }[...]
        let eci = EncryptedContentInfo(
            contentType: CMSOID.data, contentEncryptionAlgorithm: AlgorithmIdentifier(CMSOID.aes256CBC),
            encryptedContent: content)
        let ed = EnvelopedData(recipientInfos: [], encryptedContentInfo: eci)
        let ours = try ContentInfo(contentType: CMSOID.envelopedData, wrapping: ed).derBytes()

        var reference = DER.Serializer()
        try reference.appendConstructedNode(identifier: .sequence) { c in
            try c.serialize(CMSOID.envelopedData)
            try c.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { c in
                try c.appendConstructedNode(identifier: .sequence) { c in
                    try c.serialize(0)
                    try c.appendConstructedNode(identifier: .set) { _ in }
                    try c.appendConstructedNode(identifier: .sequence) { c in
                        try c.serialize(CMSOID.data)
                        try c.serialize(AlgorithmIdentifier(CMSOID.aes256CBC))
                        c.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                            $0.append(contentsOf: content)
                        }
                    }
                }
            }
        }
        #expect(ours == reference.serializedBytes)
        let back = try ContentInfo.parse(ours).unwrap(EnvelopedData.self, expecting: CMSOID.envelopedData)
        #expect(back.encryptedContentInfo.encryptedContent == content)
    }

    /// SignerInfo and KeyTransRecipientInfo written in one pass are what
    /// swift-asn1 writes, and a SET OF several is sorted (X.690 11.6).
    @Test func signerAndRecipientInfosMatchSwiftASN1() throws {
        let id = try CMSRoundTripTests.rsa.get()
        let der = try CMSSignature.sign(content: [1, 2, 3], detached: true, key: id.key, certificate: id.summary)
        let signer = try ContentInfo.parse(der).unwrap(SignedData.self, expecting: CMSOID.signedData).signerInfos[0]
        var reference = DER.Serializer()
        try reference.appendConstructedNode(identifier: .sequence) { c in
            try c.serialize(signer.version)
            try c.serialize(signer.sid)
            try c.serialize(signer.digestAlgorithm)
            var raw = try #require(signer.signedAttrsForSignature)
            raw[0] = 0xA0
            c.serializeRawBytes(raw)
            try c.serialize(signer.signatureAlgorithm)
            try c.serialize(ASN1OctetString(contentBytes: signer.signature))
        }
        #expect(try signer.derNode().bytes() == reference.serializedBytes)

        let recipients = try [(0x01, 300), (0x02, 256)].map { (fill, size) in
            KeyTransRecipientInfo(rid: .issuerAndSerialNumber(try id.summary.issuerAndSerialNumber()),
                                  keyEncryptionAlgorithm: AlgorithmIdentifier(CMSOID.rsaesOAEP),
                                  encryptedKey: Array(repeating: UInt8(fill), count: size)[...])
        }
        for r in recipients {
            var ref = DER.Serializer()
            try ref.appendConstructedNode(identifier: .sequence) { c in
                try c.serialize(r.version)
                try c.serialize(r.rid)
                try c.serialize(r.keyEncryptionAlgorithm)
                try c.serialize(ASN1OctetString(contentBytes: r.encryptedKey))
            }
            #expect(try r.derNode().bytes() == ref.serializedBytes)
        }
        var set = DER.Serializer()
        try set.serializeSetOf(recipients.map { RecipientInfo.keyTransport($0) })
        #expect(DERNode.setOf(nodes: try recipients.map { try $0.derNode() }).bytes() == set.serializedBytes)
    }

    @Test func writesHighTagNumbersAndEveryClass() async throws {
        for (number, tagClass) in [(UInt(31), ASN1Identifier.TagClass.contextSpecific), (200, .application), (5, .private), (16384, .universal)] {
            let id = ASN1Identifier(tagWithNumber: number, tagClass: tagClass)
            let node = DERNode.constructed(id, [.primitive(.octetString, [1, 2, 3])])
            var reference = DER.Serializer()
            try reference.appendConstructedNode(identifier: id) { c in try c.serialize(ASN1OctetString(contentBytes: [1, 2, 3])) }
            #expect(node.bytes() == reference.serializedBytes)
            #expect(node.encodedCount == reference.serializedBytes.count)
        }
    }
}

@Suite struct UTCDateTimeTests {
    /// The calendar arithmetic agrees with Foundation's Gregorian calendar,
    /// both ways, across centuries, leap days and negative times.
    @Test func agreesWithFoundationsCalendar() async throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var rng = SystemRandomNumberGenerator()
        let fixed: [Double] = [0, -1, 951_782_400, 951_868_799, 4_107_542_400, -2_208_988_800, 2_524_607_999]
        let random = (0..<2000).map { _ in Double(Int64.random(in: -5_000_000_000...10_000_000_000, using: &rng)) }
        for t in fixed + random {
            let date = Date(timeIntervalSince1970: t)
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let ours = UTCDateTime(date)
            #expect([ours.year, ours.month, ours.day, ours.hour, ours.minute, ours.second]
                    == [c.year, c.month, c.day, c.hour, c.minute, c.second], "\(t)")
            #expect(ours.date == date)
        }
        #expect(UTCDateTime(year: 2026, month: 13, day: 1, hour: 0, minute: 0, second: 0).date == nil)
    }
}

/// Certificates parsed once by their bytes: the same answer as a fresh
/// parse, failures never kept, and a bound on what is kept.
@Suite struct CertificateCacheTests {
    @Test func keptParsesEqualFreshOnes() async throws {
        let der = try MemoryIdentity.make("cached@direct.a.example").summary.der
        let cache = CertificateCache()
        #expect(try cache.summary(der) == CertificateSummary(der: der))
        #expect(try cache.certificate(der) == Certificate(derEncoded: der))
        #expect(cache.count == 1)
        // A copy of the bytes finds the same entry.
        #expect(try cache.summary(Array(der[...])) == CertificateSummary(der: der))
        #expect(cache.count == 1)
    }

    @Test func certificatesThatDifferOnlyInTheirSignatureAreDifferentEntries() async throws {
        var der = try MemoryIdentity.make("tampered@direct.a.example").summary.der
        let cache = CertificateCache()
        let original = try cache.summary(der)
        der[der.count - 1] ^= 0x01
        let tampered = try cache.summary(der)
        #expect(tampered.der != original.der)
        #expect(cache.count == 2)
    }

    @Test func whatFailsToParseIsNotKeptAndFailsEachTime() async throws {
        let cache = CertificateCache()
        let garbage: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x01]
        for _ in 0..<2 {
            #expect(throws: (any Error).self) { try cache.summary(garbage) }
            #expect(throws: (any Error).self) { try cache.certificate(garbage) }
        }
        #expect(cache.count == 0)
    }

    @Test func theCacheStaysWithinItsCapacity() async throws {
        let cache = CertificateCache(capacity: 2)
        for i in 0..<3 { _ = try cache.summary(try MemoryIdentity.make("c\(i)@direct.a.example").summary.der) }
        #expect(cache.count <= 2)
        let off = CertificateCache(capacity: 0)
        _ = try off.summary(try MemoryIdentity.make("none@direct.a.example").summary.der)
        #expect(off.count == 0)
    }
}
