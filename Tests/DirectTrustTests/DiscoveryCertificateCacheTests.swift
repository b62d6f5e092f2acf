import CryptographicMessageSyntax
import DirectCore
import DirectTrust
import Foundation
import HISPTesting
import Testing
import X509

/// Discovery with a certificate cache: the certificate a recipient publishes
/// is parsed once across the messages sent to it, the kept parse is the one
/// a fresh parse gives, and a record that is not a certificate is refused
/// each time and never kept.
@Suite struct DiscoveryCertificateCacheTests {
    /// CERT records by owner name, as a DNS server would serve them (the DNS
    /// side itself is tested against NSD in DCDTTests).
    struct PublishedRecords: DiscoveryDNS {
        let records: [String: [(type: UInt16, data: [UInt8])]]
        func certRecords(_ name: String) async throws -> [(type: UInt16, data: [UInt8])] { records[name] ?? [] }
        func srvRecords(_ name: String) async throws -> [DiscoverySRV] { [] }
        func addresses(_ host: String) async throws -> [String] { [] }
    }

    @Test func aPublishedCertificateIsParsedOnceAndAGarbageRecordEveryTime() async throws {
        let published = try MemoryIdentity.make("bob@direct.b.example").summary.der
        let garbage: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x05]
        let dns = PublishedRecords(records: ["bob.direct.b.example": [(type: 1, data: garbage), (type: 1, data: published)]])
        let cache = CertificateCache()
        let discovery = CertificateDiscovery(dns: dns, ldap: nil, trust: DirectTrust(anchors: TrustAnchors([])), fetcher: nil,
                                             certificateCache: cache)
        let address = try #require(DirectAddress("bob@direct.b.example"))
        let fresh = try Certificate(derEncoded: published)

        let first = await discovery.discover(address)
        #expect(first.candidates.map(\.certificate) == [fresh])
        #expect(first.errors.contains { $0.contains("does not hold a certificate") }, "\(first.errors)")
        #expect(cache.count == 1)

        let second = await discovery.discover(address)
        #expect(second.candidates.map(\.certificate) == [fresh])
        #expect(second.errors == first.errors)
        #expect(cache.count == 1)
        // The kept entry is the published certificate's, found by its bytes.
        #expect(try cache.certificate(published) == fresh)
        #expect(cache.count == 1)
    }
}
