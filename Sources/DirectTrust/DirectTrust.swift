import CryptographicMessageSyntax
import DirectCore
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The Direct trust decision (Direct AS 1.2, trust anchors): is this certificate trusted
/// for this address, for this purpose, by this local domain in this
/// direction, now? Path building fetches missing intermediates from AIA
/// caIssuers URLs, revocation is checked against each certificate's CRL
/// distribution point, and every refusal names the certificate and the check.
public struct DirectTrust: Sendable {
    public let anchors: TrustAnchors
    public let policy: TrustPolicy
    /// Reaches AIA and CRL URLs; nil means offline (CRL-bearing certificates
    /// then follow `policy.revocationUnreachable`).
    public let fetcher: (any HTTPFetching)?
    public let cache: TrustFetchCache
    /// Trusted verdicts reused for `verdictLifetime` (zero, the default: none).
    public let verdicts: TrustVerdictCache

    public init(anchors: TrustAnchors, policy: TrustPolicy = .direct, fetcher: (any HTTPFetching)? = nil,
                cache: TrustFetchCache = TrustFetchCache(), verdictLifetime: Duration = .zero) {
        self.anchors = anchors
        self.policy = policy
        self.fetcher = fetcher
        self.cache = cache
        self.verdicts = TrustVerdictCache(lifetime: verdictLifetime)
    }

    public func evaluate(_ request: TrustRequest) async -> TrustVerdict {
        if let kept = verdicts.verdict(for: request) { return kept }
        let verdict = await evaluateAfresh(request)
        verdicts.keep(verdict, for: request)
        return verdict
    }

    func evaluateAfresh(_ request: TrustRequest) async -> TrustVerdict {
        let leaf = request.certificate
        var checks: [TrustCheck] = []
        func done(_ chain: [Certificate] = []) -> TrustVerdict {
            TrustVerdict(certificate: leaf, checks: checks, chain: checks.contains { $0.status == .failed } ? [] : chain)
        }

        // Direct AS 1.2 4.0: bound to the address (rfc822Name) or its domain (dNSName).
        if let binding = request.binding { checks.append(Self.bindingCheck(leaf, binding)) }
        checks.append(Self.keyUsageCheck(leaf, request.purpose))
        checks.append(algorithmCheck(leaf))
        checks.append(Self.validityCheck(leaf, at: request.time))
        if !policy.requiredPolicies.isEmpty { checks.append(policyCheck(leaf)) }
        if checks.contains(where: { $0.status == .failed }) { return done() }

        let anchors = anchors.anchors(localDomain: request.localDomain, direction: request.direction)
        guard !anchors.isEmpty else {
            let scope = request.localDomain == TrustAnchors.everyDomain ? "" : " of \(request.localDomain)"
            let others = self.anchors.all(localDomain: request.localDomain).count
            let note = others > 0 ? " (\(others) anchor(s) configured for the other direction only)" : ""
            checks.append(TrustCheck("trust anchor", .failed, "no \(request.direction.rawValue) trust anchor\(scope)\(note)"))
            return done()
        }

        // Path building: complete the intermediates from AIA where needed (RFC 5280 4.2.2.1).
        var intermediates = request.intermediates
        checks.append(contentsOf: await completeIntermediates(leaf, &intermediates, anchors: anchors.map(\.certificate)))

        var verifier = Verifier(rootCertificates: CertificateStore(anchors.map(\.certificate))) {
            RFC5280Policy(validationTime: request.time)
            DirectAlgorithmVerifierPolicy(policy: policy.algorithms, maxChainLength: policy.maxChainLength)
        }
        let chain: [Certificate]
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
        case .validCertificate(let validated):
            chain = Array(validated)
            let anchor = chain.last.flatMap { a in anchors.first { $0.certificate == a } }
            checks.append(TrustCheck(
                "chain", .passed,
                "\(chain.count) certificate(s) to the \(request.direction.rawValue) anchor \(chain.last.map { "\($0.subject)" } ?? "")"
                    + (anchor.map { " from \($0.source)" } ?? "")))
        case .couldNotValidate(let failures):
            if let f = failures.first {
                checks.append(TrustCheck("chain", .failed, "\(f.policyFailureReason)"))
            } else {
                checks.append(TrustCheck(
                    "chain", .failed,
                    "does not chain to an \(request.direction.rawValue) trust anchor"
                        + (request.localDomain == TrustAnchors.everyDomain ? "" : " of \(request.localDomain)")
                        + " (issuer \(leaf.issuer) is neither an anchor nor a known intermediate)"))
            }
            return done()
        }

