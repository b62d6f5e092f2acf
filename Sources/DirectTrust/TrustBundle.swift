import CryptographicMessageSyntax
import DirectCore
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A trust bundle subscription (DirectTrust trust bundles): a PKCS#7 certs-only file
/// of anchors, optionally wrapped in a CMS SignedData whose signer must
/// chain to a bundle-signing anchor, read from a file or a URL and
/// refreshed on an interval.
public struct TrustBundleSource: Sendable, Hashable {
    /// A file path or an http(s):// URL.
    public var location: String
    /// Anchors the bundle's signer must chain to. Empty: the bundle must be
    /// unsigned and come from a file or https:// (never plain http).
    public var signingAnchors: [Certificate]
    /// Directions the bundle's anchors are trusted for.
    public var directions: Set<TrustDirection>
    public var refreshInterval: Duration

    public static let defaultRefreshInterval: Duration = .seconds(24 * 3600)

    public init(location: String, signingAnchors: [Certificate] = [], directions: Set<TrustDirection> = Set(TrustDirection.allCases),
                refreshInterval: Duration = defaultRefreshInterval) {
        self.location = location
        self.signingAnchors = signingAnchors
        self.directions = directions
        self.refreshInterval = refreshInterval
    }

    var isPlainHTTP: Bool { location.lowercased().hasPrefix("http://") }
}

/// What one bundle contributed, and how it was checked.
public struct LoadedTrustBundle: Sendable {
    public let source: TrustBundleSource
    public let anchors: [TrustAnchor]
    /// The signer, when the bundle was signed and its signature and chain checked out.
    public let signer: Certificate?
    public let loadedAt: Date
}

public enum TrustBundleError: DirectError, Equatable {
    /// The bundle could not be read or parsed.
    case unreadable(location: String, reason: String)
    /// A security check on the bundle itself failed.
    case refused(location: String, check: String, reason: String)

    public var kind: FailureKind {
        switch self {
        case .unreadable: return .malformedInput
        case .refused: return .security
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let l, let r): return "trust bundle \(l): \(r)"
        case .refused(let l, let c, let r): return "trust bundle \(l) refused: \(c) failed: \(r)"
        }
    }
}

public enum TrustBundleReader {
    /// Reads a bundle's bytes: certs-only PKCS#7 (DER or PEM) or PEM
    /// certificates, or a CMS SignedData carrying one as its content.
    public static func read(
        _ bytes: [UInt8], source: TrustBundleSource, at time: Date, trustPolicy: TrustPolicy = .direct,
        fetcher: (any HTTPFetching)? = nil
    ) async throws -> LoadedTrustBundle {
        let location = source.location
        let signed: (content: [UInt8], signedData: SignedData)?
        do {
            signed = try signedContent(bytes)
        } catch {
            throw TrustBundleError.unreadable(location: location, reason: "\(error)")
        }
        var signer: Certificate? = nil
        let certificates: [Certificate]
        if let signed {
            guard !source.signingAnchors.isEmpty else {
                throw TrustBundleError.refused(
                    location: location, check: "bundle signature",
                    reason: "the bundle is signed, but no bundle-signing anchor is configured to verify it")
            }
            signer = try await verifySigner(signed.signedData, source: source, at: time, policy: trustPolicy, fetcher: fetcher)
            do {
                certificates = try CertificateBundle.read(signed.content)
            } catch {
                throw TrustBundleError.unreadable(location: location, reason: "signed content: \(error)")
            }
        } else {
            guard source.signingAnchors.isEmpty else {
                throw TrustBundleError.refused(
                    location: location, check: "bundle signature",
                    reason: "a bundle-signing anchor is configured, but the bundle is not signed")
            }
            // An unsigned bundle is only as good as the channel it came over.
            guard !source.isPlainHTTP else {
                throw TrustBundleError.refused(
                    location: location, check: "bundle transport",
                    reason: "an unsigned bundle must come from a file or an https:// URL, not plain http")
            }
            do {
                certificates = try CertificateBundle.read(bytes)
            } catch {
                throw TrustBundleError.unreadable(location: location, reason: "\(error)")
            }
        }
        guard !certificates.isEmpty else { throw TrustBundleError.unreadable(location: location, reason: "it holds no certificates") }
        return LoadedTrustBundle(
            source: source, anchors: certificates.map { TrustAnchor(certificate: $0, directions: source.directions, source: location) },
            signer: signer, loadedAt: time)
    }

