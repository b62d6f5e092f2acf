import ArgumentParser
import CertificateAuthority
import CryptographicMessageSyntax
import DirectCore
import Foundation
import SwiftASN1
import X509

/// Options naming an issuing CA: its certificate and its private key.
struct IssuerOptions: ParsableArguments {
    @Option(help: "The issuing CA's certificate (PEM or DER).") var issuerCert: String
    @Option(help: "The issuing CA's private key (PEM or DER).") var issuerKey: String

    func load(purpose: Issuer.Purpose) throws -> Issuer {
        try Self.load(cert: issuerCert, key: issuerKey, purpose: purpose)
    }

    static func load(cert certPath: String, key keyPath: String, purpose: Issuer.Purpose) throws -> Issuer {
        let cert = try CommandIO.x509Certificate(certPath)
        let key = try CommandIO.privateKey(keyPath).certificatePrivateKey
        do {
            return try Issuer(certificate: cert, key: key, purpose: purpose)
        } catch let e as CAError {
            throw CLIFailure.usage("\(certPath): \(e.description)")
        }
    }
}

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "Certificate authorities for Direct domains.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a root CA, or an intermediate CA when an issuer is given.",
            discussion: "The subject is an RFC 4514 string: --subject \"CN=Example Direct CA,O=Example Clinic,C=US\".")

        @Option(help: "Subject distinguished name (RFC 4514).") var subject: String
        @Option(help: "Key type: \(KeySpec.allCases.map(\.rawValue).joined(separator: ", ")).") var key: String = "rsa2048"
        @Option(help: "Validity in days.") var days: Int = 3650
        @Option(help: "Issuing CA certificate (makes an intermediate CA).") var issuerCert: String?
        @Option(help: "Issuing CA private key.") var issuerKey: String?
        @Option(help: "CRL distribution point URL to put in the certificate.") var crlUrl: String?
        @Option(help: "AIA caIssuers URL (where the issuer's certificate is published).") var aiaUrl: String?
        @Option(help: "OCSP responder URL to put in the certificate's AIA.") var ocspUrl: String?
        @Option(help: "Where to write the certificate (PEM).") var outCert: String
        @Option(help: "Where to write the private key (PKCS#8 PEM, mode 0600; never overwritten).") var outKey: String

        func validate() throws {
            guard (1...36500).contains(days) else { throw ValidationError("--days must be 1 to 36500") }
            guard (issuerCert == nil) == (issuerKey == nil) else {
                throw ValidationError("--issuer-cert and --issuer-key go together")
            }
        }

        func run() async throws {
            let spec = try CommandIO.keySpec(key)
            let name = try CommandIO.distinguishedName(subject)
            var issuer: Issuer? = nil
            if let issuerCert, let issuerKey {
                issuer = try IssuerOptions.load(cert: issuerCert, key: issuerKey, purpose: .certificates)
            }
            try CommandIO.refuseExisting(outKey)
            let (privateKey, pem) = try spec.generate()
            let now = Date()
            var notBefore = now - CertificateAuthority.backdating
            var notAfter = now + Double(days) * 86400
            if let issuer, notBefore < issuer.certificate.notValidBefore { notBefore = issuer.certificate.notValidBefore }
            // An intermediate does not outlive its issuer.
            if let issuer, notAfter > issuer.certificate.notValidAfter { notAfter = issuer.certificate.notValidAfter }
            if let issuer { CommandIO.warnOutsideIssuer(issuer.certificate, notBefore: notBefore, notAfter: notAfter) }
            let cert = try CommandIO.ca {
                try CertificateAuthority.createCA(
                    subject: name, key: privateKey, notBefore: notBefore, notAfter: notAfter, issuer: issuer,
                    pointers: .init(crlURL: crlUrl, aiaURL: aiaUrl, ocspURL: ocspUrl))
            }
            try CommandIO.writeSecret(Array(pem.utf8), to: outKey)
            try CommandIO.writeOutput(Array(try CertificateAuthority.pem(cert).utf8), to: outCert)
            say("created \(issuer == nil ? "root" : "intermediate") CA \(cert.subject)")
            say("  serial \(CommandIO.serialText(cert.serialNumber)), \(spec.rawValue), valid \(CommandIO.day(notBefore)) to \(CommandIO.day(notAfter))")
            if let issuer { say("  issued by \(issuer.certificate.subject)") }
            say("  certificate: \(outCert)\n  private key: \(outKey)")
        }
    }
}

struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert", abstract: "Direct end-entity certificates.", subcommands: [Issue.self, Export.self, Import.self])

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an address-bound or domain-bound certificate in the Direct profile.")

        @OptionGroup var issuer: IssuerOptions
        @Option(help: "Bind to this Direct address (subjectAltName rfc822Name).") var address: String?
        @Option(help: "Bind to this domain (subjectAltName dNSName).") var domain: String?
        @Option(help: "Key type: \(KeySpec.allCases.map(\.rawValue).joined(separator: ", ")).") var key: String = "rsa2048"
        @Option(help: "Key usage: sign, encrypt or both.") var usage: String = "both"
        @Option(help: "Validity in days from now.") var days: Int = 365
        @Option(help: "Start of validity (ISO 8601), taken as given.") var notBefore: String?
        @Option(help: "End of validity (ISO 8601), taken as given.") var notAfter: String?
        @Option(help: "CRL distribution point URL.") var crlUrl: String?
        @Option(help: "AIA caIssuers URL (where the issuer's certificate is published).") var aiaUrl: String?
        @Option(help: "OCSP responder URL to put in the certificate's AIA.") var ocspUrl: String?
        @Option(help: "Certificate policy OID (repeatable), e.g. a DirectTrust 1.3.6.1.4.1.41179 policy.") var policy: [String] = []
        @Option(help: "Where to write the certificate (PEM).") var outCert: String
        @Option(help: "Where to write the private key (PKCS#8 PEM, mode 0600; never overwritten).") var outKey: String

        func validate() throws {
            guard (address == nil) != (domain == nil) else { throw ValidationError("give exactly one of --address and --domain") }
            guard (1...36500).contains(days) else { throw ValidationError("--days must be 1 to 36500") }
            guard policy.count <= 16 else { throw ValidationError("at most 16 --policy OIDs") }
        }

        func run() async throws {
            let binding: CertificateBinding
            if let address {
                guard let a = DirectAddress(address) else { throw CLIFailure.usage("--address \(address) is not a Direct address (local@domain)") }
                binding = .address(a)
            } else {
                binding = .domain(try CommandIO.domainName(domain ?? ""))
            }
            let spec = try CommandIO.keySpec(key)
            guard let use = CertificateUsage(rawValue: usage) else {
                throw CLIFailure.usage("--usage \(usage): use sign, encrypt or both")
            }
            let oids = try policy.map { text in
                do { return try ASN1ObjectIdentifier(dotRepresentation: text) } catch {
                    throw CLIFailure.usage("--policy \(text) is not a dotted OID such as 1.3.6.1.4.1.41179.1.3")
                }
            }
            let ca = try issuer.load(purpose: .certificates)
            let now = Date()
            // Defaults stay inside the issuer's validity (a CA made a moment ago has a notBefore only just in the past);
            // given dates are taken as they are, with a warning.
            let notBefore = try notBefore.map { try CommandIO.parseDate($0, option: "--not-before") }
                ?? max(now - CertificateAuthority.backdating, ca.certificate.notValidBefore)
            let notAfter = try notAfter.map { try CommandIO.parseDate($0, option: "--not-after") }
                ?? min(now + Double(days) * 86400, ca.certificate.notValidAfter)
            CommandIO.warnOutsideIssuer(ca.certificate, notBefore: notBefore, notAfter: notAfter)
            try CommandIO.refuseExisting(outKey)
            let (privateKey, pem) = try spec.generate()
            let cert = try CommandIO.ca {
                try CertificateAuthority.issue(
                    binding: binding, publicKey: privateKey.publicKey, usage: use, notBefore: notBefore, notAfter: notAfter,
                    issuer: ca, pointers: .init(crlURL: crlUrl, aiaURL: aiaUrl, ocspURL: ocspUrl), policies: oids)
            }
            try CommandIO.writeSecret(Array(pem.utf8), to: outKey)
            try CommandIO.writeOutput(Array(try CertificateAuthority.pem(cert).utf8), to: outCert)
            let kind: String
            switch binding {
            case .address: kind = "address-bound"
            case .domain: kind = "domain-bound"
            }
            say("issued \(kind) certificate for \(binding.text) (\(use.rawValue), \(spec.rawValue))")
            say("  serial \(CommandIO.serialText(cert.serialNumber)), valid \(CommandIO.day(notBefore)) to \(CommandIO.day(notAfter))")
            say("  issued by \(ca.certificate.subject)")
            say("  certificate: \(outCert)\n  private key: \(outKey)")
        }
    }
}

struct CRLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crl", abstract: "Certificate revocation lists.", subcommands: [Issue.self])

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a CRL listing the given certificates or serial numbers as revoked.",
            discussion: "Publish the file at the URL given as --crl-url when the certificates were issued.")

        @OptionGroup var issuer: IssuerOptions
        @Option(help: "A certificate to revoke (repeatable).") var revokeCert: [String] = []
        @Option(help: "A serial number to revoke, in hex (repeatable).") var revokeSerial: [String] = []
        @Option(help: "Days until the next update.") var days: Int = 30
        @Option(help: "Output format: der (what HTTP distribution points serve) or pem.") var format: String = "der"
        @Option(help: "Where to write the CRL.") var out: String

        func validate() throws {
            guard (1...3650).contains(days) else { throw ValidationError("--days must be 1 to 3650") }
            guard format == "der" || format == "pem" else { throw ValidationError("--format must be der or pem") }
        }

        func run() async throws {
            let ca = try issuer.load(purpose: .crls)
            var serials: [[UInt8]] = []
            for path in revokeCert {
                let cert = try CommandIO.x509Certificate(path)
                guard cert.issuer == ca.certificate.subject else {
                    throw CLIFailure.usage("\(path) was issued by \(cert.issuer), not by \(ca.certificate.subject)")
                }
                serials.append(Array(cert.serialNumber.bytes))
            }
            for hex in revokeSerial {
                guard let bytes = CommandIO.hexBytes(hex), !bytes.isEmpty, bytes.count <= 20 else {
                    throw CLIFailure.usage("--revoke-serial \(hex) is not a hex serial number of at most 20 bytes")
                }
                serials.append(bytes)
            }
            let now = Date()
            let der = try CommandIO.ca {
                try RevocationList.issue(
                    issuer: ca, entries: serials.map { .init(serial: $0, revocationDate: now) }, thisUpdate: now,
                    nextUpdate: now + Double(days) * 86400,
                    // RFC 5280 5.2.3: increases with each CRL; milliseconds since 1970 do.
                    crlNumber: UInt64(now.timeIntervalSince1970 * 1000))
            }
            try CommandIO.writeOutput(format == "pem" ? Array(RevocationList.pem(der).utf8) : der, to: out)
            say("issued CRL of \(ca.certificate.subject) with \(serials.count) revoked serial(s), next update \(CommandIO.day(now + Double(days) * 86400))")
            for s in serials { say("  revoked \(s.map { String(format: "%02X", $0) }.joined())") }
            say("  written to \(out) (\(format.uppercased()))")
        }
    }
}