        // RFC 6960: OCSP where a certificate names a responder.
        let withResponders = chain.dropLast().filter { !OCSPRevocation.responders($0).isEmpty }
        var ocsp: OCSPOutcome? = nil
        if !withResponders.isEmpty {
            ocsp = await OCSPRevocation(fetcher: fetcher, policy: policy).check(chain: chain, at: request.time)
        }
        // RFC 5280 6.3: CRL revocation of every certificate but the anchor; a good OCSP answer covers an unreachable CRL.
        var crlAnswered = true
        for (i, cert) in chain.dropLast().enumerated() {
            let answeredByOCSP: Bool
            if case .good = ocsp, withResponders.contains(cert) { answeredByOCSP = true } else { answeredByOCSP = false }
            var check = await revocationCheck(cert, issuer: chain[i + 1], at: request.time, ocspAnswered: answeredByOCSP)
            if i > 0 { check = check.about(cert) }
            if withResponders.contains(cert), check.status != .passed { crlAnswered = false }
            checks.append(check)
        }
        if let ocsp {
            let names = withResponders.map { "\($0.subject)" }.joined(separator: ", ")
            switch ocsp {
            case .good:
                checks.append(TrustCheck("OCSP", .passed, "\(names) good (responder \(withResponders.flatMap(OCSPRevocation.responders).joined(separator: ", ")))"))
            case .revoked(let reason):
                let text = reason.replacingOccurrences(of: ", reason: nil", with: "")
                checks.append(TrustCheck("OCSP", .failed, "\(CertificateNaming.describe(withResponders[0]))\(withResponders.count > 1 ? " or its issuer" : "") is \(text)"))
            case .unavailable(let reason):
                if crlAnswered {
                    checks.append(TrustCheck("OCSP", .warning, "\(reason) (the CRL answered instead)"))
                } else {
                    switch policy.revocationUnreachable {
                    case .fail: checks.append(TrustCheck("OCSP", .failed, "no answer for \(names): \(reason) (policy: fail closed)"))
                    case .accept: checks.append(TrustCheck("OCSP", .warning, "no answer for \(names): \(reason) (policy: accepted without revocation check)"))
                    }
                }
            }
        }
        return done(chain)
    }

    // MARK: Checks on the leaf

    public static func bindingCheck(_ cert: Certificate, _ binding: CertificateBinding) -> TrustCheck {
        let sans = (try? cert.extensions.subjectAlternativeNames).map(Array.init) ?? []
        var emails: [String] = []
        var dnsNames: [String] = []
        for n in sans {
            if case .rfc822Name(let e) = n { emails.append(e) }
            if case .dnsName(let d) = n { dnsNames.append(d) }
        }
        let domainMatch = dnsNames.contains { $0.lowercased().trimmingTrailingDot == binding.domain }
        switch binding {
        case .address(let address):
            // Addresses compare case-insensitively, as every Direct peer does.
            if emails.contains(where: { $0.lowercased() == address.description.lowercased() }) {
                return TrustCheck("binding", .passed, "address-bound to \(address) (rfc822Name)")
            }
            if domainMatch {
                return TrustCheck("binding", .passed, "domain-bound to \(address.domain) (dNSName)")
            }
        case .domain(let domain):
            if domainMatch { return TrustCheck("binding", .passed, "domain-bound to \(domain) (dNSName)") }
        }
        let found = (emails.map { "rfc822Name \($0)" } + dnsNames.map { "dNSName \($0)" }).joined(separator: ", ")
        return TrustCheck("binding", .failed,
                          "not bound to \(binding.text): subjectAltName has \(found.isEmpty ? "no rfc822Name or dNSName" : found)")
    }

    static func keyUsageCheck(_ cert: Certificate, _ purpose: TrustPurpose) -> TrustCheck {
        guard let ku = try? cert.extensions.keyUsage else {
            return TrustCheck("key usage", .passed, "no key usage extension (any use, RFC 5280 4.2.1.3)")
        }
        switch purpose {
        case .signing:
            return ku.digitalSignature
                ? TrustCheck("key usage", .passed, "digitalSignature")
                : TrustCheck("key usage", .failed, "does not allow digitalSignature, needed to sign")
        case .encryption:
            return ku.keyEncipherment
                ? TrustCheck("key usage", .passed, "keyEncipherment")
                : TrustCheck("key usage", .failed, "does not allow keyEncipherment, needed to encrypt to it")
        }
    }

    func algorithmCheck(_ cert: Certificate) -> TrustCheck {
        do {
            let keyType = DirectAlgorithmVerifierPolicy.keyType(cert.publicKey)
            try DirectAlgorithmVerifierPolicy.check(cert, policy: policy.algorithms, name: "")
            return TrustCheck("algorithms", .passed, "\(keyType) key, signed with \(DirectAlgorithmVerifierPolicy.name(cert.signatureAlgorithm))")
        } catch {
            return TrustCheck("algorithms", .failed, "\(error)".replacingOccurrences(of: " ()", with: ""))
        }
    }

    static func validityCheck(_ cert: Certificate, at time: Date) -> TrustCheck {
        func text(_ d: Date) -> String { UTCDateTime(d).iso8601 }
        if time < cert.notValidBefore {
            return TrustCheck("validity", .failed, "not valid before \(text(cert.notValidBefore))")
        }
        if time > cert.notValidAfter {
            return TrustCheck("validity", .failed, "expired on \(text(cert.notValidAfter))")
        }
        return TrustCheck("validity", .passed, "valid until \(text(cert.notValidAfter))")
    }

    func policyCheck(_ cert: Certificate) -> TrustCheck {
        let asserted = (try? CertificatePolicyOIDs.read(cert)) ?? []
        if let match = policy.requiredPolicies.first(where: asserted.contains) {
            return TrustCheck("certificate policy", .passed, "asserts \(match)")
        }
        return TrustCheck("certificate policy", .failed,
                          "asserts none of the required policies \(policy.requiredPolicies.map(\.description).joined(separator: ", "))"
                              + (asserted.isEmpty ? "" : " (has \(asserted.map(\.description).joined(separator: ", ")))"))
    }

    // MARK: AIA

    /// Walks from the leaf towards an anchor; where the next issuer is
    /// neither given nor an anchor, fetches it from the caIssuers URL.
    func completeIntermediates(_ leaf: Certificate, _ intermediates: inout [Certificate], anchors: [Certificate]) async -> [TrustCheck] {
        var checks: [TrustCheck] = []
        var tip = leaf
        for _ in 0..<policy.maxChainLength {
            if anchors.contains(where: { $0.subject == tip.issuer }) || tip.issuer == tip.subject { break }
            if let next = intermediates.first(where: { $0.subject == tip.issuer && $0 != tip }) {
                tip = next
                continue
            }
            guard let aia = try? tip.extensions.authorityInformationAccess,
                let url = aia.compactMap({ d -> String? in
                    guard d.method == .issuingCA, case .uniformResourceIdentifier(let u) = d.location else { return nil }
                    return u.hasPrefix("http://") || u.hasPrefix("https://") ? u : nil
                }).first
            else { break }
            guard let fetcher else {
                checks.append(TrustCheck("AIA", .warning, "issuer \(tip.issuer) is missing and fetching \(url) is off"))
                break
            }
            do {
                let fetched = try await cache.issuers(url: url, fetcher: fetcher, policy: policy)
                guard let next = fetched.first(where: { $0.subject == tip.issuer }) else {
                    checks.append(TrustCheck("AIA", .warning, "\(url) did not hold \(tip.issuer)"))
                    break
                }
                intermediates.append(contentsOf: fetched)
                checks.append(TrustCheck("AIA", .passed, "fetched \(next.subject) from \(url)"))
                tip = next
            } catch {
                let cause = error is HTTPFetchError ? "\(error)" : "\(url): \(error)"
                checks.append(TrustCheck("AIA", .warning, "could not fetch the issuer of \(tip.subject): \(cause)"))
                break
            }
        }
        return checks
    }

    // MARK: Revocation

    func revocationCheck(_ cert: Certificate, issuer: Certificate, at time: Date, ocspAnswered: Bool = false) async -> TrustCheck {
        let who = CertificateNaming.describe(cert)
        let urls = ((try? CRLDistributionPointURLs.read(cert)) ?? []).filter { $0.hasPrefix("http://") || $0.hasPrefix("https://") }
        guard !urls.isEmpty else {
            return TrustCheck("revocation", .skipped, "\(cert.subject) names no CRL distribution point")
        }
        var problems: [String] = []
        for url in urls {
            guard let fetcher else {
                problems.append("\(url): fetching is off")
                continue
            }
            do {
                let crl = try await cache.crl(url: url, fetcher: fetcher, policy: policy, at: time)
                // RFC 5280 6.3.3: issued by the certificate's issuer, signed by it, current.
                guard crl.issuer == issuer.subject else {
                    problems.append("\(url) is issued by \(crl.issuer), not \(issuer.subject)")
                    continue
                }
                guard crl.isSigned(by: issuer) else {
                    problems.append("\(url) is not signed by \(issuer.subject) (\(crl.signatureAlgorithmName))")
                    continue
                }
                if let next = crl.nextUpdate, next < time {
                    problems.append("\(url) is stale (nextUpdate \(UTCDateTime(next).iso8601))")
                    continue
                }
                if crl.isRevoked(cert.serialNumber) {
                    return TrustCheck("revocation", .failed, "\(who) is revoked (CRL \(url))")
                }
                return TrustCheck("revocation", .passed, "\(cert.subject) not revoked (CRL \(url))")
            } catch let error as HTTPFetchError {
                problems.append("\(error)")  // names the URL itself
            } catch {
                problems.append("\(url): \(error)")
            }
        }
        let detail = "CRL of \(cert.subject) unavailable: \(problems.joined(separator: "; "))"
        if ocspAnswered { return TrustCheck("revocation", .warning, detail + " (OCSP answered instead)") }
        switch policy.revocationUnreachable {
        case .fail: return TrustCheck("revocation", .failed, detail + " (policy: fail closed)")
        case .accept: return TrustCheck("revocation", .warning, detail + " (policy: accepted without revocation check)")
        }
    }
}

extension String {
    var trimmingTrailingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}

/// The Direct trust policy answering for S/MIME signers: signing purpose,
/// incoming direction, the anchors of `localDomain`.
public struct SignerTrust: SignerTrustEvaluating {
    public let trust: DirectTrust
    public let localDomain: String
    public let time: Date

    public init(trust: DirectTrust, localDomain: String = TrustAnchors.everyDomain, time: Date = Date()) {
        self.trust = trust
        self.localDomain = localDomain
        self.time = time
    }

    public func evaluateSigner(_ signer: Certificate, intermediates: [Certificate]) async -> SignerTrustResult {
        let verdict = await trust.evaluate(TrustRequest(
            certificate: signer, intermediates: intermediates, binding: nil, purpose: .signing, direction: .incoming,
            localDomain: localDomain, time: time))
        if verdict.isTrusted { return .trusted(verdict.chain) }
        return .untrusted(verdict.reason ?? "not trusted")
    }
}
