import ArgumentParser
import CryptographicMessageSyntax
import DirectCore
import DirectTrust
import Foundation
import HTTPFetch
import SwiftASN1
import X509

struct TrustCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust", abstract: "The Direct trust policy.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check whether a certificate is trusted, printing every check.",
            discussion: """
                Exit 0 when trusted, 1 when not (the reason names the certificate and the check), 2 for usage errors.
                Missing intermediates are fetched from AIA URLs and CRLs from distribution points unless --offline.
                """)

        @Option(help: "The certificate to check (PEM or DER).") var cert: String
        @Option(help: "The Direct address it must be bound to.") var address: String?
        @Option(help: "The domain it must be bound to.") var domain: String?
        @Option(help: "Trust anchor certificate(s) for both directions (PEM or DER; repeatable).") var anchor: [String] = []
        @Option(help: "Trust anchor for incoming messages only (repeatable).") var incomingAnchor: [String] = []
        @Option(help: "Trust anchor for outgoing messages only (repeatable).") var outgoingAnchor: [String] = []
        @Option(help: "Intermediate certificates (repeatable).") var intermediate: [String] = []
        @Option(help: "Trust bundle: a PKCS#7 (.p7b) or PEM file, or a URL (repeatable); unsigned bundles only from a file or https://.")
        var bundle: [String] = []
        @Option(help: "Bundle-signing anchor: bundles must be signed by a certificate chaining to it (repeatable).")
        var bundleSigner: [String] = []
        @Option(help: "sign (verifying its signature) or encrypt (encrypting to it).") var purpose: String = "sign"
        @Option(help: "incoming or outgoing (default: incoming to sign, outgoing to encrypt).") var direction: String?
        @Option(help: "Evaluate at this time (ISO 8601) instead of now.") var at: String?
        @Option(help: "Required certificate policy OID (repeatable; one must be asserted).") var policy: [String] = []
        @Option(help: "When a CRL cannot be fetched: fail (default) or accept.") var revocationUnreachable: String = "fail"
        @Flag(help: "Fetch nothing (no AIA, no CRL).") var offline = false

        func validate() throws {
            guard address == nil || domain == nil else { throw ValidationError("give at most one of --address and --domain") }
            guard !(anchor + incomingAnchor + outgoingAnchor + bundle).isEmpty else {
                throw ValidationError("give at least one --anchor, --incoming-anchor, --outgoing-anchor or --bundle")
            }
        }

        func run() async throws {
            guard let purpose = TrustPurpose(rawValue: purpose) else { throw CLIFailure.usage("--purpose must be sign or encrypt") }
            let direction: TrustDirection
            if let d = self.direction {
                guard let parsed = TrustDirection(rawValue: d) else { throw CLIFailure.usage("--direction must be incoming or outgoing") }
                direction = parsed
            } else {
                direction = purpose == .signing ? .incoming : .outgoing
            }
            guard let unreachable = RevocationUnreachable(rawValue: revocationUnreachable) else {
                throw CLIFailure.usage("--revocation-unreachable must be fail or accept")
            }
            var binding: CertificateBinding? = nil
            if let address {
                guard let a = DirectAddress(address) else { throw CLIFailure.usage("--address \(address) is not a Direct address") }
                binding = .address(a)
            } else if let domain {
                binding = .domain(try CommandIO.domainName(domain))
            }
            let required = try policy.map { text in
                do { return try ASN1ObjectIdentifier(dotRepresentation: text) } catch {
                    throw CLIFailure.usage("--policy \(text) is not a dotted OID")
                }
            }
            let time = try at.map { try CommandIO.parseDate($0) } ?? Date()
            let leaf: Certificate
            do {
                leaf = try CommandIO.x509Certificate(cert)
            } catch CMSError.algorithmRefused(let reason) {
                // A key too weak for swift-certificates to parse fails the algorithms check before any other.
                let summary = try CommandIO.certificate(cert)
                say("certificate: \(summary.displayName)")
                say("  algorithms         failed  \(reason)")
                say("verdict: not trusted")
                throw CLIFailure.security("not trusted: algorithms failed for \(summary.displayName): \(reason)")
            }
            let intermediates = try intermediate.flatMap { try CommandIO.x509Certificates($0) }

            let verdict = try await AsyncHTTPFetcher.withFetcher { client in
                let fetcher: AsyncHTTPFetcher? = offline ? nil : client
                var anchors: [TrustAnchor] = []
                let sets: [([String], Set<TrustDirection>)] = [(anchor, Set(TrustDirection.allCases)), (incomingAnchor, [.incoming]), (outgoingAnchor, [.outgoing])]
                for (paths, directions) in sets {
                    for path in paths {
                        anchors += try CommandIO.x509Certificates(path).map { TrustAnchor(certificate: $0, directions: directions, source: path) }
                    }
                }
                let signers = try bundleSigner.flatMap { try CommandIO.x509Certificates($0) }
                for location in bundle {
                    let loaded = try await CommandIO.bundle(
                        TrustBundleSource(location: location, signingAnchors: signers), at: time, fetcher: fetcher)
                    if let signer = loaded.signer { say("bundle \(location): signed by \(signer.subject), \(loaded.anchors.count) anchor(s)") }
                    anchors += loaded.anchors
                }
                let trust = DirectTrust(
                    anchors: TrustAnchors(anchors),
                    policy: TrustPolicy(requiredPolicies: required, revocationUnreachable: unreachable),
                    fetcher: fetcher)
                return await trust.evaluate(TrustRequest(
                    certificate: leaf, intermediates: intermediates, binding: binding, purpose: purpose, direction: direction, time: time))
            }

            say("certificate: \(CommandIO.describe(leaf))")
            say("question: \(purpose == .signing ? "verify signatures of" : "encrypt to") it, \(direction.rawValue)"
                  + (binding.map { ", for \($0.text)" } ?? "") + ", at \(UTCDateTime(time).iso8601)")
            for check in verdict.checks {
                say("  " + check.name.padding(toLength: 19, withPad: " ", startingAt: 0)
                      + check.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + check.detail)
            }
            if verdict.isTrusted {
                say("verdict: trusted; chain: " + verdict.chain.map { "\($0.subject)" }.joined(separator: " <- "))
            } else {
                say("verdict: not trusted")
                throw CLIFailure.security("not trusted: \(verdict.reason ?? "no chain")")
            }
        }
    }
}
