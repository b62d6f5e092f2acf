import X509

/// The trust decision for a signer whose signature checked out: the seam
/// between S/MIME (which finds the signer) and the Direct trust policy
/// (which decides), so neither imports the other.
public protocol SignerTrustEvaluating: Sendable {
    /// `signer` is the signer's certificate; `intermediates` are the other
    /// certificates the message carried.
    func evaluateSigner(_ signer: Certificate, intermediates: [Certificate]) async -> SignerTrustResult
}

public enum SignerTrustResult: Sendable {
    /// Trusted, with the chain leaf first and the anchor last.
    case trusted([Certificate])
    /// Not trusted: which check failed for which certificate.
    case untrusted(String)
}
