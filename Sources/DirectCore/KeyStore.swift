/// The private keys the store holds, by owner (the `KeyStore` port; an HSM can
/// stand in for it later).
public enum KeyOwner: Sendable, Hashable, CustomStringConvertible {
    case domainCA(String)
    case domain(String)
    case address(DirectAddress)

    public var description: String {
        switch self {
        case .domainCA(let d): return "CA of \(d)"
        case .domain(let d): return "domain \(d)"
        case .address(let a): return "address \(a)"
        }
    }
}

/// Where private keys are reached. The store implements it; a PKCS#11 module may later.
public protocol KeyStore: Sendable {
    /// The PKCS#8 DER private key and the DER certificate that goes with it.
    func credential(for owner: KeyOwner) async throws -> (certificate: [UInt8], privateKeyPKCS8: [UInt8])
}
