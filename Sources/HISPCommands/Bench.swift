import ArgumentParser
import Crypto
import CryptoExtras
import CryptographicMessageSyntax
import DirectTrust
import Foundation
import InternetMessage
import OpenSSLKeys
import SMIME
import SwiftASN1
import X509

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (run a release build: swift run -c release hisp bench ...).",
        subcommands: [SMIMEBench.self, MailboxBench.self])
}

/// Measures the Direct security pipeline against the physical limit measured
/// in the same run: RSA-2048 private-key operations (one per direction per
/// message) and, for large messages, AES-256-CBC + SHA-256 over the content.
struct SMIMEBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smime", abstract: "Messages per second for outgoing and incoming S/MIME on one core.")

    @Option(help: "Message body size in bytes.") var size: Int = 10_000
    @Option(help: "Seconds to run each measurement.") var seconds: Double = 3
    @Option(help: "Interleaved rounds the measurements are split into.") var rounds: Int = 5
    @Flag(help: "Also print microseconds per step of each direction.") var breakdown = false
    @Option(help: ArgumentHelp(
        "Run only this direction (outgoing or incoming) for --seconds and print its rate: for a profiler.",
        valueName: "direction")) var only: Direction?

    @Option(help: ArgumentHelp("The key provider doing the private-key operations: auto, builtin or openssl (docs/keys.md).",
                               valueName: "provider")) var provider: KeyProviderChoice = .auto

    enum Direction: String, ExpressibleByArgument { case outgoing, incoming }

    func validate() throws {
        guard (1...(64 << 20)).contains(size) else { throw ValidationError("--size must be 1 byte to 64 MiB") }
        guard seconds > 0 && seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1 to 100") }
    }

    func run() async throws {
        let (keys, note) = try provider.make().get()
        let pki = try EphemeralPKI()
        let sender = try pki.identity(address: "alice@bench.example", keys: keys)
        let recipient = try pki.identity(address: "bob@bench.example", keys: keys)
        let smime = SMIME()
        let message = Self.message(bodySize: size)
        // As `hisp serve` evaluates trust: trusted verdicts are reused for a minute.
        let validator = SignerTrust(trust: DirectTrust(
            anchors: TrustAnchors([TrustAnchor(certificate: try CertificateLoading.x509(pki.caSummary), source: "bench")]),
            verdictLifetime: TrustVerdictCache.serverLifetime))

        // The physical limits are measured in the same run, interleaved with
        // the pipeline in short rounds, so that a virtual machine's speed
        // drifting during the run moves both sides of each ratio alike.
        let rawKey = try keys.handle(pkcs8: LocalPrivateKey(rsa: try _RSA.Signing.PrivateKey(keySize: .bits2048)).pkcs8DER)
        let aesKey = SymmetricKey(size: .bits256)
        let content = [UInt8](repeating: 0x41, count: message.count)
        let wire = try smime.encrypt(try smime.sign(message, identity: sender), to: [recipient.certificate])
        let outgoingOnce = { _ = try smime.signAndEncrypt(message, identity: sender, to: [recipient.certificate]) }
        let incomingOnce = {
            let decrypted = try smime.decrypt(wire, identity: recipient)
            _ = try await smime.verify(decrypted.entity, trust: validator)
        }
        if let only {
            let rate = switch only {
            case .outgoing: try Self.rate(seconds, outgoingOnce)
            case .incoming: try await Self.asyncRate(seconds, incomingOnce)
            }
            say(String(format: "%@: %.1f msg/s", only.rawValue, rate))
            return
        }
        let slice = seconds / Double(rounds)
        var rounds: [(rsa: Double, bulk: Double, outgoing: Double, incoming: Double)] = []
        for _ in 0..<self.rounds {
            let rsa = try Self.rate(slice) { _ = try rawKey.sign([1, 2, 3], digest: .sha256) }
            let bulk = try Self.rate(slice) {
                _ = SHA256.hash(data: content)
                _ = try AES._CBC.encrypt(content, using: aesKey, iv: AES._CBC.IV())
            }
            let outgoing = try Self.rate(slice, outgoingOnce)
            let incoming = try await Self.asyncRate(slice, incomingOnce)
            rounds.append((rsa, bulk, outgoing, incoming))
        }
        // One private-key operation and one pass of AES + SHA-256 per message per direction.
        func limit(_ r: (rsa: Double, bulk: Double, outgoing: Double, incoming: Double)) -> Double {
            1 / (1 / r.rsa + 1 / r.bulk)
        }
        let rsaRate = Self.median(rounds.map(\.rsa)), bulkRate = Self.median(rounds.map(\.bulk))
        let outgoing = Self.median(rounds.map(\.outgoing)), incoming = Self.median(rounds.map(\.incoming))
        say("machine: \(Self.machine())")
        say(note)
        say("message: \(message.count) bytes (body \(size)), wire size \(wire.count) bytes")
        say("medians of \(self.rounds) interleaved rounds of \(String(format: "%.2f", slice)) s per measurement:")
        say(String(format: "raw RSA-2048 private-key operations (%@): %.1f/s", keys.name, rsaRate))
        // The machine's own limit, by the OpenSSL command line in the same run (when it is installed).
        if let speed = Self.opensslSpeed(seconds: max(1, Int(seconds / 2))) {
            say(String(format: "openssl speed rsa2048, sign, one core: %.1f/s; this provider reaches %.0f%% of it", speed, 100 * rsaRate / speed))
        }
        say(String(format: "raw AES-256-CBC + SHA-256 over the message: %.1f/s (%.0f MB/s)", bulkRate, bulkRate * Double(message.count) / 1e6))
        say(String(format: "limit per direction (1 RSA op + 1 AES/SHA pass): %.1f msg/s", Self.median(rounds.map(limit))))
        for (name, pick) in [("outgoing (wrap+sign+encrypt)", outgoing), ("incoming (decrypt+verify+unwrap)", incoming)] {
            let isOut = name.hasPrefix("out")
            let ofRSA = Self.median(rounds.map { 100 * (isOut ? $0.outgoing : $0.incoming) / $0.rsa })
            let ofLimit = Self.median(rounds.map { 100 * (isOut ? $0.outgoing : $0.incoming) / limit($0) })
            say(String(format: "%@: %.1f msg/s = %.1f%% of the RSA rate, %.1f%% of the limit", name, pick, ofRSA, ofLimit))
        }
        if breakdown {
            try await Self.printBreakdown(seconds: seconds, message: message, sender: sender, recipient: recipient, validator: validator)
        }
    }

    /// Microseconds per step, to show where the time goes beyond the key operation.
    static func printBreakdown(
        seconds: Double, message: [UInt8], sender: SMIMEIdentity, recipient: SMIMEIdentity, validator: SignerTrust
    ) async throws {
        let smime = SMIME()
        let each = seconds / 20
        // The best of five short runs: the least disturbed by other load.
        func show(_ name: String, _ body: () throws -> Void) throws {
            var best = 0.0
            for _ in 0..<5 { best = max(best, try rate(each, body)) }
            say("  " + name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: "%9.1f us", 1e6 / best))
        }
        func show(_ name: String, _ body: () async throws -> Void) async throws {
            var best = 0.0
            for _ in 0..<5 { best = max(best, try await asyncRate(each, body)) }
            say("  " + name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: "%9.1f us", 1e6 / best))
        }
        let signed = try smime.sign(message, identity: sender)
        let wire = try smime.encrypt(signed, to: [recipient.certificate])
        let decrypted = try smime.decrypt(wire, identity: recipient).entity
        let der = try MIMEEntity(parsing: wire).decodedBody()
        let info = try ContentInfo.parse(der)
        let sdInfo = try ContentInfo.parse(try MIMEEntity(parsing: decrypted).parts[1].decodedBody())
        let signedData = try sdInfo.unwrap(SignedData.self, expecting: CMSOID.signedData)
        let content = try MIMEEntity(parsing: decrypted).parts[0].bytes
        let rawKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let digest = SHA256.hash(data: [1, 2, 3])
        say("breakdown (best of 5 short runs):")
        try show("raw RSA-2048 private-key operation") { _ = try rawKey.signature(for: digest, padding: .insecurePKCS1v1_5) }
        say("outgoing:")
        try show("MIME parse of the message") { _ = try MIMEEntity(parsing: message) }
        try show("CMS sign (detached)") {
            _ = try CMSSignature.sign(content: message, detached: true, key: sender.key, certificate: sender.certificate) }
        try show("S/MIME sign") { _ = try smime.sign(message, identity: sender) }
        try show("MIME parse of the signed message") { _ = try MIMEEntity(parsing: signed) }
        try show("CRLF check of the signed message") { _ = LineEndings.isCanonical(signed) }
        try show("CMS encrypt") {
            _ = try CMSEnvelope.encrypt(content: signed, recipients: [EnvelopeRecipient(certificate: recipient.certificate)]) }
        try show("base64 of the envelope") { _ = Base64.encode(der) }
        try show("S/MIME encrypt") { _ = try smime.encrypt(signed, to: [recipient.certificate]) }
        try show("S/MIME sign+encrypt") { _ = try smime.signAndEncrypt(message, identity: sender, to: [recipient.certificate]) }
        say("incoming:")
        try show("MIME parse of the wire message") { _ = try MIMEEntity(parsing: wire) }
        try show("base64 decode of the envelope") { _ = try MIMEEntity(parsing: wire).decodedBody() }
        try show("ContentInfo parse") { _ = try ContentInfo.parse(der) }
        try show("EnvelopedData parse") { _ = try info.unwrap(EnvelopedData.self, expecting: CMSOID.envelopedData) }
        try show("CMS decrypt") {
            _ = try CMSEnvelope.decrypt(info, certificate: recipient.certificate, key: recipient.key) }
        try show("S/MIME decrypt") { _ = try smime.decrypt(wire, identity: recipient) }
        try show("MIME parse of the decrypted message") { _ = try MIMEEntity(parsing: decrypted) }
        try show("signature part: base64 + ContentInfo") {
            _ = try ContentInfo.parse(try MIMEEntity(parsing: decrypted).parts[1].decodedBody()) }
        let sigDER = try MIMEEntity(parsing: decrypted).parts[1].decodedBody()
        try show("SignedData parse") {
            _ = try ContentInfo.parse(sigDER).unwrap(SignedData.self, expecting: CMSOID.signedData) }
        try show("RSA public key parse") {
            _ = try _RSA.Signing.PublicKey(unsafeDERRepresentation: sender.certificate.subjectPublicKeyInfo) }
        let rsaSignature = try rawKey.signature(for: digest, padding: .insecurePKCS1v1_5)
        try show("RSA public key verify (parsed key)") {
            _ = rawKey.publicKey.isValidSignature(rsaSignature, for: digest, padding: .insecurePKCS1v1_5) }
        try show("certificate parse (swift-certificates)") {
            for der in signedData.certificates { _ = try Certificate(derEncoded: der) } }
        try show("certificate parse (CertificateSummary)") {
            for der in signedData.certificates { _ = try CertificateSummary(der: der) } }
        try show("MIME parse of the signed content") { _ = try MIMEEntity(parsing: Array(content)) }
        try show("CMS signature check") {
            _ = try CMSSignature.verifySignatures(signedData, detachedContent: content) }
        let senderCertificate = try CertificateLoading.x509(sender.certificate)
        let fresh = SignerTrust(trust: DirectTrust(anchors: validator.trust.anchors))
        try await show("trust evaluation (Direct policy)") {
            _ = await fresh.evaluateSigner(senderCertificate, intermediates: []) }
        try await show("trust evaluation (verdict kept)") {
            _ = await validator.evaluateSigner(senderCertificate, intermediates: []) }
        try await show("S/MIME verify") { _ = try await smime.verify(decrypted, trust: validator) }
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

    static func median(_ values: [Double]) -> Double {
        let v = values.sorted()
        guard !v.isEmpty else { return 0 }
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
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

    /// `openssl speed -seconds N rsa2048`'s signs per second, or nil when openssl is not there.
    static func opensslSpeed(seconds: Int) -> Double? {
        guard let (status, output) = CleanChild.run(["openssl", "speed", "-seconds", "\(seconds)", "rsa2048"]), status == 0 else { return nil }
        // "rsa 2048 bits 0.000241s 0.000007s   4150.2 138000.1": sign/s is the third number.
        let line = String(decoding: output, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("rsa 2048 bits") }
        let numbers = line?.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: "s"))) } ?? []
        return numbers.count >= 5 ? numbers[3] : nil
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

    func identity(address: String, keys: any KeyProvider = BuiltinKeyProvider()) throws -> SMIMEIdentity {
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
        return try SMIMEIdentity(certificate: CertificateSummary(der: Self.der(cert)), key: keys.handle(pkcs8: LocalPrivateKey(rsa: key).pkcs8DER))
    }

    static func der(_ cert: Certificate) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(cert)
        return s.serializedBytes
    }
}

extension KeyProviderChoice: ExpressibleByArgument {}
