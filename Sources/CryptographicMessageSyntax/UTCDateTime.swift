import SwiftASN1
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A UTC calendar date and time, converted to and from `Date` by the
/// proleptic Gregorian day count (the days-from-civil algorithm), without a
/// Foundation `Calendar`: signing times are always UTC (RFC 5652 11.3,
/// RFC 5280 4.1.2.5) and a `Calendar` costs more than the rest of a signature's
/// attributes.
public struct UTCDateTime: Hashable, Sendable {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    public init(_ date: Date) {
        let t = Int(date.timeIntervalSince1970.rounded(.down))
        var days = t / 86400
        var secs = t % 86400
        if secs < 0 {
            secs += 86400
            days -= 1
        }
        // Civil from days (era of 400 years = 146097 days), 1970-01-01 = day 0.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (m <= 2 ? 1 : 0), month: m, day: d,
                  hour: secs / 3600, minute: secs % 3600 / 60, second: secs % 60)
    }

    /// The instant, or nil for an impossible date.
    public var date: Date? {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second)
        else { return nil }
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Date(timeIntervalSince1970: Double(days * 86400 + hour * 3600 + minute * 60 + second))
    }
}

extension UTCDateTime {
    /// RFC 5280 4.1.2.5 / 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
    public func asn1Time() throws -> ASN1Any {
        if (1950..<2050).contains(year) {
            return try ASN1Any(erasing: UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second))
        }
        return try ASN1Any(erasing: GeneralizedTime(
            year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second, fractionalSeconds: 0))
    }
}

extension UTCDateTime {
    /// RFC 3339 / ISO 8601 in UTC: `2026-11-22T10:00:00Z`.
    public var iso8601: String {
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))Z"
    }
}
