import DirectCore
import Foundation
import Logging

/// Structured logs: one JSON object per line on standard error (time, level,
/// message, source and metadata), for journald, Loki or jq. No PHI is logged:
/// callers log ids, counts and checks, never addresses or subjects.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let stream: @Sendable (String) -> Void

    public init(label: String, level: Logger.Level = .info, stream: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.logLevel = level
        self.stream = stream
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "time": UTCTime.rfc3339(Date()),
            "level": event.level.rawValue,
            "message": "\(event.message)",
            "source": event.source,
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, b in b }) { object[k] = Self.plain(v) }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        stream(String(decoding: data, as: UTF8.self) + "\n")
    }

    static func plain(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        case .string(let s): return s
        case .stringConvertible(let c): return "\(c)"
        case .array(let a): return a.map(plain)
        case .dictionary(let d): return d.mapValues(plain)
        }
    }
}
