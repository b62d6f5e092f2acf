import ArgumentParser
import CertificateAuthority
import Crypto
import CryptographicMessageSyntax
import DirectCore
import Foundation
import SQLiteStore
import Storage
import SwiftASN1
import X509
#if canImport(Glibc)
import Glibc
#endif

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a data directory and its encrypted store.",
        discussion: """
            The master key never lies in the data directory: give --key-file FILE (created, random, mode 0600, \
            when it does not exist) or a passphrase (--passphrase-file FILE or HISP_PASSPHRASE, stretched with scrypt).
            """)

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let (material, keyExisted) = try await Provisioning.createStore(store)
        say("created data directory \(store.data) (store \(store.databasePath), mode 0600)")
        switch material.kind {
        case .keyFile:
            say(keyExisted ? "  master key: \(store.keyFile ?? "") (existing key file)"
                             : "  master key: created \(store.keyFile ?? "") (256 random bits, mode 0600); back it up apart from the data")
        case .passphrase:
            say("  master key: scrypt (N=2^17, r=8, p=1) of \(material.origin)")
        }
        let keyOption = store.keyFile.map { " --key-file \($0)" } ?? store.passphraseFile.map { " --passphrase-file \($0)" } ?? ""
        say("next: hisp domain add DOMAIN --data \(store.data)\(keyOption)")
    }
}

/// Certificates and keys as the store keeps them (DER, PKCS#8 DER).
enum StoredPKI {
    static func der(_ cert: Certificate) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(cert)
        return s.serializedBytes
    }

    static func certificate(_ der: [UInt8], what: String) throws -> Certificate {
        do { return try Certificate(derEncoded: der) } catch {
            throw CLIFailure.usage("the stored certificate of \(what) does not parse: \(error)")
        }
    }

    static func pem(_ der: [UInt8]) -> String {
        PEMDocument(type: "CERTIFICATE", derBytes: der).pemString + "\n"
    }

    static func fingerprint(_ der: [UInt8]) -> String {
        SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    /// An issuer from a domain's stored CA certificate and key.
    static func issuer(_ store: HISPStore, domain: String) async throws -> Issuer {
        let (certDER, keyDER) = try await store.credential(for: .domainCA(domain))
        let cert = try certificate(certDER, what: "the CA of \(domain)")
        let key = try LocalPrivateKey(der: keyDER).certificatePrivateKey
        return try CommandIO.ca { try Issuer(certificate: cert, key: key, purpose: .certificates) }
    }

    /// A fresh key and an address- or domain-bound certificate from `issuer`, inside its validity.
    static func issue(_ binding: CertificateBinding, issuer: Issuer, days: Int, key spec: KeySpec = .rsa2048) throws -> (Certificate, LocalPrivateKey) {
        let (privateKey, pem) = try spec.generate()
        let now = Date()
        let notBefore = max(now - CertificateAuthority.backdating, issuer.certificate.notValidBefore)
        let notAfter = min(now + Double(days) * 86400, issuer.certificate.notValidAfter)
        let cert = try CommandIO.ca {
            try CertificateAuthority.issue(
                binding: binding, publicKey: privateKey.publicKey, usage: .both, notBefore: notBefore, notAfter: notAfter, issuer: issuer)
        }
        return (cert, try LocalPrivateKey(bytes: Array(pem.utf8)))
    }
}

