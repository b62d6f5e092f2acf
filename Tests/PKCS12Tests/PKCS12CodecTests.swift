import Crypto
import Foundation
import HISPTesting
@testable import PKCS12
import Testing

private func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var chars = Array(s.utf8).makeIterator()
    while let a = chars.next(), let b = chars.next() { out.append(UInt8(String(bytes: [a, b], encoding: .ascii)!, radix: 16)!) }
    return out
}

private func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// The legacy ciphers and the PKCS#12 KDF against published vectors and
/// against OpenSSL, computed in the same run.
@Suite struct PKCS12CodecTests {
    @Test func desDecryptsTheFIPSVector() async throws {
        // FIPS 81 / the classic DES worked example; 3DES with K1 = K2 = K3 is single DES.
        let key = hex("133457799BBCDFF1")
        let des = try TripleDES(key: key + key + key)
        #expect(des.decryptBlock(LegacyBlockCipher.load(hex("85E813540F0AB405")[...])) == LegacyBlockCipher.load(hex("0123456789ABCDEF")[...]))
    }

    @Test(arguments: [
        // RFC 2268 5: key, effective bits, plaintext, ciphertext.
        ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
        ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
        ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
        ("88", 64, "0000000000000000", "61a8a244adacccf0"),
        ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
    ])
    func rc2DecryptsTheRFC2268Vectors(key: String, bits: Int, plaintext: String, ciphertext: String) throws {
        let rc2 = try RC2(key: hex(key), effectiveBits: bits)
        #expect(rc2.decryptBlock(LegacyBlockCipher.load(hex(ciphertext)[...])) == LegacyBlockCipher.load(hex(plaintext)[...]))
    }

    @Test func threeKeyDESCBCAgreesWithOpenSSL() async throws {
        let ws = try Workspace()
        let key = (0..<24).map { UInt8($0 * 7 + 3) }, iv = (0..<8).map { UInt8($0 + 100) }
        let plaintext = Array("a PKCS#12 key bag, padded to the block size".utf8)
        try Data(plaintext).write(to: URL(fileURLWithPath: ws.path("plain")))
        try await ws.mustRun("openssl", ["enc", "-des-ede3-cbc", "-K", hexString(key), "-iv", hexString(iv), "-in", "plain", "-out", "cipher"])
        let ciphertext = try [UInt8](Data(contentsOf: URL(fileURLWithPath: ws.path("cipher"))))
        #expect(try LegacyBlockCipher.tripleDES(TripleDES(key: key)).decryptCBC(ciphertext[...], iv: iv) == plaintext)
        // A wrong key leaves bad padding, reported as a wrong password rather than garbage.
        var wrong = key
        wrong[0] ^= 0x10
        #expect(throws: PKCS12Error.wrongPassword) { try LegacyBlockCipher.tripleDES(TripleDES(key: wrong)).decryptCBC(ciphertext[...], iv: iv) }
    }

    @Test(arguments: [("SHA1", UInt8(1), 24, 1), ("SHA1", UInt8(2), 8, 2048), ("SHA256", UInt8(3), 32, 2048), ("SHA512", UInt8(1), 70, 3)])
    func kdfAgreesWithOpenSSL(digest: String, id: UInt8, length: Int, iterations: Int) async throws {
        let ws = try Workspace()
        let password = "smeg-Ünïcode", salt = hex("0A58CF64530D823F")
        // OpenSSL's KDF takes the password already as a BMPString (RFC 7292 B.1), as its pkcs12 command passes it.
        let bmp = hexString(password.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } + [0, 0])
        let r = try await ws.mustRun("openssl", ["kdf", "-keylen", "\(length)", "-kdfopt", "digest:\(digest)", "-kdfopt", "hexpass:\(bmp)",
                                           "-kdfopt", "hexsalt:0A58CF64530D823F", "-kdfopt", "iter:\(iterations)", "-kdfopt", "id:\(id)", "PKCS12KDF"])
        let expected = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ":", with: "").lowercased()
        let ours: [UInt8]
        switch digest {
        case "SHA1": ours = PKCS12KDF.derive(Insecure.SHA1.self, password: password, salt: salt, id: id, iterations: iterations, count: length)
        case "SHA256": ours = PKCS12KDF.derive(SHA256.self, password: password, salt: salt, id: id, iterations: iterations, count: length)
        default: ours = PKCS12KDF.derive(SHA512.self, password: password, salt: salt, id: id, iterations: iterations, count: length)
        }
        #expect(hexString(ours) == expected)
    }

    @Test func refusesWhatItCannotReadWithAReason() async throws {
        #expect(throws: PKCS12Error.limitExceeded("file larger than \(PKCS12.maxFileSize) bytes")) {
            try PKCS12.read([UInt8](repeating: 0x30, count: PKCS12.maxFileSize + 1), password: "x")
        }
        do {
            _ = try PKCS12.read(Array("not a pfx".utf8), password: "x")
            Issue.record("garbage was read")
        } catch let e as PKCS12Error {
            #expect(e.description.hasPrefix("malformed PKCS#12: PFX:"))
        }
    }
}
