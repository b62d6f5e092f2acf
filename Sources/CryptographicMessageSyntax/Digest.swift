import SwiftASN1
import Crypto

/// The digests DirectHISP signs with (RFC 5754 2).
public enum DigestAlgorithm: String, Sendable, CaseIterable {
    case sha256, sha384, sha512

    public var oid: ASN1ObjectIdentifier {
        switch self {
        case .sha256: return CMSOID.sha256
        case .sha384: return CMSOID.sha384
        case .sha512: return CMSOID.sha512
        }
    }

    /// The `micalg` parameter value (RFC 5751 3.4.3.2, RFC 8551 3.5.3.2).
    public var micalg: String {
        switch self {
        case .sha256: return "sha-256"
        case .sha384: return "sha-384"
        case .sha512: return "sha-512"
        }
    }

    public init?(oid: ASN1ObjectIdentifier) {
        guard let d = Self.allCases.first(where: { $0.oid == oid }) else { return nil }
        self = d
    }

    public func hash<D: DataProtocol>(_ data: D) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: data))
        case .sha384: return Array(SHA384.hash(data: data))
        case .sha512: return Array(SHA512.hash(data: data))
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
