import ArgumentParser
import DNSCore
import DNSServer
import DirectCore
import Foundation
import Storage

/// Options naming how a domain is published in DNS.
struct DomainDNSOptions: ParsableArguments {
    @Option(help: "This HISP's host name, the domain's NS and MX (default: hisp.DOMAIN).") var host: String?
    @Option(help: "The host's public IPv4 address (published as glue when the host is inside the domain).") var ipv4: String?
    @Option(help: "The host's public IPv6 address.") var ipv6: String?

    func resolve(domain: String, current: DomainDNS? = nil) throws -> DomainDNS {
        let h = try host.map { try CommandIO.domainName($0) } ?? current?.host ?? "hisp.\(domain)"
        if let ipv4, IPAddressText.v4(ipv4) == nil { throw CLIFailure.usage("--ipv4 \(ipv4) is not an IPv4 address such as 203.0.113.10") }
        if let ipv6, IPAddressText.v6(ipv6) == nil { throw CLIFailure.usage("--ipv6 \(ipv6) is not an IPv6 address such as 2001:db8::10") }
        return DomainDNS(host: h, ipv4: ipv4 ?? current?.ipv4, ipv6: ipv6 ?? current?.ipv6)
    }
}

struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns", abstract: "The certificate DNS server and what to publish.",
        subcommands: [Serve.self, Records.self, Zone.self, Set.self])

    static func zone(_ s: HISPStore, _ domain: String) async throws -> DNSCore.Zone {
        let d = try await s.domain(domain)
        return try HostedZones.zone(domain: d, addresses: try await s.publishedCertificates(domain: domain), serial: try await s.zoneSerial())
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer DNS for the hosted domains (UDP and TCP): SOA, NS, A/AAAA, MX and CERT; never recursive.",
            discussion: "Changes to domains and addresses are served within a second, without a restart.")
        @Option(help: "Where to listen (HOST:PORT; port 53 needs privileges).") var listen: String = "127.0.0.1:5353"
        @Option(help: "UDP answers per second per client network (0: unlimited).") var rateLimit: Double = 100
        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
                throw CLIFailure.usage("--listen \(listen) is not HOST:PORT")
            }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let config = CertificateDNSServer.Configuration(host: host, port: port, rateLimit: max(0, rateLimit))
            try await store.withStore { s in
                let server: CertificateDNSServer
                do {
                    server = try await CertificateDNSServer.start(
                        store: s, configuration: config,
                        onReload: { zones, serial in
                            FileHandle.standardOutput.write(Data("zones loaded: \(zones), serial \(serial)\n".utf8))
                        },
                        onError: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) })
                } catch let e as any DirectError {
                    throw e
                } catch {
                    throw CLIFailure.usage("cannot listen on \(listen): \(error)")
                }
                FileHandle.standardOutput.write(Data("serving DNS on \(host) udp/\(server.udpPort) tcp/\(server.tcpPort)\n".utf8))
                try await server.wait()
            }
        }
    }

    struct Records: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What to set at the registrar so the world finds this HISP's certificates.")
        @Argument var domain: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let name = try CommandIO.domainName(domain)
            try await store.withStore { s in
                for line in try await Records.lines(s, name) { say(line) }
            }
        }

        /// What to publish for `name`, as `hisp dns records` prints it.
        static func lines(_ s: HISPStore, _ name: String) async throws -> [String] {
            var lines: [String] = []
            let d = try await s.domain(name)
            let z = try await DNSCommand.zone(s, name)
            let parent = name.split(separator: ".").dropFirst().joined(separator: ".")
            let inside = d.dns.host.hasSuffix("." + name)
            lines.append("At the registrar or DNS host of \(parent), delegate \(name) to this HISP:")
            lines.append("  \(name).  IN NS  \(d.dns.host).")
            if inside {
                lines.append("and, because \(d.dns.host) is inside \(name), its glue address(es):")
                if let v4 = d.dns.ipv4 { lines.append("  \(d.dns.host).  IN A     \(v4)") }
                if let v6 = d.dns.ipv6 { lines.append("  \(d.dns.host).  IN AAAA  \(v6)") }
                if d.dns.ipv4 == nil && d.dns.ipv6 == nil {
                    lines.append("  (no address set: run hisp dns set \(name) --ipv4 PUBLIC-ADDRESS)")
                }
            } else {
                lines.append("and make sure \(d.dns.host) has an A or AAAA record where it is hosted.")
            }
            let certs = z.records.filter { $0.type == .cert }
            lines.append("This HISP's DNS server (hisp serve, or hisp dns serve; port 53 reachable from the internet) then answers for \(name):")
            lines.append("  SOA and NS, MX 10 \(d.dns.host)., and \(certs.count) CERT record(s):")
            for r in certs { lines.append("    \(r.name)  CERT PKIX") }
            lines.append("Check from outside: dig +tcp @\(d.dns.host) \(name) CERT")
            lines.append("To host the records on your own DNS server instead: hisp dns zone \(name)")
            return lines
        }
    }

    struct Zone: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The zone in master-file format, for BIND, Knot or NSD.")
        @Argument var domain: String
        @Option(help: "Write to this file instead of standard output.") var out: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let name = try CommandIO.domainName(domain)
            try await store.withStore { s in
                let text = try await DNSCommand.zone(s, name).masterFile
                try CommandIO.writeOutput(Array(text.utf8), to: out)
                if let out { say("wrote \(out)") }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change the host name or addresses a domain is published with.")
        @Argument var domain: String
        @OptionGroup var dns: DomainDNSOptions
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let name = try CommandIO.domainName(domain)
            try await store.withStore { s in
                let current = try await s.domain(name).dns
                let new = try dns.resolve(domain: name, current: current)
                try await s.setDomainDNS(name, new)
                say("\(name): host \(new.host)\(new.ipv4.map { ", IPv4 \($0)" } ?? "")\(new.ipv6.map { ", IPv6 \($0)" } ?? "")")
            }
        }
    }
}
