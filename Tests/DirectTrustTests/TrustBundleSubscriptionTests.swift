import DirectTrust
import Foundation
import HISPTesting
import Testing
import X509

/// Bundle refresh: on its interval, a bundle's anchors are replaced by what
/// it holds now; other bundles' anchors stay; a failed refresh keeps the
/// last good set and reports why. Bundles are made by OpenSSL.
@Suite struct TrustBundleSubscriptionTests {
    let ws: Workspace

    init() throws { ws = try Workspace() }

    /// A self-signed CA certificate NAME.pem made by OpenSSL.
    func root(_ name: String) async throws {
        try await ws.mustRun("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-days", "30",
                                   "-keyout", "\(name).key", "-out", "\(name).pem"])
    }

    func bundle(_ file: String, of roots: [String]) async throws {
        try? FileManager.default.removeItem(atPath: ws.path(file))
        try await ws.mustRun("openssl", ["crl2pkcs7", "-nocrl"] + roots.flatMap { ["-certfile", "\($0).pem"] } + ["-outform", "DER", "-out", file])
    }

    @Test func refreshReplacesOnlyWhatTheBundleContributed() async throws {
        for name in ["RootOne", "RootTwo", "RootThree"] { try await root(name) }
        try await bundle("a.p7b", of: ["RootOne"])
        try await bundle("b.p7b", of: ["RootTwo"])
        let dir = ws.url.path
        let subscriptions = TrustBundleSubscriptions(
            [TrustBundleSource(location: "a.p7b", refreshInterval: .seconds(3600)),
             TrustBundleSource(location: "b.p7b", directions: [.incoming], refreshInterval: .seconds(7 * 86400))]
        ) { location in
            Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + location)))
        }
        func subjects() async -> [String] { await subscriptions.anchors().map { "\($0.certificate.subject)" }.sorted() }

        let t0 = Date()
        let first = await subscriptions.refreshDue(at: t0)
        #expect(first.map(\.error) == [nil, nil] && first.map(\.anchorCount) == [1, 1])
        #expect(await subjects() == ["CN=RootOne", "CN=RootTwo"])
        #expect(await subscriptions.anchors().first { "\($0.certificate.subject)" == "CN=RootTwo" }?.directions == [.incoming])

        // The publisher replaces RootOne by RootThree; nothing changes before the interval.
        try await bundle("a.p7b", of: ["RootThree"])
        #expect(await subscriptions.refreshDue(at: t0 + 1800).isEmpty)
        #expect(await subjects() == ["CN=RootOne", "CN=RootTwo"])

        // After it, bundle a's anchors are replaced; bundle b (weekly) is untouched.
        let second = await subscriptions.refreshDue(at: t0 + 3601)
        #expect(second.map(\.location) == ["a.p7b"] && second[0].error == nil)
        #expect(await subjects() == ["CN=RootThree", "CN=RootTwo"])

        // The bundle disappears: the last good anchors stay, and the report says so.
        try FileManager.default.removeItem(atPath: ws.path("a.p7b"))
        let third = await subscriptions.refreshDue(at: t0 + 7300)
        #expect(third.count == 1)
        #expect(third[0].error?.contains("keeping the 1 anchor(s) loaded before") == true, "\(third[0].error ?? "")")
        #expect(await subjects() == ["CN=RootThree", "CN=RootTwo"])
    }
}
