import CertificateAuthority
import CryptographicMessageSyntax
import DirectCore
import Foundation
import SQLiteStore
import Storage
import X509

/// The steps behind `init`, `domain add` and `address add`, shared with
/// `quickstart` and `demo` (which print their own account of them).
enum Provisioning {
    /// Creates the data directory (0700) and an empty store under the options' master key.
    /// Returns the key material and whether the key file was there before.
    static func createStore(_ store: StoreOptions) async throws -> (MasterKeyMaterial, keyExisted: Bool) {
        let fm = FileManager.default
        if fm.fileExists(atPath: store.databasePath) {
            throw CLIFailure.usage("\(store.data) already holds a HISP store")
        }
        let keyExisted = store.keyFile.map { fm.fileExists(atPath: $0) } ?? false
        // Check the key options before creating anything.
        if let keyFile = store.keyFile { try MasterKeyOptions.refuseInside(keyFile, store.data) }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: store.data, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIFailure.usage("\(store.data) exists and is not a directory") }
        } else {
            do {
                try fm.createDirectory(atPath: store.data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw CLIFailure.usage("cannot create \(store.data): \(error.localizedDescription)")
            }
        }
        let material = try store.material(creating: true)
        let database = try await SQLiteDatabase.open(path: store.databasePath, create: true)
        do {
            let s = try await HISPStore.create(database: database, material: material, actor: StoreOptions.actor)
            try await s.close()
        } catch {
            try? await database.close()
            try? fm.removeItem(atPath: store.databasePath)
            throw error
        }
        return (material, keyExisted)
    }

    /// Hosts `name`: a CA (created unless given), a domain-bound certificate, and the CA as anchor both ways.
    static func addDomain(
        _ name: String, published: DomainDNS, ca given: (Issuer, [UInt8])?, caDays: Int = 3650, days: Int = 730, in s: HISPStore
    ) async throws -> (ca: Issuer, certificate: Certificate, anchor: AnchorRecord) {
        let ca: Issuer
        let caKeyDER: [UInt8]
        if let given {
            (ca, caKeyDER) = given
        } else {
            let (key, pem) = try KeySpec.rsa2048.generate()
            let now = Date()
            let subject = try DistinguishedName {
                CommonName("\(name) Direct CA")
                OrganizationName(name)
            }
            let cert = try CommandIO.ca {
                try CertificateAuthority.createCA(
                    subject: subject, key: key, notBefore: now - CertificateAuthority.backdating, notAfter: now + Double(caDays) * 86400)
            }
            ca = try CommandIO.ca { try Issuer(certificate: cert, key: key, purpose: .certificates) }
            caKeyDER = try LocalPrivateKey(bytes: Array(pem.utf8)).pkcs8DER
        }
        let (cert, key) = try StoredPKI.issue(.domain(name), issuer: ca, days: days)
        let caDER = try StoredPKI.der(ca.certificate)
        _ = try await s.addDomain(
            name, caCertificate: caDER, caPrivateKey: caKeyDER, certificate: try StoredPKI.der(cert), privateKey: key.pkcs8DER, dns: published)
        let anchor = try await s.addAnchor(domain: name, direction: .both, certificate: caDER, subject: "\(ca.certificate.subject)")
        return (ca, cert, anchor)
    }

    /// A mailbox with its own RSA-2048 key and an address-bound certificate from the domain's CA.
    static func addAddress(_ a: DirectAddress, passwordHash: String?, days: Int = 730, in s: HISPStore) async throws -> Certificate {
        _ = try await s.domain(a.domain)
        let issuer = try await StoredPKI.issuer(s, domain: a.domain)
        let (cert, key) = try StoredPKI.issue(.address(a), issuer: issuer, days: days)
        _ = try await s.addAddress(a, certificate: try StoredPKI.der(cert), privateKey: key.pkcs8DER, passwordHash: passwordHash)
        return cert
    }

    /// A password for a new mailbox: 20 characters from an alphabet without look-alikes (about 115 bits).
    static func newPassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var g = SecureRandomGenerator()
        return String((0..<20).map { _ in alphabet[Int(g.next(upperBound: UInt(alphabet.count)))] })
    }
}
