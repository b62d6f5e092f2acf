import ArgumentParser
import CertificateAuthority
import CryptographicMessageSyntax
import Foundation
import PKCS12
import SwiftASN1
import X509

struct PKCS12Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pkcs12", abstract: "Move an address's key and certificate chain as a password-protected .p12 file.",
        subcommands: [Export.self, Import.self])

    static func pem(_ der: [UInt8], _ label: String) -> String {
        PEMDocument(type: label, derBytes: der).pemString + "\n"
    }

    /// The first line of a password file (a trailing newline is not part of the password).
    static func password(_ path: String) throws -> String {
        let bytes = try CommandIO.readFile(path, limit: 4096)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw CLIFailure.usage("\(path): the password is not UTF-8") }
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a .p12 (PBES2 AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC) for a workstation or mail client.")

        @Option(help: "The certificate (PEM or DER).") var cert: String
        @Option(help: "Its private key (PEM or DER; PKCS#8, PKCS#1 or SEC1).") var key: String
        @Option(help: "Chain certificates to include (repeatable).") var chain: [String] = []
        @Option(help: "File whose first line is the password.") var passwordFile: String
        @Option(help: "PBKDF2 and MAC iterations.") var iterations: Int = PKCS12.defaultIterations
        @Option(help: "Where to write the .p12 (mode 0600; never overwritten).") var out: String

        func validate() throws {
            guard (10_000...PKCS12.maxIterations).contains(iterations) else {
                throw ValidationError("--iterations must be 10000 to \(PKCS12.maxIterations)")
            }
        }

        func run() async throws {
            let password = try PKCS12Command.password(passwordFile)
            guard password.count >= 8 else {
                throw CLIFailure.usage("\(passwordFile): the password has \(password.count) characters; use at least 8 (the file holds a private key)")
            }
            let certificate = try CommandIO.certificate(cert)
            let privateKey = try CommandIO.privateKey(key)
            guard privateKey.publicKeySPKI == certificate.subjectPublicKeyInfo else {
                throw CLIFailure.usage("\(key) is not the private key of \(cert) (\(certificate.displayName))")
            }
            let chainCerts = try chain.flatMap { try CommandIO.certificates($0) }
            let x509 = try CommandIO.x509Certificate(cert)
            let name = Self.friendlyName(x509)
            try CommandIO.refuseExisting(out)
            let bytes = try PKCS12.export(
                privateKey: privateKey.pkcs8DER, certificate: certificate.der, chain: chainCerts.map(\.der),
                friendlyName: name, password: password, iterations: iterations)
            try CommandIO.writeSecret(bytes, to: out)
            say("wrote \(out): \(privateKey.keyDescription) key and \(1 + chainCerts.count) certificate(s)" + (name.map { " for \($0)" } ?? ""))
            say("  protection: PBES2 (PBKDF2-HMAC-SHA256, \(iterations) iterations, AES-256-CBC), SHA-256 MAC")
        }

        /// The name a mail client shows: the address, else the domain, else the subject.
        static func friendlyName(_ cert: Certificate) -> String? {
            if let sans = try? cert.extensions.subjectAlternativeNames {
                for san in sans { if case .rfc822Name(let a) = san { return a } }
                for san in sans { if case .dnsName(let d) = san { return d } }
            }
            return "\(cert.subject)"
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Read a .p12 (modern or legacy 3DES/RC2) into PEM files.")

        @Option(name: .customLong("in"), help: "The .p12 or .pfx file.") var input: String
        @Option(help: "File whose first line is the password.") var passwordFile: String
        @Option(help: "Where to write the certificate (PEM).") var outCert: String
        @Option(help: "Where to write the private key (PKCS#8 PEM, mode 0600; never overwritten).") var outKey: String
        @Option(help: "Where to write the other certificates (PEM).") var outChain: String?

        func run() async throws {
            let password = try PKCS12Command.password(passwordFile)
            let bytes = try CommandIO.readFile(input, limit: PKCS12.maxFileSize)
            let contents: PKCS12.Contents
            do {
                contents = try PKCS12.read(bytes, password: password)
            } catch let e as PKCS12Error {
                if case .wrongPassword = e { throw CLIFailure.security("\(input): \(e.description)") }
                throw CLIFailure.usage("\(input): \(e.description)")
            }
            let key: LocalPrivateKey
            do { key = try LocalPrivateKey(der: contents.privateKey) } catch let e as CMSError {
                throw CLIFailure.usage("\(input): the private key inside: \(e.description)")
            }
            try CommandIO.refuseExisting(outKey)
            let certificate = try CertificateSummary(der: contents.certificate)
            try CommandIO.writeSecret(Array(PKCS12Command.pem(key.pkcs8DER, "PRIVATE KEY").utf8), to: outKey)
            try CommandIO.writeOutput(Array(PKCS12Command.pem(contents.certificate, "CERTIFICATE").utf8), to: outCert)
            if let outChain {
                try CommandIO.writeOutput(Array(contents.chain.map { PKCS12Command.pem($0, "CERTIFICATE") }.joined().utf8), to: outChain)
            }
            say("read \(input)" + (contents.friendlyName.map { " (\($0))" } ?? ""))
            for line in contents.protection { say("  \(line)") }
            say("  certificate: \(certificate.displayName) -> \(outCert)")
            say("  private key: \(key.keyDescription) -> \(outKey)")
            if contents.chain.isEmpty {
                say("  chain: none in the file")
            } else if let outChain {
                say("  chain: \(contents.chain.count) certificate(s) -> \(outChain)")
            } else {
                say("  chain: \(contents.chain.count) certificate(s) not written (give --out-chain)")
            }
        }
    }
}
