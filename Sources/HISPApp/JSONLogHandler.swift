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
            "message": SafeText.escape("\(event.message)"),
            "source": event.source,
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, b in b }) { object[k] = Self.plain(v) }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        stream(String(decoding: data, as: UTF8.self) + "\n")
    }

    static func plain(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        // JSON escapes C0 controls but not DEL, C1 or bidi overrides, which `jq -r` would print raw.
        case .string(let s): return SafeText.escape(s)
        case .stringConvertible(let c): return SafeText.escape("\(c)")
        case .array(let a): return a.map(plain)
        case .dictionary(let d): return d.mapValues(plain)
        }
    }
}

/// Any handler (the text format's `StreamLogHandler`) with the message and every
/// metadata value escaped by `SafeText`, so a log line cannot carry a peer's raw bytes.
public struct EscapingLogHandler<Inner: LogHandler>: LogHandler {
    public var inner: Inner

    public init(_ inner: Inner) { self.inner = inner }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.escaped) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.escaped) }
    }

    public func log(event: LogEvent) {
        var e = event
        e.message = Logger.Message(stringLiteral: SafeText.escape("\(event.message)"))
        e.metadata = event.metadata?.mapValues(Self.escaped)
        inner.log(event: e)
    }

    static func escaped(_ v: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch v {
        case .string(let s): return .string(SafeText.escape(s))
        case .stringConvertible(let c): return .string(SafeText.escape("\(c)"))
        case .array(let a): return .array(a.map(escaped))
        case .dictionary(let d): return .dictionary(d.mapValues(escaped))
        }
    }
}
