import DirectCore
import Foundation

/// RFC 8098 dispositions Direct uses (Direct Implementation Guide for
/// Delivery Notification: processed, dispatched, failed).
public enum MDNDisposition: String, Sendable, CaseIterable {
    // RFC 8098 3.2.6.2, with denied and failed of RFC 3798 3.2.6.2 that Direct's
    // Implementation Guide for Delivery Notification uses.
    case processed, dispatched, failed, displayed, deleted, denied
}

/// A message disposition notification (RFC 8098 3.2).
public struct MDN: Sendable, Equatable {
    public var reportingUA: String
    public var originalRecipient: String?
    public var finalRecipient: String
    public var originalMessageID: String
    public var disposition: MDNDisposition
    /// The Failure field of a failed MDN (RFC 3798 3.2.7, as Direct uses it).
    public var failure: String?
    /// The X-DIRECT-FINAL-DESTINATION-DELIVERY extension field is present.
    public var finalDestinationDelivery: Bool

    public init(reportingUA: String, originalRecipient: String? = nil, finalRecipient: String, originalMessageID: String,
                disposition: MDNDisposition, failure: String? = nil, finalDestinationDelivery: Bool = false) {
        self.reportingUA = reportingUA
        self.originalRecipient = originalRecipient
        self.finalRecipient = finalRecipient
        self.originalMessageID = originalMessageID
        self.disposition = disposition
        self.failure = failure
        self.finalDestinationDelivery = finalDestinationDelivery
    }
}

