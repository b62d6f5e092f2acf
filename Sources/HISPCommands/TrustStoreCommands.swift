import ArgumentParser
import CryptographicMessageSyntax
import DirectCore
import DirectTrust
import Foundation
import HISPApp
import HTTPFetch
import PKCS12
import Storage
import X509

extension AnchorDirection: ExpressibleByArgument {}

/// `--domain` for anchors and bundles: a hosted domain, or `*` for all of them.
func anchorDomain(_ text: String) throws -> String {
    text == "*" ? "*" : try CommandIO.domainName(text)
}

struct AnchorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchor", abstract: "Trust anchors per hosted domain and direction.", subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trust the CA certificate(s) in FILE for a domain.")
        @Option(help: "The hosted domain the anchor is for (`*`: every hosted domain).") var domain: String
        @Option(help: "incoming, outgoing or both.") var direction: AnchorDirection = .both
        @Argument(help: "PEM or DER certificate file (a PEM file may hold several).") var file: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let d = try anchorDomain(domain)
            let certs = try CommandIO.x509Certificates(file)
            guard !certs.isEmpty else { throw CLIFailure.usage("\(file) holds no certificate") }
            try await store.withStore { s in
                for cert in certs {
                    let record = try await s.addAnchor(
                        domain: d, direction: direction, certificate: try StoredPKI.der(cert), subject: "\(cert.subject)")
                    let isCA = (try? cert.extensions.basicConstraints).map { if case .isCertificateAuthority = $0 { return true } else { return false } } ?? false
                    say("added anchor for \(d) (\(direction.rawValue)): \(cert.subject), sha256 \(record.fingerprint)")
                    if !isCA { say("  note: this is not a CA certificate; only it, not certificates it signs, is trusted") }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List anchors.")
        @Option(help: "Only this domain's.") var domain: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                for a in try await s.anchors(domain: try domain.map(anchorDomain)) {
                    let cert = try StoredPKI.certificate(a.certificate, what: "anchor \(a.id)")
                    say("\(a.fingerprint.prefix(16))  \(a.domain)  \(a.direction.rawValue)  \(a.subject)  valid to \(CommandIO.day(cert.notValidAfter))")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop trusting an anchor (by the start of its SHA-256 as `anchor list` prints).")
        @Option var domain: String
        @Argument(help: "At least 8 hex digits of the anchor's SHA-256.") var fingerprint: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let d = try anchorDomain(domain)
            try await store.withStore { s in
                let removed = try await s.removeAnchor(domain: d, matching: fingerprint)
                say("removed anchor \(removed.subject) (sha256 \(removed.fingerprint)) from \(d)")
            }
        }
    }
}

struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Trust bundle subscriptions per hosted domain.", subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Subscribe a domain to a trust bundle (a file or an https:// URL); it is read once now to check it.")
        @Option(help: "The hosted domain (`*`: every hosted domain).") var domain: String
        @Option(help: "incoming, outgoing or both.") var direction: AnchorDirection = .both
        @Option(help: "Anchor(s) a signed bundle's signer must chain to.") var signer: [String] = []
        @Option(help: "Refresh interval in hours.") var refreshHours: Int = 24
        @Argument(help: "The bundle: a file, or an https:// URL (http:// only for a signed bundle).") var source: String
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard (1...720).contains(refreshHours) else { throw ValidationError("--refresh-hours must be 1 to 720") }
        }

        func run() async throws {
            let d = try anchorDomain(domain)
            let isURL = source.hasPrefix("http://") || source.hasPrefix("https://")
            let location = isURL ? source : URL(fileURLWithPath: source).standardizedFileURL.path
            let signers = try signer.flatMap { try CommandIO.x509Certificates($0) }
            let bundleSource = TrustBundleSource(
                location: location, signingAnchors: signers, directions: direction.trustDirections, refreshInterval: .seconds(refreshHours * 3600))
            let loaded = try await AsyncHTTPFetcher.withFetcher { fetcher in
                try await CommandIO.bundle(bundleSource, at: Date(), fetcher: fetcher)
            }
            let signersPEM = signers.isEmpty ? nil : try signers.map { StoredPKI.pem(try StoredPKI.der($0)) }.joined()
            try await store.withStore { s in
                _ = try await s.addBundle(domain: d, direction: direction, source: location, refreshSeconds: refreshHours * 3600, signersPEM: signersPEM)
                say("subscribed \(d) (\(direction.rawValue)) to \(location): \(loaded.anchors.count) anchor(s) now, refreshed every \(refreshHours) h")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List bundle subscriptions.")
        @Option(help: "Only this domain's.") var domain: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                for b in try await s.bundles(domain: try domain.map(anchorDomain)) {
                    say("\(b.id.prefix(16))  \(b.domain)  \(b.direction.rawValue)  every \(b.refreshSeconds / 3600) h  \(b.signersPEM == nil ? "unsigned" : "signed")  \(b.source)")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unsubscribe a domain from a bundle.")
        @Option var domain: String
        @Argument(help: "The bundle's source as `bundle list` prints it, or its id.") var source: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let d = try anchorDomain(domain)
            try await store.withStore { s in
                try await s.removeBundle(domain: d, source: source)
                say("unsubscribed \(d) from \(source)")
            }
        }
    }
}
