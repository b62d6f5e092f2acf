import ArgumentParser
import DirectCore
import Foundation
import HISPApp
import HTTPFetch
import Logging
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Listener addresses that flags may set over the configuration file.
struct ListenOptions: ParsableArguments {
    @Option(help: "Inbound SMTP (MX) listener, HOST:PORT (default 127.0.0.1:2525; 25 in production).") var inbound: String?
    @Option(help: "Submission listener, HOST:PORT (default 127.0.0.1:2587; 587 in production).") var submission: String?
    @Option(name: .customLong("dns"), help: "Certificate DNS server, HOST:PORT (default 127.0.0.1:5353; 53 in production).") var dns: String?
    @Option(name: .customLong("pop3"), help: "POP3 listener with STLS, HOST:PORT (quickstart: 127.0.0.1:2110; 110 in production).") var pop3: String?
    @Option(name: .customLong("pop3s"), help: "POP3 listener with TLS from the start, HOST:PORT (quickstart: 127.0.0.1:2995; 995 in production).") var pop3s: String?
    @Option(name: .customLong("imap"), help: "IMAP listener with STARTTLS, HOST:PORT (quickstart: 127.0.0.1:2143; 143 in production).") var imap: String?
    @Option(name: .customLong("imaps"), help: "IMAP listener with TLS from the start, HOST:PORT (quickstart: 127.0.0.1:2993; 993 in production).") var imaps: String?

    func apply(to c: inout AppConfiguration) {
        if let inbound { c.inbound = AppConfiguration.Listener(listen: inbound, requireTLS: c.inbound?.requireTLS) }
        if let submission { c.submission = AppConfiguration.Listener(listen: submission, requireTLS: c.submission?.requireTLS) }
        if let dns { c.dns = AppConfiguration.DNS(listen: dns, enabled: c.dns?.enabled, rateLimit: c.dns?.rateLimit) }
        if pop3 != nil || pop3s != nil {
            var section = c.pop3 ?? AppConfiguration.MailAccess()
            if let pop3 { section.listen = pop3 }
            if let pop3s { section.tlsListen = pop3s }
            c.pop3 = section
        }
        if imap != nil || imaps != nil {
            var section = c.imap ?? AppConfiguration.MailAccess()
            if let imap { section.listen = imap }
            if let imaps { section.tlsListen = imaps }
            c.imap = section
        }
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HISP: inbound SMTP (MX), submission, POP3 and IMAP when configured, the certificate DNS server and the delivery queue.",
        discussion: "Configuration: a JSON file (README \"Configuration\"); flags override its listen addresses. Stops gracefully on SIGINT or SIGTERM; SIGHUP rereads the trust anchors and bundles.")

    @Option(help: "The configuration file (JSON).") var config: String?
    @OptionGroup var listen: ListenOptions
    @OptionGroup var store: StoreOptions

    func run() async throws {
        var c = AppConfiguration()
        if let config {
            do { c = try AppConfiguration.load(config) } catch let e as ConfigurationError { throw CLIFailure.usage(e.description) }
        }
        listen.apply(to: &c)
        try await Serving.run(c, store: store)
    }
}

enum Serving {
    static func logger(_ c: AppConfiguration) throws -> Logger {
        let levelText = c.log?.level ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else { throw CLIFailure.usage("log.level \(levelText) is not a level") }
        switch c.log?.format ?? "json" {
        case "json":
            return Logger(label: "hisp") { JSONLogHandler(label: $0, level: level) }
        case "text":
            return Logger(label: "hisp") { label in
                var h = EscapingLogHandler(StreamLogHandler.standardError(label: label))
                h.logLevel = level
                return h
            }
        case let other:
            throw CLIFailure.usage("log.format \(other): use json or text")
        }
    }

    /// Starts everything, prints where it listens, and runs until SIGINT or SIGTERM.
    static func run(_ c: AppConfiguration, store options: StoreOptions, banner: ((HISPServer.Summary) -> String)? = nil) async throws {
        let logger = try logger(c)
        try await options.withStore(actor: "smtp") { s in
            try await AsyncHTTPFetcher.withFetcher { fetcher in
                let (server, summary): (HISPServer, HISPServer.Summary)
                do {
                    (server, summary) = try await HISPServer.start(configuration: c, store: s, dataDirectory: options.data, fetcher: fetcher,
                                                                   logger: logger, signals: [.sigterm, .sigint])
                } catch let e as ConfigurationError {
                    throw CLIFailure.usage(e.description)
                } catch let e as DirectError {
                    throw e
                } catch {
                    throw CLIFailure.usage("cannot start: \(error)")
                }
                var lines = [
                    "hisp serve: ready as \(summary.hostname)",
                    "  inbound SMTP (MX):  \(summary.inbound)",
                    "  submission:         \(summary.submission)",
                    "  POP3 (STLS):        \(summary.pop3 ?? "off")",
                    "  POP3 (TLS):         \(summary.pop3s ?? "off")",
                    "  IMAP (STARTTLS):    \(summary.imap ?? "off")",
                    "  IMAP (TLS):         \(summary.imaps ?? "off")",
                    "  certificate DNS:    \(summary.dns ?? "off")",
                    "  TLS certificate:    \(summary.tlsCertificate)\(summary.selfSignedTLS ? " (self-signed, for development)" : "")",
                ]
                if let banner { lines.append(banner(summary)) }
                say(lines.joined(separator: "\n"))
                fflush(nil)
                // Until SIGTERM or SIGINT (a graceful shutdown of every service); SIGHUP rereads the trust anchors.
                do {
                    try await server.wait()
                } catch {
                    throw CLIFailure(message: "hisp serve stopped: \(error)", exitCode: 1)
                }
                say("hisp serve: stopped")
                fflush(nil)
            }
        }
    }
}
