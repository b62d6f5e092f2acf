import Foundation
import FuzzTargets
import HISPTesting
import Testing

/// Every parser facing the network or files, on the committed corpus, on every
/// input a fuzz run found (Tests/Fuzz/regressions, each a past crash or hang),
/// on CMS and PKCS#12 structures OpenSSL makes now, and on a bounded, seeded
/// mutation of each: each input must come back, whatever it holds.
@Suite struct FuzzRegressionTests {
    static let root = Tools.packageRoot.appendingPathComponent("Tests/Fuzz")

    static func files(_ folder: String, _ target: FuzzTarget) -> [[UInt8]] {
        let dir = root.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path) }.map(Array.init)
    }

    /// CMS (signed, enveloped, authenveloped) and PKCS#12 made by OpenSSL for this run.
    static func generated(_ target: FuzzTarget) async throws -> [[UInt8]] {
        guard target == .cms || target == .pkcs12 else { return [] }
        let ws = try Workspace()
        let pki = TestPKI(ws)
        try await pki.directPair()
        _ = try ws.write("msg.eml", sampleMessage())
        if target == .pkcs12 {
            try await ws.mustRun("openssl", ["pkcs12", "-export", "-in", "alice.pem", "-inkey", "alice.key", "-certfile", "ca.pem", "-passout", "pass:fuzz",
                                       "-out", "a.p12"])
            try await ws.mustRun("openssl", ["pkcs12", "-export", "-legacy", "-in", "alice.pem", "-inkey", "alice.key", "-passout", "pass:fuzz",
                                       "-out", "legacy.p12"])
            return [try ws.read("a.p12"), try ws.read("legacy.p12")]
        }
        try await ws.mustRun("openssl", ["cms", "-sign", "-in", "msg.eml", "-signer", "alice.pem", "-inkey", "alice.key", "-outform", "DER", "-out", "s.der"])
        try await ws.mustRun("openssl", ["cms", "-encrypt", "-aes256", "-in", "msg.eml", "-outform", "DER", "-out", "e.der", "alice.pem"])
        try await ws.mustRun("openssl", ["cms", "-encrypt", "-aes-256-gcm", "-in", "msg.eml", "-outform", "DER", "-out", "g.der", "alice.pem"])
        try await ws.mustRun("openssl", ["cms", "-sign", "-stream", "-in", "msg.eml", "-signer", "alice.pem", "-inkey", "alice.key", "-outform", "DER",
                                   "-out", "streamed.der"])
        return try ["s.der", "e.der", "g.der", "streamed.der"].map { try ws.read($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusAndFoundInputsComeBack(_ target: FuzzTarget) async throws {
        let inputs = await Self.files("corpus", target) + Self.files("regressions", target) + (try Self.generated(target))
        #expect(!inputs.isEmpty || target == .cms || target == .pkcs12)
        for input in inputs { target.run(input) }
    }

    /// A small mutation fuzzer in the test run itself: bounded in count, the same
    /// mutations every run (a fixed seed), so a failure here is reproducible.
    @Test(arguments: FuzzTarget.allCases)
    func seededMutationsComeBack(_ target: FuzzTarget) async throws {
        var seeds = await Self.files("corpus", target) + (try Self.generated(target))
        if seeds.isEmpty { seeds = [[]] }
        var rng = SplitMix64(seed: 0x5EED_0000 + UInt64(target.rawValue.utf8.count))
        for _ in 0..<1500 {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0...(rng.next() % 4) { mutate(&bytes, &rng) }
            target.run(bytes)
        }
    }

    func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        let at = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
        switch rng.next() % 6 {
        case 0 where !bytes.isEmpty: bytes[at] ^= UInt8(1 << (rng.next() % 8))
        case 1 where !bytes.isEmpty: bytes[at] = [0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x0D, 0x30, 0x2E][Int(rng.next() % 8)]
        case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int(rng.next() % 16)))
        case 3: bytes.insert(contentsOf: (0..<Int(rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 4 where !bytes.isEmpty:
            let end = min(bytes.count, at + 1 + Int(rng.next() % 64))
            bytes.insert(contentsOf: bytes[at..<end], at: at)
        default: bytes = Array(bytes.prefix(at))
        }
    }
}

/// A small deterministic generator (SplitMix64) for reproducible mutations.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
