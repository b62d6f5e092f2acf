import DirectCore
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Trusted verdicts kept for a short time, so that a peer sending many
/// messages is not re-validated (chain signatures, policy, revocation lookup)
/// for each one. Only trusted verdicts are kept; a refusal is always
/// evaluated afresh. The cache belongs to one `DirectTrust` value, so its
/// anchors never change under it: changing the anchors makes a new
/// `DirectTrust` and an empty cache.
///
/// A verdict is reused only for the same certificate, intermediates, binding,
/// purpose, direction and local domain, at a validation time within
/// `lifetime` of the one it was made for, and inside the validity of every
/// certificate of its chain (RFC 5280 6.1.3 (a)(2)). What a reused verdict can
/// miss is a revocation published in the meantime: at most `lifetime` later
/// than without the cache (fetched CRLs are kept until their nextUpdate anyway).
public final class TrustVerdictCache: Sendable {
    /// What `hisp serve` uses.
    public static let serverLifetime: Duration = .seconds(60)
    /// Bounds on entries, so that many distinct senders cannot grow it.
    public static let maxEntries = 4096

    struct Key: Hashable, Sendable {
        let certificate: Certificate
        let intermediates: [Certificate]
        let binding: CertificateBinding?
        let purpose: TrustPurpose
        let direction: TrustDirection
        let localDomain: String

        /// Hashes the serial numbers and names only; equality compares
        /// every certificate's bytes.
        func hash(into hasher: inout Hasher) {
            hasher.combine(certificate.serialNumber)
            for c in intermediates { hasher.combine(c.serialNumber) }
            hasher.combine(binding)
            hasher.combine(purpose)
            hasher.combine(direction)
            hasher.combine(localDomain)
        }

        init(_ r: TrustRequest) {
            certificate = r.certificate
            intermediates = r.intermediates
            binding = r.binding
            purpose = r.purpose
            direction = r.direction
            localDomain = r.localDomain.lowercased()
        }
    }

    struct Entry: Sendable {
        let verdict: TrustVerdict
        let time: Date
        /// The latest notBefore and earliest notAfter over the chain.
        let validFrom: Date
        let validUntil: Date
    }

    public let lifetime: TimeInterval
    private let entries: BoundedCache<Key, Entry>

    /// A lifetime of zero keeps nothing.
    public init(lifetime: Duration) {
        let c = lifetime.components
        self.lifetime = max(0, Double(c.seconds) + Double(c.attoseconds) / 1e18)
        entries = BoundedCache(capacity: self.lifetime > 0 ? Self.maxEntries : 0)
    }

    func verdict(for request: TrustRequest) -> TrustVerdict? {
        guard lifetime > 0 else { return nil }
        let key = Key(request)
        guard let e = entries.value(key) else { return nil }
        guard abs(request.time.timeIntervalSince(e.time)) <= lifetime,
            request.time >= e.validFrom, request.time <= e.validUntil
        else {
            entries.set(key, nil)
            return nil
        }
        return e.verdict
    }

    func keep(_ verdict: TrustVerdict, for request: TrustRequest) {
        guard lifetime > 0, verdict.isTrusted else { return }
        let chain = [request.certificate] + verdict.chain
        let entry = Entry(
            verdict: verdict, time: request.time,
            validFrom: chain.map(\.notValidBefore).max() ?? request.time,
            validUntil: chain.map(\.notValidAfter).min() ?? request.time)
        entries.set(Key(request), entry)
    }

    public var count: Int { entries.count }
}
