import DirectCore
import Foundation
import OpenSSLKeys

/// The `hisp serve` configuration file (JSON, keys in snake_case; every key
/// optional). README "Configuration" documents each one.
public struct AppConfiguration: Codable, Sendable, Equatable {
    public struct Listener: Codable, Sendable, Equatable {
        /// HOST:PORT.
        public var listen: String
        /// Refuse MAIL until STARTTLS (always so for AUTH).
        public var requireTLS: Bool?

        public init(listen: String, requireTLS: Bool? = nil) {
            self.listen = listen
            self.requireTLS = requireTLS
        }

        // `require_tls` reads as "requireTls" after snake-case conversion, not "requireTLS":
        // without this key it was ignored in silence.
        enum CodingKeys: String, CodingKey {
            case listen
            case requireTLS = "requireTls"
        }
    }

    public struct DNS: Codable, Sendable, Equatable {
        public var listen: String
        public var enabled: Bool?
        /// UDP answers per second per client network (0: unlimited).
        public var rateLimit: Double?

        public init(listen: String, enabled: Bool? = nil, rateLimit: Double? = nil) {
            self.listen = listen
            self.enabled = enabled
            self.rateLimit = rateLimit
        }
    }

    /// A mailbox-access protocol's listeners (POP3, IMAP): `listen` with STLS/STARTTLS, `tls_listen` with TLS from the first byte.
    public struct MailAccess: Codable, Sendable, Equatable {
        public var listen: String?
        public var tlsListen: String?
        /// false: no listener for this protocol.
        public var enabled: Bool?
        /// Minutes a session may stay silent (POP3: at least 10, RFC 1939 3; IMAP: at least 30, RFC 9051 5.4).
        public var idleMinutes: Int?
        /// IMAP only: signed-in sessions one user may hold at once (POP3's maildrop lock makes it one).
        public var maxSessionsPerUser: Int?

        public init(listen: String? = nil, tlsListen: String? = nil, enabled: Bool? = nil, idleMinutes: Int? = nil, maxSessionsPerUser: Int? = nil) {
            self.listen = listen
            self.tlsListen = tlsListen
            self.enabled = enabled
            self.idleMinutes = idleMinutes
            self.maxSessionsPerUser = maxSessionsPerUser
        }
    }

    public struct TLS: Codable, Sendable, Equatable {
        public init() {}

        /// PEM certificate chain and key for both listeners. Absent: a self-signed pair in DATA/tls/.
        public var certificate: String?
        public var key: String?
        /// An RSA pair served beside an ECDSA `certificate` to clients that cannot verify ECDSA.
        public var rsaCertificate: String?
        public var rsaKey: String?
    }

    public struct Resolver: Codable, Sendable, Equatable {
        public init() {}

        /// Upstream servers (HOST:PORT); absent: /etc/resolv.conf.
        public var servers: [String]?
        /// Servers to ask for a zone and everything under it (a peer HISP's certificate server).
        public var zones: [String: [String]]?
        public var timeoutSeconds: Int?
    }

    public struct Route: Codable, Sendable, Equatable {
        public var host: String
        public var port: Int?
        /// `full` (default), `no-hostname` or `none`.
        public var tlsVerify: String?
        /// PEM file of certificates to trust for this route instead of the system's.
        public var trustRoots: String?
        /// false: send in clear when the server offers no STARTTLS (not for PHI).
        public var requireTLS: Bool?

        public init(host: String, port: Int? = nil, tlsVerify: String? = nil, trustRoots: String? = nil, requireTLS: Bool? = nil) {
            self.host = host
            self.port = port
            self.tlsVerify = tlsVerify
            self.trustRoots = trustRoots
            self.requireTLS = requireTLS
        }

        enum CodingKeys: String, CodingKey {
            case host, port, tlsVerify, trustRoots
            case requireTLS = "requireTls"
        }
    }

    public struct Delivery: Codable, Sendable, Equatable {
        public init() {}

        /// The port MX hosts are reached on (25).
        public var mxPort: Int?
        /// Certificate checking for MX delivery (routes set their own): `full`, `no-hostname`, `none`.
        public var tlsVerify: String?
        public var trustRoots: String?
        /// Refuse a recipient without a trusted certificate at RCPT instead of a DSN later.
        public var rejectUntrustedAtRcpt: Bool?
    }

    public struct Limits: Codable, Sendable, Equatable {
        public init() {}

        public var maxMessageBytes: Int?
        public var maxRecipients: Int?
        public var maxConnections: Int?
        public var maxConnectionsPerAddress: Int?
        /// Submission slots kept for sessions that have authenticated.
        public var reservedForAuthenticated: Int?
        /// Message bytes all SMTP sessions together may hold in memory; past it, 452 4.3.1.
        public var maxBytesInFlight: Int?
        /// Inside DATA, bytes per second a sender must average after the first 30 seconds.
        public var minDataRate: Int?
    }

