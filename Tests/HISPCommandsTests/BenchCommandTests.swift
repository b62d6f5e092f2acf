import Foundation
import HISPTesting
import Testing

/// `hisp bench smime` (the numbers belong to release builds and
/// docs/benchmarks.md; here only what an operator reads from it).
@Suite struct BenchCommandTests {
    @Test func reportsBothDirectionsAgainstTheRSARateMeasuredInTheSameRun() async throws {
        let ws = try Workspace()
        for provider in ["builtin", "openssl"] {
            let r = try await ws.hisp(["bench", "smime", "--size", "1000", "--seconds", "0.4", "--rounds", "2", "--provider", provider])
            #expect(r.status == 0, "\(r.stderr)")
            let text = r.stdoutText
            #expect(text.contains("private keys: \(provider) ("), "\(text)")
            #expect(text.contains("raw RSA-2048 private-key operations (\(provider)): "), "\(text)")
            // The machine's limit from the OpenSSL command line, in the same run (it used to hang: SIGALRM was blocked).
            #expect(text.contains("openssl speed rsa2048, sign, one core: ") && text.contains("this provider reaches"), "\(text)")
            check(text)
        }
    }

    func check(_ text: String) {
        for direction in ["outgoing (wrap+sign+encrypt)", "incoming (decrypt+verify+unwrap)"] {
            let line = text.split(separator: "\n").first { $0.hasPrefix(direction) }
            #expect(line?.contains("% of the RSA rate") == true, "\(text)")
        }
    }

    @Test func runsOneDirectionAloneForAProfiler() async throws {
        let ws = try Workspace()
        let r = try await ws.hisp(["bench", "smime", "--size", "1000", "--seconds", "0.2", "--only", "incoming"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("incoming: ") && line.hasSuffix(" msg/s"), "\(line)")
        #expect(!r.stdoutText.contains("RSA"))
        let wrong = try await ws.hisp(["bench", "smime", "--only", "sideways"])
        #expect(wrong.status == 2)
    }
}
