import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// UTC times as text, written and read by hand: a Foundation formatter per
/// call (ICU underneath) cost a fifth of the gateway's CPU.
public enum UTCTime {
    /// The broken-down UTC time of `date`, to the second (rounded down).
    public static func fields(_ date: Date) -> tm {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        return t
    }

    /// RFC 3339 in UTC: `2026-11-23T08:41:48Z`, or with `milliseconds`
    /// `2026-11-23T08:41:48.658Z` (rounded to the nearest, as Foundation's formatter does).
    public static func rfc3339(_ date: Date, milliseconds: Bool = false) -> String {
        var t = date.timeIntervalSince1970
        var millis = 0
        if milliseconds {
            let whole = t.rounded(.down)
            millis = Int(((t - whole) * 1000).rounded())
            t = whole
            if millis >= 1000 { t += 1; millis -= 1000 }
        }
        let f = fields(Date(timeIntervalSince1970: t))
        let base = "\(pad(f.tm_year + 1900, 4))-\(pad(f.tm_mon + 1, 2))-\(pad(f.tm_mday, 2))T"
            + "\(pad(f.tm_hour, 2)):\(pad(f.tm_min, 2)):\(pad(f.tm_sec, 2))"
        return milliseconds ? base + ".\(pad(Int32(millis), 3))Z" : base + "Z"
    }

    /// Reads `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what `rfc3339` writes); nil for anything else.
    public static func parseRFC3339(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for c in b[from..<(from + count)] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                n = n * 10 + Int(c - 0x30)
            }
            return n
        }
        guard b.count >= 20, b.count <= 30, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b.last == 0x5A,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var fraction = 0.0
        if b.count > 20 {
            guard b[19] == 0x2E, b.count - 21 <= 9, let f = number(20, b.count - 21) else { return nil }
            fraction = Double(f) / pow(10, Double(b.count - 21))
        }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month - 1)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour)
        t.tm_min = Int32(minute)
        t.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: Double(timegm(&t)) + fraction)
    }

    static func pad(_ v: Int32, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