    /// The encapsulated content of a signed bundle, or nil for a certs-only one.
    static func signedContent(_ bytes: [UInt8]) throws -> (content: [UInt8], signedData: SignedData)? {
        var der = bytes
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            guard let block = PEMText.firstBlock(text, labels: ["PKCS7", "CMS"]) else { return nil }
            der = block
        }
        guard let info = try? ContentInfo.parse(der), info.contentType == CMSOID.signedData else { return nil }
        let sd = try info.unwrap(SignedData.self, expecting: CMSOID.signedData)
        // RFC 5652 5.2: a certs-only bundle has no signers and no content.
        guard !sd.signerInfos.isEmpty else { return nil }
        guard let content = sd.encapContentInfo.eContent else {
            throw TrustError.malformed("signed bundle without encapsulated content")
        }
        return (Array(content), sd)
    }

    /// RFC 5652 5.6 signature check, then the Direct trust policy (signing
    /// purpose) against the bundle-signing anchors.
    static func verifySigner(
        _ sd: SignedData, source: TrustBundleSource, at time: Date, policy: TrustPolicy, fetcher: (any HTTPFetching)?
    ) async throws -> Certificate {
        let location = source.location
        let signers: [VerifiedSigner]
        do {
            signers = try CMSSignature.verifySignatures(sd, detachedContent: nil, policy: policy.algorithms)
        } catch {
            throw TrustBundleError.refused(location: location, check: "bundle signature", reason: "\(error)")
        }
        let others = sd.certificates.compactMap { try? Certificate(derEncoded: $0) }
        let trust = DirectTrust(
            anchors: TrustAnchors(source.signingAnchors.map { TrustAnchor(certificate: $0, source: "bundle-signing anchor") }),
            policy: policy, fetcher: fetcher)
        var signerCert: Certificate? = nil
        for verified in signers {
            let cert: Certificate
            do { cert = try Certificate(derEncoded: verified.certificate.der) } catch {
                throw TrustBundleError.refused(location: location, check: "bundle signer", reason: "signer certificate: \(error)")
            }
            let verdict = await trust.evaluate(TrustRequest(
                certificate: cert, intermediates: others, binding: nil, purpose: .signing, direction: .incoming, time: time))
            guard verdict.isTrusted else {
                throw TrustBundleError.refused(location: location, check: "bundle signer", reason: verdict.reason ?? "not trusted")
            }
            signerCert = signerCert ?? cert
        }
        guard let signerCert else { throw TrustBundleError.refused(location: location, check: "bundle signature", reason: "no signer") }
        return signerCert
    }
}

/// The anchors contributed by bundle subscriptions, refreshed on their
/// intervals. A refresh replaces exactly the anchors that bundle
/// contributed; a failed refresh keeps the last good set and says so.
public actor TrustBundleSubscriptions {
    public struct Report: Sendable {
        public let location: String
        /// nil when the refresh succeeded.
        public let error: String?
        public let anchorCount: Int
    }

    struct Entry {
        var source: TrustBundleSource
        var loaded: LoadedTrustBundle?
        var lastAttempt: Date?
    }

    public typealias Loader = @Sendable (String) async throws -> [UInt8]

    private var entries: [Entry]
    private let load: Loader
    private let policy: TrustPolicy
    private let fetcher: (any HTTPFetching)?

    /// `load` reads a location (a file or a URL): the edge supplies it, so this actor opens nothing itself.
    public init(_ sources: [TrustBundleSource], policy: TrustPolicy = .direct, fetcher: (any HTTPFetching)? = nil, load: @escaping Loader) {
        entries = sources.map { Entry(source: $0) }
        self.load = load
        self.policy = policy
        self.fetcher = fetcher
    }

    /// Reloads every bundle never loaded or whose interval has passed since its last attempt.
    @discardableResult
    public func refreshDue(at now: Date) async -> [Report] {
        var reports: [Report] = []
        for index in entries.indices {
            let entry = entries[index]
            if let last = entry.lastAttempt, now.timeIntervalSince(last) < Double(entry.source.refreshInterval.components.seconds) { continue }
            entries[index].lastAttempt = now
            do {
                let bytes = try await load(entry.source.location)
                let loaded = try await TrustBundleReader.read(bytes, source: entry.source, at: now, trustPolicy: policy, fetcher: fetcher)
                entries[index].loaded = loaded
                reports.append(Report(location: entry.source.location, error: nil, anchorCount: loaded.anchors.count))
            } catch {
                reports.append(Report(
                    location: entry.source.location,
                    error: "\(error)" + (entry.loaded == nil ? "" : " (keeping the \(entry.loaded?.anchors.count ?? 0) anchor(s) loaded before)"),
                    anchorCount: entry.loaded?.anchors.count ?? 0))
            }
        }
        return reports
    }

    /// Every anchor the bundles currently contribute.
    public func anchors() -> [TrustAnchor] {
        entries.flatMap { $0.loaded?.anchors ?? [] }
    }
}
