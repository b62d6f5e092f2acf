import ArgumentParser
import Crypto
import DirectCore
import Foundation
import SQLiteStore
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// `--data` and the master key options every store command takes.
struct StoreOptions: ParsableArguments {
    @Option(help: "The data directory.") var data: String = "./hisp-data"
    @Option(help: "The master key file (keep it outside the data directory).") var keyFile: String?
    @Option(help: "A file whose first line is the master passphrase (or set HISP_PASSPHRASE).") var passphraseFile: String?

    static let databaseName = "hisp.sqlite"

    var databasePath: String { (data as NSString).appendingPathComponent(Self.databaseName) }

    /// The key material the options name. `creating`: a missing key file is made,
    /// and a passphrase must be long enough.
    func material(creating: Bool = false) throws -> MasterKeyMaterial {
        try MasterKeyOptions.material(keyFile: keyFile, passphraseFile: passphraseFile, creating: creating, dataDirectory: data)
    }

    /// Opens and unlocks the store, runs `body`, and closes it.
    func withStore<T>(actor: String? = nil, _ body: (HISPStore) async throws -> T) async throws -> T {
        guard FileManager.default.fileExists(atPath: databasePath) else {
            throw CLIFailure.usage("no HISP data directory at \(data) (no \(Self.databaseName)); create one with `hisp init --data \(data) --key-file FILE`")
        }
        let material = try material()
        let database = try await SQLiteDatabase.open(path: databasePath, create: false)
        let store: HISPStore
        do {
            store = try await HISPStore.open(database: database, material: material, actor: actor ?? Self.actor)
        } catch {
            try? await database.close()
            throw error
        }
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Who runs the command, for the audit trail.
    static var actor: String {
        let user = ProcessInfo.processInfo.environment["USER"] ?? String(getuid())
        return "cli:\(user)"
    }
}

/// Reading and creating master key files and passphrases.
enum MasterKeyOptions {
    static let keyFileHeader = "hisp-master-key-v1"
    static let minimumPassphraseLength = 12

    static func material(keyFile: String?, passphraseFile: String?, creating: Bool, dataDirectory: String?) throws -> MasterKeyMaterial {
        switch (keyFile, passphraseFile) {
        case (.some, .some):
            throw CLIFailure.usage("give --key-file or --passphrase-file, not both")
        case (.some(let path), nil):
            if let dataDirectory { try refuseInside(path, dataDirectory) }
            if creating && !FileManager.default.fileExists(atPath: path) { return .keyFile(try createKeyFile(path), origin: "key file \(path)") }
            return .keyFile(try readKeyFile(path), origin: "key file \(path)")
        case (nil, .some(let path)):
            if let dataDirectory { try refuseInside(path, dataDirectory) }
            let bytes = try CommandIO.readFile(path, limit: 4096)
            return .passphrase(try passphrase(bytes, origin: path, creating: creating), origin: "the passphrase in \(path)")
        case (nil, nil):
            if let env = ProcessInfo.processInfo.environment["HISP_PASSPHRASE"] {
                return .passphrase(try passphrase(Array(env.utf8), origin: "HISP_PASSPHRASE", creating: creating),
                                   origin: "the passphrase in HISP_PASSPHRASE")
            }
            throw CLIFailure.usage("give the master key: --key-file FILE, --passphrase-file FILE, or HISP_PASSPHRASE")
        }
    }

    static func passphrase(_ bytes: [UInt8], origin: String, creating: Bool) throws -> [UInt8] {
        var line = Array(bytes.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false).first ?? [])
        if line.last == 0x0D { line.removeLast() }
        guard !line.isEmpty else { throw CLIFailure.usage("\(origin): the passphrase is empty") }
        if creating && line.count < minimumPassphraseLength {
            throw CLIFailure.usage("\(origin): the passphrase has \(line.count) characters; use at least \(minimumPassphraseLength)")
        }
        return line
    }

    /// The master key must not lie in the data directory (it would be in every copy of it).
    static func refuseInside(_ path: String, _ dataDirectory: String) throws {
        let key = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        let data = URL(fileURLWithPath: dataDirectory).standardizedFileURL.resolvingSymlinksInPath().path
        if key == data || key.hasPrefix(data.hasSuffix("/") ? data : data + "/") {
            throw CLIFailure.usage("\(path) is inside the data directory \(dataDirectory); keep the master key elsewhere (a copy of the data directory must not carry its key)")
        }
    }

    /// A new random 256-bit key, written mode 0600 (never over an existing file).
    static func createKeyFile(_ path: String) throws -> SymmetricKey {
        let key = SymmetricKey(size: .bits256)
        let b64 = key.withUnsafeBytes { Data($0).base64EncodedString() }
        let text = """
            # DirectHISP master key. Whoever holds this file and a copy of the data directory can read
            # every message in it. Keep it off the data disk, back it up separately, never email it.
            \(keyFileHeader) \(b64)

            """
        try CommandIO.writeSecret(Array(text.utf8), to: path)
        return key
    }

    static func readKeyFile(_ path: String) throws -> SymmetricKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CLIFailure.usage("key file \(path): no such file") }
        // Like ssh with private keys: a key others can read is refused.
        guard st.st_mode & 0o077 == 0 else {
            throw CLIFailure.usage(String(format: "key file \(path) can be read by other users (mode %03o); run: chmod 600 \(path)", st.st_mode & 0o777))
        }
        let bytes = try CommandIO.readFile(path, limit: 4096)
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(keyFileHeader + " ") {
            let b64 = line.dropFirst(keyFileHeader.count + 1).trimmingCharacters(in: .whitespaces)
            guard let raw = Data(base64Encoded: b64), raw.count == 32 else { break }
            return SymmetricKey(data: raw)
        }
        throw CLIFailure.usage("\(path) is not a DirectHISP key file (no \(keyFileHeader) line with a 256-bit key)")
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct ProgressBar {
    let label: String
    let total: Int64
    let enabled = isatty(2) == 1
    var lastPercent = -1

    init(label: String, total: Int64) {
        self.label = label
        self.total = max(total, 1)
    }

    mutating func update(_ done: Int64) {
        guard enabled else { return }
        let percent = Int(min(100, done * 100 / total))
        guard percent != lastPercent else { return }
        lastPercent = percent
        let filled = percent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)%".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
