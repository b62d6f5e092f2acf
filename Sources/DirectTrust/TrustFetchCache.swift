import CryptographicMessageSyntax
import DirectCore
import SwiftASN1
import X509
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What trust fetched over HTTP, kept for reuse: CRLs until their
/// nextUpdate (RFC 5280 5.1.2.5), issuer certificates for an hour.
public actor TrustFetchCache {
    public static let issuerLifetime: TimeInterval = 3600
    /// Bounds on entries, so a peer naming endless URLs cannot grow it.
    public static let maxEntries = 4096

    private var crls: [String: (list: CertificateList, fetched: Date)] = [:]
    private var issuers: [String: (certs: [Certificate], fetched: Date)] = [:]

    public init() {}

    func crl(url: String, fetcher: any HTTPFetching, policy: TrustPolicy, at time: Date) async throws -> CertificateList {
        if let hit = crls[url], (hit.list.nextUpdate ?? hit.fetched + 3600) >= time { return hit.list }
        let bytes = try await fetcher.get(url, maxBytes: policy.maxCRLFetchBytes, timeout: policy.fetchTimeout)
        let list = try CertificateList(bytes: bytes)
        if crls.count >= Self.maxEntries { crls.removeAll() }
        crls[url] = (list, Date())
        return list
    }

    func issuers(url: String, fetcher: any HTTPFetching, policy: TrustPolicy) async throws -> [Certificate] {
        if let hit = issuers[url], hit.fetched + Self.issuerLifetime >= Date() { return hit.certs }
        let bytes = try await fetcher.get(url, maxBytes: policy.maxCertificateFetchBytes, timeout: policy.fetchTimeout)
        let certs = try CertificateBundle.read(bytes)
        if issuers.count >= Self.maxEntries { issuers.removeAll() }
        issuers[url] = (certs, Date())
        return certs
    }
}

/// Reads what AIA URLs and bundle files serve: one DER certificate, PEM
/// certificates, or a PKCS#7 certs-only SignedData (RFC 5652 5, RFC 5280
/// 4.2.2.1), in DER or PEM.
public enum CertificateBundle {
    public static let maxCertificates = 1000

    public static func read(_ bytes: [UInt8]) throws -> [Certificate] {
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            let certs = PEMText.blocks(text, labels: ["CERTIFICATE", "X509 CERTIFICATE"])
            let pkcs7 = PEMText.blocks(text, labels: ["PKCS7", "CMS"])
            var out = try certs.map { try Certificate(derEncoded: $0) }
            for p in pkcs7 { out += try fromPKCS7(p) }
            guard !out.isEmpty else { throw TrustError.malformed("no CERTIFICATE or PKCS7 block in the PEM input") }
            guard out.count <= maxCertificates else { throw TrustError.malformed("more than \(maxCertificates) certificates") }
            return out
        }
        if let cert = try? Certificate(derEncoded: bytes) { return [cert] }
        return try fromPKCS7(bytes)
    }

    static func fromPKCS7(_ der: [UInt8]) throws -> [Certificate] {
        do {
            let info = try ContentInfo.parse(der)
            let sd = try info.unwrap(SignedData.self, expecting: CMSOID.signedData)
            guard sd.certificates.count <= maxCertificates else { throw TrustError.malformed("more than \(maxCertificates) certificates") }
            return try sd.certificates.map { try Certificate(derEncoded: $0) }
        } catch let e as TrustError {
            throw e
        } catch {
            throw TrustError.malformed("neither a certificate nor a PKCS#7 certificate bundle: \(error)")
        }
    }
}