    public struct Timeouts: Codable, Sendable, Equatable {
        public init() {}

        /// Per command line, from the last reply (RFC 5321 4.5.3.2.7: at most 300).
        public var commandSeconds: Int?
        /// The longest silence inside DATA.
        public var dataSeconds: Int?
        /// The longest an SMTP session may last.
        public var sessionSeconds: Int?
        /// Submission: the time to authenticate after connecting.
        public var authSeconds: Int?
        /// Wait for a processed (or dispatched) MDN before a failure DSN.
        public var notificationSeconds: Int?
        /// Give up delivering after this long.
        public var maxQueueAgeSeconds: Int?
        public var retrySeconds: [Int]?
        public var queuePollSeconds: Double?
        /// How long an SMTP session waits for discovery before the queue's preparer takes over.
        public var sessionDiscoverySeconds: Double?
        /// How long a submission password, once verified, is remembered in memory (0: never).
        public var authCacheSeconds: Int?
    }

    /// Sign-in throttling (every edge that takes a password).
    public struct Auth: Codable, Sendable, Equatable {
        public init() {}

        /// Failures (per account, per client address) before each attempt must wait, the wait doubling.
        public var delayAfterFailures: Int?
        /// Failures within `lockout_window_seconds` that lock the account or address out.
        public var lockoutFailures: Int?
        public var lockoutWindowSeconds: Int?
        public var lockoutSeconds: Int?
    }

    public struct Log: Codable, Sendable, Equatable {
        public init() {}

        /// `json` (default) or `text`.
        public var format: String?
        /// trace, debug, info, notice, warning, error, critical.
        public var level: String?
    }

    /// Private-key operations (docs/keys.md).
    public struct CryptoSettings: Codable, Sendable, Equatable {
        public init(provider: String? = nil) { self.provider = provider }

        /// `auto` (default: OpenSSL 3 when it loads and passes its known-answer test, else builtin), `builtin` or `openssl`.
        public var provider: String?
    }

    /// The name this HISP gives in EHLO, greetings, MDNs and DSNs.
    public var hostname: String?
    public var inbound: Listener?
    public var submission: Listener?
    public var pop3: MailAccess?
    public var imap: MailAccess?
    public var dns: DNS?
    public var tls: TLS?
    public var resolver: Resolver?
    public var routes: [String: Route]?
    public var delivery: Delivery?
    public var limits: Limits?
    public var timeouts: Timeouts?
    public var auth: Auth?
    public var log: Log?
    public var crypto: CryptoSettings?

    public init() {}

    /// The development defaults of `hisp quickstart`: unprivileged loopback ports.
    public static let defaultInbound = "127.0.0.1:2525"
    public static let defaultSubmission = "127.0.0.1:2587"
    public static let defaultDNS = "127.0.0.1:5353"
    public static let defaultPOP3 = "127.0.0.1:2110"
    public static let defaultPOP3S = "127.0.0.1:2995"
    public static let defaultIMAP = "127.0.0.1:2143"
    public static let defaultIMAPS = "127.0.0.1:2993"
    /// A mail client opens up to five connections (Thunderbird's default); a provider may use three devices and an EHR.
    public static let defaultIMAPSessionsPerUser = 20

