import CryptographicMessageSyntax
import X509
import SwiftASN1

/// Reads certificates from PEM (any number of CERTIFICATE blocks) or DER.
public enum CertificateLoading {
    public static let maxFileSize = 1024 * 1024

    public static func load(_ bytes: [UInt8]) throws -> [CertificateSummary] {
        guard bytes.count <= maxFileSize else {
            throw SMIMEError.invalidCertificate("certificate file larger than \(maxFileSize) bytes")
        }
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            let ders = PEMText.blocks(text, labels: ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"])
            guard !ders.isEmpty else { throw SMIMEError.invalidCertificate("no CERTIFICATE block in the PEM input") }
            return try ders.map { try summary($0) }
        }
        return [try summary(bytes)]
    }

    static func summary(_ der: [UInt8]) throws -> CertificateSummary {
        do {
            return try CertificateSummary(der: der)
        } catch {
            throw SMIMEError.invalidCertificate("\(error)")
        }
    }

    /// swift-certificates' view, for chain validation.
    public static func x509(_ summary: CertificateSummary) throws -> Certificate {
        do {
            return try Certificate(derEncoded: summary.der)
        } catch {
            // swift-certificates will not even parse a key below its own
            // minimum (RSA-1024): say which policy that breaks, not
            // "incorrectParameterSize".
            try AlgorithmPolicy.direct.checkKey(summary, role: "certificate")
            throw SMIMEError.invalidCertificate("\(summary.displayName): \(error)")
        }
    }
}
