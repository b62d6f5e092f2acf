import Foundation
import Testing
@testable import Storage

/// The store's hand-written timestamps agree with Foundation's RFC 3339 formatter.
@Suite struct TimestampTests {
    @Test func writesWhatISO8601DateFormatterWritesAndReadsItBack() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var g = SystemRandomNumberGenerator()
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400.999), Date(timeIntervalSince1970: 4_102_444_799.5)]
        for _ in 0..<500 { dates.append(Date(timeIntervalSince1970: Double(g.next(upperBound: UInt64(4_000_000_000_000))) / 1000)) }
        for d in dates {
            let text = Timestamp.text(d)
            #expect(text == f.string(from: d), "\(d.timeIntervalSince1970)")
            #expect(abs(Timestamp.date(text).timeIntervalSince(d)) < 0.001)
            #expect(Timestamp.date(text) == f.date(from: text))
        }
        #expect(Timestamp.date("2026-11-23T08:41:48Z").timeIntervalSince1970 == 1_795_423_308)
        for bad in ["", "2026-11-23", "2026-11-23T08:41:48", "2026-13-23T08:41:48.1234567890Z", "x026-11-23T08:41:48Z"] {
            #expect(Timestamp.date(bad).timeIntervalSince1970 == 0, "\(bad)")
        }
    }
}
