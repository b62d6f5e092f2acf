import Foundation
import CryptographicMessageSyntax
import SMIME

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
            FileHandle.standardOutput.write(Data(bytes))
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

    static func parseDate(_ text: String) throws -> Date {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withFullDate]
        if let d = f.date(from: text) { return d }
        throw CLIFailure.usage("--at \(text) is not an ISO 8601 date (e.g. 2026-01-31T12:00:00Z)")
    }
}
