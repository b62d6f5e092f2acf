import ArgumentParser
import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import Foundation
import SMIME
import SwiftASN1
import X509

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (run a release build: swift run -c release hisp bench ...).",
        subcommands: [SMIMEBench.self])
}

/// Measures the Direct security pipeline against the physical limit measured
/// in the same run: RSA-2048 private-key operations (one per direction per
/// message) and, for large messages, AES-256-CBC + SHA-256 over the content.
struct SMIMEBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smime", abstract: "Messages per second for outgoing and incoming S/MIME on one core.")

    @Option(help: "Message body size in bytes.") var size: Int = 10_000
    @Option(help: "Seconds to run each measurement.") var seconds: Double = 3

    func validate() throws {
        guard (1...(64 << 20)).contains(size) else { throw ValidationError("--size must be 1 byte to 64 MiB") }
        guard seconds > 0 && seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
    }

    func run() async throws {
        let pki = try EphemeralPKI()
        let sender = try pki.identity(address: "alice@bench.example")
        let recipient = try pki.identity(address: "bob@bench.example")
        let smime = SMIME()
        let message = Self.message(bodySize: size)
        let validator = try ChainValidator(anchors: [pki.caSummary])

        // The physical limits, measured now on this machine.
        let rawKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let digest = SHA256.hash(data: [1, 2, 3])
        let rsaRate = try Self.rate(seconds) { _ = try rawKey.signature(for: digest, padding: .insecurePKCS1v1_5) }
        let aesKey = SymmetricKey(size: .bits256)
        let content = [UInt8](repeating: 0x41, count: message.count)
        let bulkRate = try Self.rate(seconds) {
            _ = SHA256.hash(data: content)
            _ = try AES._CBC.encrypt(content, using: aesKey, iv: AES._CBC.IV())
        }

        let outgoing = try Self.rate(seconds) {
            let signed = try smime.sign(message, identity: sender)
            _ = try smime.encrypt(signed, to: [recipient.certificate])
        }
        let wire = try smime.encrypt(try smime.sign(message, identity: sender), to: [recipient.certificate])
        let incoming = try await Self.asyncRate(seconds) {
            let decrypted = try smime.decrypt(wire, identity: recipient)
            _ = try await smime.verify(decrypted.entity, trust: validator)
        }
        // One private-key operation and one pass of AES + SHA-256 per message per direction.
        let limit = 1 / (1 / rsaRate + 1 / bulkRate)
        print("machine: \(Self.machine())")
        print("message: \(message.count) bytes (body \(size)), wire size \(wire.count) bytes")
        print(String(format: "raw RSA-2048 private-key operations: %.1f/s", rsaRate))
        print(String(format: "raw AES-256-CBC + SHA-256 over the message: %.1f/s (%.0f MB/s)", bulkRate, bulkRate * Double(message.count) / 1e6))
        print(String(format: "limit per direction (1 RSA op + 1 AES/SHA pass): %.1f msg/s", limit))
        print(String(format: "outgoing (wrap+sign+encrypt): %.1f msg/s = %.0f%% of the RSA rate, %.0f%% of the limit", outgoing, 100 * outgoing / rsaRate, 100 * outgoing / limit))
        print(String(format: "incoming (decrypt+verify+unwrap): %.1f msg/s = %.0f%% of the RSA rate, %.0f%% of the limit", incoming, 100 * incoming / rsaRate, 100 * incoming / limit))
    }

    static func message(bodySize: Int) -> [UInt8] {
        var m = Array((
            "From: alice@bench.example\r\nTo: bob@bench.example\r\nSubject: bench\r\n" +
            "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@bench.example>\r\n" +
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n").utf8)
        let line = Array("The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOP\r\n".utf8)
        while m.count < bodySize { m += line }
        return m
    }

    static func rate(_ seconds: Double, _ body: () throws -> Void) throws -> Double {
        try body()  // warm up
        let start = DispatchTime.now().uptimeNanoseconds
        var n = 0
        var elapsed = 0.0
        repeat {
            try body()
            n += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return Double(n) / elapsed
    }

    static func asyncRate(_ seconds: Double, _ body: () async throws -> Void) async throws -> Double {
        try await body()
        let start = DispatchTime.now().uptimeNanoseconds
        var n = 0
        var elapsed = 0.0
        repeat {
            try await body()
            n += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return Double(n) / elapsed
    }

    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, one core used"
    }
}

/// A throwaway CA and address certificates made in memory for the benchmark.
struct EphemeralPKI {
    let caKey: _RSA.Signing.PrivateKey
    let caName: DistinguishedName
    let caSummary: CertificateSummary

    init() throws {
        caKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        caName = try DistinguishedName { CommonName("DirectHISP bench CA") }
        let now = Date()
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400, issuer: caName, subject: caName,
            signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))
        caSummary = try CertificateSummary(der: Self.der(ca))
    }

    func identity(address: String) throws -> SMIMEIdentity {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let now = Date()
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400, issuer: caName,
            subject: try DistinguishedName { CommonName(address) },
            signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                SubjectAlternativeNames([.rfc822Name(address)])
            },
            issuerPrivateKey: .init(caKey))
        return try SMIMEIdentity(certificate: CertificateSummary(der: Self.der(cert)), key: LocalPrivateKey(rsa: key))
    }

    static func der(_ cert: Certificate) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(cert)
        return s.serializedBytes
    }
}