struct DomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domain", abstract: "Hosted Direct domains.", subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Host a domain: its CA (created unless given), a domain-bound certificate, and the CA as the domain's trust anchor.")

        @Argument(help: "The Direct domain, e.g. direct.example-dental.com.") var domain: String
        @Option(help: "An existing CA certificate to issue this domain's certificates (with --ca-key).") var caCert: String?
        @Option(help: "The existing CA's private key.") var caKey: String?
        @Option(help: "Validity of a created CA, in days.") var caDays: Int = 3650
        @Option(help: "Validity of the domain-bound certificate, in days.") var days: Int = 730
        @OptionGroup var dns: DomainDNSOptions
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard (caCert == nil) == (caKey == nil) else { throw ValidationError("--ca-cert and --ca-key go together") }
            guard (1...36500).contains(caDays), (1...3650).contains(days) else { throw ValidationError("--ca-days 1 to 36500, --days 1 to 3650") }
        }

        func run() async throws {
            let name = try CommandIO.domainName(domain)
            let published = try dns.resolve(domain: name)
            let given = try caCert.flatMap { cert in try caKey.map { key in
                (try IssuerOptions.load(cert: cert, key: key, purpose: .certificates), try CommandIO.privateKey(key).pkcs8DER)
            } }
            try await store.withStore { s in
                let (ca, cert, anchor) = try await Provisioning.addDomain(name, published: published, ca: given, caDays: caDays, days: days, in: s)
                say("added domain \(name)")
                say("  CA: \(ca.certificate.subject)\(caCert == nil ? " (created, RSA 2048, key sealed in the store)" : " (given)")")
                say("  domain-bound certificate: \(CommandIO.describe(cert)), valid to \(CommandIO.day(cert.notValidAfter))")
                say("  trust anchor for \(name) (incoming and outgoing): the CA, sha256 \(anchor.fingerprint)")
                say("  published in DNS by host \(published.host)\(published.ipv4.map { " (\($0))" } ?? ""); see hisp dns records \(name)")
                say("next: hisp address add USER@\(name); give peers the CA: hisp cert export \(name) --ca")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List hosted domains.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                let addresses = try await s.addresses()
                for d in try await s.domains() {
                    let ca = try StoredPKI.certificate(d.caCertificate, what: d.name)
                    let n = addresses.filter { $0.domainID == d.id }.count
                    say("\(d.name)  addresses \(n)  CA \(ca.subject), valid to \(CommandIO.day(ca.notValidAfter))")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop hosting a domain (it must have no addresses left).")
        @Argument var domain: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let name = try CommandIO.domainName(domain)
            try await store.withStore { s in
                try await s.removeDomain(name)
                say("removed domain \(name), its keys, anchors and bundle subscriptions")
            }
        }
    }
}

struct AddressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "address", abstract: "Direct addresses (mailboxes).", subcommands: [Add.self, List.self, Remove.self])

    static func parse(_ text: String) throws -> DirectAddress {
        guard let a = DirectAddress(text) else { throw CLIFailure.usage("\(text) is not a Direct address (local@domain)") }
        return a
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a mailbox with its own key pair and an address-bound certificate from the domain's CA.")

        @Argument(help: "The Direct address, e.g. dr.smith@direct.example-dental.com.") var address: String
        @Option(help: "A file whose first line is the mailbox password (for mail clients, later).") var passwordFile: String?
        @Option(help: "Validity of the certificate, in days.") var days: Int = 730
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard (1...3650).contains(days) else { throw ValidationError("--days must be 1 to 3650") }
        }

        func run() async throws {
            let a = try AddressCommand.parse(address)
            let hash = try passwordFile.map { try PasswordHash.make(try PKCS12Command.password($0)) }
            try await store.withStore { s in
                let cert = try await Provisioning.addAddress(a, passwordHash: hash, days: days, in: s)
                say("added address \(a)")
                say("  certificate: \(CommandIO.describe(cert)), valid to \(CommandIO.day(cert.notValidAfter))")
                say("  key: RSA 2048, sealed in the store\(hash == nil ? "" : "; password set")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List addresses.")
        @Option(help: "Only this domain's.") var domain: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                for a in try await s.addresses(domain: try domain.map(CommandIO.domainName)) {
                    let cert = try StoredPKI.certificate(a.certificate, what: a.address.description)
                    say("\(a.address)  serial \(CommandIO.serialText(cert.serialNumber))  valid to \(CommandIO.day(cert.notValidAfter))  password \(a.hasPassword ? "yes" : "no")")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a mailbox and its key.")
        @Argument var address: String
        @Flag(help: "Also delete the messages in it (refused otherwise while it holds any).") var deleteMessages = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let a = try AddressCommand.parse(address)
            try await store.withStore { s in
                let n = try await s.removeAddress(a, deleteMessages: deleteMessages)
                say("removed address \(a) and its key" + (n > 0 ? ", and \(n) message(s)" : ""))
            }
        }
    }
}