/// One recipient of a delivery status notification (RFC 3464 2.3).
public struct DSNRecipient: Sendable, Equatable {
    public var finalRecipient: String
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded` (RFC 3464 2.3.3).
    public var action: String
    /// An RFC 3463 status code (`5.1.1`).
    public var status: String
    public var diagnostic: String?

    public init(finalRecipient: String, action: String = "failed", status: String, diagnostic: String? = nil) {
        self.finalRecipient = finalRecipient
        self.action = action
        self.status = status
        self.diagnostic = diagnostic
    }
}

/// A delivery status notification (RFC 3464).
public struct DSN: Sendable, Equatable {
    public var reportingMTA: String
    public var originalMessageID: String?
    public var recipients: [DSNRecipient]

    public init(reportingMTA: String, originalMessageID: String? = nil, recipients: [DSNRecipient]) {
        self.reportingMTA = reportingMTA
        self.originalMessageID = originalMessageID
        self.recipients = recipients
    }
}

public enum Notification: Sendable, Equatable {
    case mdn(MDN)
    case dsn(DSN)

    public var originalMessageID: String? {
        switch self {
        case .mdn(let m): return m.originalMessageID
        case .dsn(let d): return d.originalMessageID
        }
    }
}

/// Building and reading MDNs and DSNs (multipart/report, RFC 6522).
public enum Notifications {
    /// Direct's request for timely and reliable delivery (Implementation Guide 3.1).
    public static let finalDestinationOption = "X-DIRECT-FINAL-DESTINATION-DELIVERY"

    /// Whether a message asks for dispatched MDNs (Disposition-Notification-Options
    /// `X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true`).
    public static func requestsFinalDestinationDelivery(_ headers: HeaderFields) -> Bool {
        headers.all("Disposition-Notification-Options").contains { f in
            f.value.split(separator: ";").contains { option in
                let parts = option.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingWhitespace().caseInsensitiveCompare(finalDestinationOption) == .orderedSame else { return false }
                return parts[1].split(separator: ",").map { $0.trimmingWhitespace().lowercased() }.last == "true"
            }
        }
    }

    /// A complete MDN message (RFC 8098 3): a human part and the
    /// machine-readable message/disposition-notification part.
    public static func mdnMessage(_ mdn: MDN, from: String, to: String, subject: String, messageID: String, date: Date) -> [UInt8] {
        var fields: [(String, String)] = [("Reporting-UA", mdn.reportingUA)]
        if let o = mdn.originalRecipient { fields.append(("Original-Recipient", "rfc822;" + o)) }
        fields.append(("Final-Recipient", "rfc822;" + mdn.finalRecipient))
        fields.append(("Original-Message-ID", mdn.originalMessageID))
        // RFC 8098 3.2.6: action-mode/sending-mode; disposition-type.
        fields.append(("Disposition", "automatic-action/MDN-sent-automatically;\(mdn.disposition.rawValue)"))
        if let failure = mdn.failure { fields.append(("Failure", failure)) }
        if mdn.finalDestinationDelivery { fields.append((finalDestinationOption, "")) }
        let human: String
        switch mdn.disposition {
        case .processed: human = "Your message was received and passed security and trust checks."
        case .dispatched: human = "Your message was delivered to the recipient's mailbox."
        case .failed: human = "Your message could not be delivered: \(mdn.failure ?? "failed")."
        default: human = "Disposition: \(mdn.disposition.rawValue)."
        }
        return report(
            type: "disposition-notification", machineType: "message/disposition-notification",
            machine: fields.map { $0.1.isEmpty ? "\($0.0):\r\n" : "\($0.0): \($0.1)\r\n" }.joined(),
            human: human, original: nil,
            headers: [("From", from), ("To", to), ("Subject", subject), ("Message-ID", messageID), ("Date", rfc5322Date(date)),
                      ("In-Reply-To", mdn.originalMessageID), ("References", mdn.originalMessageID)])
    }

    /// A complete failure DSN (RFC 3464) with the original's header (text/rfc822-headers, RFC 6522 3).
    public static func dsnMessage(_ dsn: DSN, from: String, to: String, subject: String, messageID: String, date: Date,
                                  explanation: String, originalHeaders: [UInt8]?) -> [UInt8] {
        var machine = "Reporting-MTA: dns;\(dsn.reportingMTA)\r\n"
        if let id = dsn.originalMessageID { machine += "X-Original-Message-ID: \(id)\r\n" }
        machine += "Arrival-Date: \(rfc5322Date(date))\r\n"
        for r in dsn.recipients {
            machine += "\r\nFinal-Recipient: rfc822;\(r.finalRecipient)\r\nAction: \(r.action)\r\nStatus: \(r.status)\r\n"
            if let d = r.diagnostic { machine += "Diagnostic-Code: smtp; \(d.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " "))\r\n" }
        }
        var headers: [(String, String)] = [("From", from), ("To", to), ("Subject", subject), ("Message-ID", messageID), ("Date", rfc5322Date(date))]
        if let id = dsn.originalMessageID { headers += [("In-Reply-To", id), ("References", id)] }
        return report(type: "delivery-status", machineType: "message/delivery-status", machine: machine, human: explanation,
                      original: originalHeaders, headers: headers)
    }

    static func report(type: String, machineType: String, machine: String, human: String, original: [UInt8]?,
                       headers: [(String, String)]) -> [UInt8] {
        let boundary = Multipart.makeBoundary()
        var parts: [[UInt8]] = [
            EntityBuilder(headers: [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")],
                          body: Array((human + "\r\n").utf8)).serialize(),
            EntityBuilder(headers: [("Content-Type", machineType)], body: Array(machine.utf8)).serialize(),
        ]
        if let original {
            parts.append(EntityBuilder(headers: [("Content-Type", "text/rfc822-headers")], body: original).serialize())
        }
        var out: [UInt8] = []
        for (name, value) in headers { HeaderFolding.foldedBytes(name: name, value: value, into: &out) }
        out += Array("MIME-Version: 1.0\r\n".utf8)
        HeaderFolding.foldedBytes(
            name: "Content-Type", value: "multipart/report; report-type=\(type); boundary=\"\(boundary)\"", into: &out)
        out += [0x0D, 0x0A]
        out += Multipart.body(parts: parts, boundary: boundary)
        return out
    }

    /// Reads an MDN or a DSN; nil when the message is neither.
    public static func parse(_ message: MIMEEntity) -> Notification? {
        guard message.contentType.mimeType == "multipart/report" else { return nil }
        let reportType = message.contentType[parameter: "report-type"]?.lowercased()
        for part in message.parts {
            let type = part.contentType.mimeType
            if type == "message/disposition-notification" && reportType != "delivery-status" {
                let groups = fieldGroups(Array(part.bodyBytes))
                guard let f = groups.first else { return nil }
                guard let id = f["original-message-id"], let final = f["final-recipient"], let disp = f["disposition"] else { return nil }
                // `automatic-action/MDN-sent-automatically;processed` (modifiers after "/" ignored).
                let typeText = disp.split(separator: ";").last.map { $0.split(separator: "/")[0].trimmingWhitespace().lowercased() } ?? ""
                guard let disposition = MDNDisposition(rawValue: typeText) else { return nil }
                return .mdn(MDN(
                    reportingUA: f["reporting-ua"] ?? "", originalRecipient: f["original-recipient"].map(stripAddressType),
                    finalRecipient: stripAddressType(final), originalMessageID: id, disposition: disposition, failure: f["failure"],
                    finalDestinationDelivery: f[finalDestinationOption.lowercased()] != nil))
            }
            if type == "message/delivery-status" {
                let groups = fieldGroups(Array(part.bodyBytes))
                guard let head = groups.first else { return nil }
                let recipients = groups.dropFirst().compactMap { g -> DSNRecipient? in
                    guard let r = g["final-recipient"], let action = g["action"], let status = g["status"] else { return nil }
                    return DSNRecipient(finalRecipient: stripAddressType(r), action: action.lowercased(), status: status,
                                        diagnostic: g["diagnostic-code"].map(stripAddressType))
                }
                let original = head["x-original-message-id"] ?? message.headers["In-Reply-To"]?.trimmingWhitespace()
                return .dsn(DSN(reportingMTA: head["reporting-mta"].map(stripAddressType) ?? "", originalMessageID: original, recipients: recipients))
            }
        }
        return nil
    }

    /// `rfc822;a@b` -> `a@b` (RFC 3464 2.1.2 address-type).
    static func stripAddressType(_ value: String) -> String {
        guard let semi = value.firstIndex(of: ";") else { return value.trimmingWhitespace() }
        return String(value[value.index(after: semi)...]).trimmingWhitespace()
    }

    /// Header-like field groups separated by blank lines, names lowercased, folded lines joined.
    static func fieldGroups(_ body: [UInt8]) -> [[String: String]] {
        var groups: [[String: String]] = []
        var current: [String: String] = [:]
        var last: String? = nil
        // Split on LF bytes: as Characters, CR LF is one grapheme and "\n" would not match it.
        for rawBytes in body.prefix(64 * 1024).split(separator: 0x0A, omittingEmptySubsequences: false) {
            let lineBytes = rawBytes.last == 0x0D ? rawBytes.dropLast() : rawBytes
            let line = Substring(String(decoding: lineBytes, as: UTF8.self))
            if line.trimmingWhitespace().isEmpty {
                if !current.isEmpty { groups.append(current) }
                current = [:]
                last = nil
                continue
            }
            if line.first == " " || line.first == "\t", let l = last {
                current[l, default: ""] += " " + line.trimmingWhitespace()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingWhitespace().lowercased()
            current[name] = line[line.index(after: colon)...].trimmingWhitespace()
            last = name
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    /// RFC 5322 3.3 date-time in UTC.
    public static func rfc5322Date(_ date: Date) -> String {
        // RFC 5322 3.3, in UTC.
        let t = UTCTime.fields(date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(t.tm_wday) % 7]), \(t.tm_mday) \(months[Int(t.tm_mon) % 12]) \(t.tm_year + 1900) "
            + "\(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) +0000"
    }
}

extension Substring {
    func trimmingWhitespace() -> String { String(self).trimmingWhitespace() }
}