    public static func load(_ path: String) throws -> AppConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        guard data.count <= 1_048_576 else { throw ConfigurationError("\(path) is larger than 1 MiB") }
        // A misspelt key would otherwise be ignored in silence and its default used.
        if let object = try? JSONSerialization.jsonObject(with: data) {
            if let unknown = unknownKeys(object).first { throw ConfigurationError("\(path): unknown key \(unknown)") }
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            let configuration = try decoder.decode(AppConfiguration.self, from: data)
            try configuration.checkRanges()
            return configuration
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigurationError("\(path): not valid JSON (\(context.debugDescription))")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ConfigurationError("\(path): \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
    }

    /// Numbers JSON can hold but a HISP cannot use (a negative wait, or one
    /// too large to become a Duration), refused with their key.
    func checkRanges() throws {
        if let name = crypto?.provider, KeyProviderChoice(rawValue: name) == nil {
            throw ConfigurationError("crypto.provider: \(SafeText.escape(name)) is not auto, builtin or openssl")
        }
        let seconds: [(key: String, value: Double?, range: ClosedRange<Double>)] = [
            ("timeouts.queue_poll_seconds", timeouts?.queuePollSeconds, 0.01...3600),
            ("timeouts.session_discovery_seconds", timeouts?.sessionDiscoverySeconds, 0...600),
        ]
        let integers: [(key: String, value: Int?, range: ClosedRange<Int>)] = [
            // RFC 5321 4.5.3.2.7: five minutes is the ceiling of the command deadline.
            ("timeouts.command_seconds", timeouts?.commandSeconds, 1...300),
            ("timeouts.data_seconds", timeouts?.dataSeconds, 1...3600),
            ("timeouts.session_seconds", timeouts?.sessionSeconds, 10...86_400),
            ("timeouts.auth_seconds", timeouts?.authSeconds, 1...3600),
            // RFC 1939 3: the autologout timer is at least 10 minutes.
            ("pop3.idle_minutes", pop3?.idleMinutes, 10...1440),
            // RFC 9051 5.4: an inactivity timer of at least 30 minutes.
            ("imap.idle_minutes", imap?.idleMinutes, 30...1440),
            ("imap.max_sessions_per_user", imap?.maxSessionsPerUser, 1...10_000),
            ("limits.max_connections", limits?.maxConnections, 1...100_000),
            ("limits.max_connections_per_address", limits?.maxConnectionsPerAddress, 1...100_000),
            ("limits.reserved_for_authenticated", limits?.reservedForAuthenticated, 0...100_000),
            ("limits.max_bytes_in_flight", limits?.maxBytesInFlight, 65_536...(1 << 40)),
            ("limits.min_data_rate", limits?.minDataRate, 1...(1 << 30)),
            ("auth.delay_after_failures", auth?.delayAfterFailures, 1...1000),
            ("auth.lockout_failures", auth?.lockoutFailures, 1...1000),
            ("auth.lockout_window_seconds", auth?.lockoutWindowSeconds, 1...86_400 * 7),
            ("auth.lockout_seconds", auth?.lockoutSeconds, 1...86_400 * 7),
        ]
        for i in integers {
            if let v = i.value, !i.range.contains(v) {
                throw ConfigurationError("\(i.key): \(v) is outside \(i.range.lowerBound)...\(i.range.upperBound)")
            }
        }
        for s in seconds {
            if let v = s.value, !s.range.contains(v) {
                let g = { (x: Double) in String(format: "%g", x) }
                throw ConfigurationError("\(s.key): \(g(v)) is outside \(g(s.range.lowerBound))...\(g(s.range.upperBound)) seconds")
            }
        }
    }

    /// The keys each section may hold (README "Configuration").
    static let sections: [String: Set<String>] = [
        "": ["hostname", "inbound", "submission", "pop3", "imap", "dns", "tls", "resolver", "routes", "delivery", "limits", "timeouts", "auth", "log",
             "crypto"],
        "crypto": ["provider"],
        "inbound": ["listen", "require_tls"], "submission": ["listen", "require_tls"],
        "pop3": ["listen", "tls_listen", "enabled", "idle_minutes"], "imap": ["listen", "tls_listen", "enabled", "idle_minutes", "max_sessions_per_user"],
        "dns": ["listen", "enabled", "rate_limit"], "tls": ["certificate", "key", "rsa_certificate", "rsa_key"],
        "resolver": ["servers", "zones", "timeout_seconds"],
        "route": ["host", "port", "tls_verify", "trust_roots", "require_tls"],
        "delivery": ["mx_port", "tls_verify", "trust_roots", "reject_untrusted_at_rcpt"],
        "limits": ["max_message_bytes", "max_recipients", "max_connections", "max_connections_per_address", "reserved_for_authenticated",
                   "max_bytes_in_flight", "min_data_rate"],
        "auth": ["delay_after_failures", "lockout_failures", "lockout_window_seconds", "lockout_seconds"],
        "timeouts": ["command_seconds", "data_seconds", "session_seconds", "auth_seconds", "notification_seconds", "max_queue_age_seconds", "retry_seconds", "queue_poll_seconds", "session_discovery_seconds", "auth_cache_seconds"],
        "log": ["format", "level"],
    ]

    /// Dotted paths of keys no section knows.
    static func unknownKeys(_ object: Any) -> [String] {
        guard let top = object as? [String: Any] else { return [] }
        var unknown: [String] = []
        for (key, value) in top.sorted(by: { $0.key < $1.key }) {
            guard sections[""]?.contains(key) == true else { unknown.append(key); continue }
            if key == "routes", let routes = value as? [String: Any] {
                for (domain, route) in routes.sorted(by: { $0.key < $1.key }) {
                    for k in ((route as? [String: Any]) ?? [:]).keys.sorted() where sections["route"]?.contains(k) != true {
                        unknown.append("routes.\(domain).\(k)")
                    }
                }
            } else if let section = value as? [String: Any], let allowed = sections[key] {
                for k in section.keys.sorted() where !allowed.contains(k) { unknown.append("\(key).\(k)") }
            }
        }
        return unknown
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `HOST:PORT` or `[V6]:PORT`.
public func parseHostPort(_ text: String, what: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw ConfigurationError("\(what) \(text) is not HOST:PORT")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { throw ConfigurationError("\(what) \(text) has no host") }
    return (host, port)
}
