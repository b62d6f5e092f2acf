import CertificateAuthority
import CryptographicMessageSyntax
import DirectCore
import DirectTrust
import Foundation
import SMIME
import X509
#if canImport(Glibc)
import Glibc
#endif

/// Reading inputs and writing outputs for commands: nothing is written until
/// the whole result exists, and `--out` is replaced atomically.
enum CommandIO {
    static let maxInputBytes = 64 * 1024 * 1024

    static func readInput(_ path: String?) throws -> [UInt8] {
        if let path { return try readFile(path, limit: maxInputBytes) }
        var out = [UInt8]()
        let handle = FileHandle.standardInput
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            out.append(contentsOf: chunk)
            guard out.count <= maxInputBytes else {
                throw CLIFailure.usage("input exceeds the limit of \(maxInputBytes) bytes")
            }
        }
        return out
    }

    static func readFile(_ path: String, limit: Int = 16 * 1024 * 1024) throws -> [UInt8] {
        let url = URL(fileURLWithPath: path)
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw CLIFailure.usage("cannot read \(path): no such file")
        }
        if let size = attrs[.size] as? Int, size > limit {
            throw CLIFailure.usage("\(path) is larger than the limit of \(limit) bytes")
        }
        do {
            return Array(try Data(contentsOf: url))
        } catch {
            throw CLIFailure.usage("cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func writeOutput(_ bytes: [UInt8], to path: String?) throws {
        guard let path else {
            writeStandardOutput(bytes)
            return
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CLIFailure.usage("cannot write \(path): \(error.localizedDescription)")
        }
    }

    static func certificates(_ path: String) throws -> [CertificateSummary] {
        do {
            return try CertificateLoading.load(try readFile(path))
        } catch let e as SMIMEError {
            throw CLIFailure.usage("\(path): \(e.description)")
        }
    }

    static func certificate(_ path: String) throws -> CertificateSummary {
        let certs = try certificates(path)
        guard certs.count == 1 else {
            throw CLIFailure.usage("\(path) holds \(certs.count) certificates; give exactly one")
        }
        return certs[0]
    }

    static func identity(cert: String, key: String, chain: [String] = []) throws -> SMIMEIdentity {
        let certificate = try certificate(cert)
        let privateKey: LocalPrivateKey
        do {
            privateKey = try LocalPrivateKey(bytes: try readFile(key))
        } catch let e as CMSError {
            throw CLIFailure.usage("\(key): \(e.description)")
        }
        let chainCerts = try chain.flatMap { try certificates($0) }
        do {
            return try SMIMEIdentity(certificate: certificate, key: privateKey, chain: chainCerts)
        } catch let e as SMIMEError {
            throw CLIFailure.usage("\(cert) and \(key): \(e.description)")
        }
    }

    static func parseDate(_ text: String, option: String = "--at") throws -> Date {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withFullDate]
        if let d = f.date(from: text) { return d }
        throw CLIFailure.usage("\(option) \(text) is not an ISO 8601 date (e.g. 2026-01-31T12:00:00Z)")
    }

    /// A serial number as colon-separated hex pairs (swift-certificates'
    /// description drops leading zeros of each byte).
    static func serialText(_ serial: Certificate.SerialNumber) -> String {
        serial.bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    /// The date part, for what commands print.
    static func day(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate]
        return f.string(from: date)
    }

    /// Date and time in UTC to the second, for what commands print.
    static func timestamp(_ date: Date) -> String { UTCTime.rfc3339(date) }

    static func x509Certificate(_ path: String) throws -> Certificate {
        do {
            return try CertificateLoading.x509(try certificate(path))
        } catch let e as SMIMEError {
            throw CLIFailure.usage("\(path): \(e.description)")
        }
    }

    /// Every certificate in a PEM file (or the one in a DER file), or a PKCS#7 bundle.
    static func x509Certificates(_ path: String) throws -> [Certificate] {
        do {
            return try CertificateBundle.read(try readFile(path))
        } catch let e as TrustError {
            throw CLIFailure.usage("\(path): \(e.description)")
        } catch {
            throw CLIFailure.usage("\(path): \(error)")
        }
    }

    /// A trust bundle from a file or a URL (TLS verification always on),
    /// its signature checked when it has one.
    static func bundle(_ source: TrustBundleSource, at time: Date, fetcher: (any HTTPFetching)?) async throws -> LoadedTrustBundle {
        let location = source.location
        let bytes: [UInt8]
        if location.hasPrefix("http://") || location.hasPrefix("https://") {
            guard let fetcher else { throw CLIFailure.usage("--bundle \(location) needs fetching, which --offline turns off") }
            do {
                bytes = try await fetcher.get(location, maxBytes: 16 << 20, timeout: .seconds(30))
            } catch let e as DirectError {
                throw CLIFailure.usage("--bundle \(location): \(e.description)")
            }
        } else {
            bytes = try readFile(location)
        }
        do {
            return try await TrustBundleReader.read(bytes, source: source, at: time, fetcher: fetcher)
        } catch let e as TrustBundleError {
            if case .refused = e { throw CLIFailure.security(e.description) }
            throw CLIFailure.usage(e.description)
        }
    }

    static func describe(_ cert: Certificate) -> String {
        var s = "subject \(cert.subject), serial \(serialText(cert.serialNumber))"
        if let sans = try? cert.extensions.subjectAlternativeNames {
            let names = sans.compactMap { n -> String? in
                if case .rfc822Name(let e) = n { return "email:\(e)" }
                if case .dnsName(let d) = n { return "DNS:\(d)" }
                return nil
            }
            if !names.isEmpty { s += ", SAN \(names.joined(separator: " "))" }
        }
        return s
    }

    static func privateKey(_ path: String) throws -> LocalPrivateKey {
        do {
            return try LocalPrivateKey(bytes: try readFile(path))
        } catch let e as CMSError {
            throw CLIFailure.usage("\(path): \(e.description)")
        }
    }

    static func keySpec(_ text: String) throws -> KeySpec {
        guard let spec = KeySpec(rawValue: text.lowercased()) else {
            throw CLIFailure.usage("--key \(text): use one of \(KeySpec.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return spec
    }

    static func distinguishedName(_ text: String) throws -> DistinguishedName {
        do {
            return try NameParser.parse(text)
        } catch let e as CAError {
            throw CLIFailure.usage("--subject: \(e.description)")
        }
    }

    /// A DNS domain name (RFC 1035 2.3.1 letters, digits, hyphens; RFC 5321 limits).
    static func domainName(_ text: String) throws -> String {
        let d = text.lowercased().hasSuffix(".") ? String(text.lowercased().dropLast()) : text.lowercased()
        let labels = d.split(separator: ".", omittingEmptySubsequences: false)
        let ok = d.utf8.count <= 253 && labels.count >= 2 && labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.utf8.allSatisfy { c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D
            } && label.first != "-" && label.last != "-"
        }
        guard ok else { throw CLIFailure.usage("--domain \(text) is not a domain name such as direct.example.org") }
        return d
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var hex = text.replacingOccurrences(of: ":", with: "")
        if hex.hasPrefix("0x") || hex.hasPrefix("0X") { hex = String(hex.dropFirst(2)) }
        if hex.count % 2 == 1 { hex = "0" + hex }
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let b = UInt8(hex[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }

    /// Runs a CA operation, turning its refusals into command-line failures.
    static func ca<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as CAError {
            throw e.kind == .security ? CLIFailure.security(e.description) : CLIFailure.usage(e.description)
        }
    }

    /// `--not-before`/`--not-after` are taken as given; say when they leave the issuer's validity.
    static func warnOutsideIssuer(_ issuer: Certificate, notBefore: Date, notAfter: Date) {
        // Certificates carry whole seconds.
        func second(_ d: Date) -> Double { d.timeIntervalSince1970.rounded(.down) }
        if second(notBefore) < second(issuer.notValidBefore) || second(notAfter) > second(issuer.notValidAfter) {
            let text = "warning: the validity \(day(notBefore)) to \(day(notAfter)) is outside the issuer's " +
                "(\(day(issuer.notValidBefore)) to \(day(issuer.notValidAfter))); relying parties will reject the chain then\n"
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    static func refuseExisting(_ path: String) throws {
        if FileManager.default.fileExists(atPath: path) {
            throw CLIFailure.usage("\(path) exists; a private key is never overwritten (move it away first)")
        }
    }

    /// Writes a private key: created exclusively (never replacing a file) with mode 0600.
    static func writeSecret(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw CLIFailure.usage("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw CLIFailure.usage("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

extension CommandIO {
    /// A message or file's bytes on standard output: as they are into a pipe or a file,
    /// with control characters escaped line by line when a person reads them on a terminal.
    static func writeStandardOutput(_ bytes: [UInt8]) {
        guard isatty(STDOUT_FILENO) == 1 else {
            FileHandle.standardOutput.write(Data(bytes))
            return
        }
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            SafeText.escape(bytes: line.last == 0x0D ? line.dropLast() : line)
        }
        FileHandle.standardOutput.write(Data(lines.joined(separator: "\n").utf8))
    }
}

/// `print` for everything a command shows: each line escaped by `SafeText`, since
/// subjects, addresses, certificate names and trace details come from input.
func say(_ text: String = "") {
    print(text.split(separator: "\n", omittingEmptySubsequences: false).map { SafeText.escape(String($0)) }.joined(separator: "\n"))
}
