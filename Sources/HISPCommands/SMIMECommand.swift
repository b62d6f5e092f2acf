import ArgumentParser
import CryptographicMessageSyntax
import DirectTrust
import HTTPFetch
import InternetMessage
import SMIME
import Foundation

struct SMIMECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smime",
        abstract: "Sign, verify, encrypt and decrypt S/MIME messages as Direct peers exchange them.",
        subcommands: [Sign.self, Verify.self, Encrypt.self, Decrypt.self]
    )
}

struct InputOutput: ParsableArguments {
    @Option(name: .customLong("in"), help: "Input message (default: standard input).")
    var input: String?
    @Option(name: .customLong("out"), help: "Output file (default: standard output).")
    var output: String?
}

extension DigestAlgorithm: ExpressibleByArgument {}
extension ContentEncryption: ExpressibleByArgument {}

enum KeyTransportArgument: String, ExpressibleByArgument, CaseIterable {
    case rsaOAEPSHA256 = "rsa-oaep-sha256"
    case rsaPKCS1v15 = "rsa-pkcs1v15"

    var value: KeyTransport { self == .rsaOAEPSHA256 ? .rsaOAEPSHA256 : .rsaPKCS1v15 }
}

extension SMIMECommand {
    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a message (wrapped as message/rfc822 by default, Direct's shape).")

        @Option(help: "Signer certificate (PEM or DER).") var cert: String
        @Option(help: "Signer private key (PEM or DER; PKCS#8, PKCS#1 or SEC1).") var key: String
        @Option(help: "Intermediate certificates to include.") var chain: [String] = []
        @Option(help: "Digest: sha256, sha384 or sha512.") var digest: DigestAlgorithm = .sha256
        @Flag(help: "Write opaque signed-data instead of multipart/signed.") var opaque = false
        @Flag(name: .customLong("no-wrap"), help: "Sign the message's content without wrapping the whole message.") var noWrap = false
        @OptionGroup var io: InputOutput

        func run() async throws {
            let identity = try CommandIO.identity(cert: cert, key: key, chain: chain)
            let input = try CommandIO.readInput(io.input)
            let output = try SMIME().sign(input, identity: identity, digest: digest, opaque: opaque, wrap: !noWrap)
            try CommandIO.writeOutput(output, to: io.output)
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a signed message against trust anchors and write the signed content.")

        @Option(parsing: .upToNextOption, help: "Trust anchor certificates (PEM or DER).") var anchor: [String]
        @Option(help: "Validate certificates at this time (ISO 8601) instead of now.") var at: String?
        @OptionGroup var io: InputOutput

        func validate() throws {
            guard !anchor.isEmpty else { throw ValidationError("give at least one --anchor") }
        }

        func run() async throws {
            let anchors = try anchor.flatMap { try CommandIO.certificates($0) }
            let time = try at.map { try CommandIO.parseDate($0) } ?? Date()
            let input = try CommandIO.readInput(io.input)
            let trustAnchors = TrustAnchors(try anchors.map { TrustAnchor(certificate: try CertificateLoading.x509($0), source: "--anchor") })
            let result = try await AsyncHTTPFetcher.withFetcher { fetcher in
                let trust = DirectTrust(anchors: trustAnchors, fetcher: fetcher)
                return try await SMIME().verify(input, trust: SignerTrust(trust: trust, time: time))
            }
            try CommandIO.writeOutput(result.content, to: io.output)
        }
    }

    struct Encrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a message to one or more recipient certificates.")

        @Option(parsing: .upToNextOption, help: "Recipient certificates (PEM or DER).") var to: [String]
        @Option(help: "Content encryption: \(ContentEncryption.allCases.map(\.rawValue).joined(separator: ", ")).")
        var cipher: ContentEncryption = .aes256CBC
        @Option(name: .customLong("key-transport"), help: "rsa-oaep-sha256 or rsa-pkcs1v15.")
        var keyTransport: KeyTransportArgument = .rsaOAEPSHA256
        @Flag(name: .customLong("no-wrap"), help: "Encrypt the message's content without wrapping the whole message.") var noWrap = false
        @OptionGroup var io: InputOutput

        func validate() throws {
            guard !to.isEmpty else { throw ValidationError("give at least one --to certificate") }
        }

        func run() async throws {
            let recipients = try to.flatMap { try CommandIO.certificates($0) }
            let input = try CommandIO.readInput(io.input)
            let output = try SMIME().encrypt(input, to: recipients, cipher: cipher, keyTransport: keyTransport.value, wrap: !noWrap)
            try CommandIO.writeOutput(output, to: io.output)
        }
    }

    struct Decrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decrypt a message addressed to our certificate.")

        @Option(help: "Our certificate (PEM or DER).") var cert: String
        @Option(help: "Our private key (PEM or DER).") var key: String
        @OptionGroup var io: InputOutput

        func run() async throws {
            let identity = try CommandIO.identity(cert: cert, key: key)
            let input = try CommandIO.readInput(io.input)
            let result = try SMIME().decrypt(input, identity: identity)
            try CommandIO.writeOutput(result.entity, to: io.output)
        }
    }
}
