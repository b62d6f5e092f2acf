import ArgumentParser
import Storage
import DirectCore
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The `hisp` command tree.
public struct Hisp: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hisp",
        abstract: "DirectHISP: a self-hosted Direct secure health messaging server.",
        version: "0.1.0",
        subcommands: [DemoCommand.self, QuickstartCommand.self, ServeCommand.self, QueueCommand.self, InitCommand.self, DomainCommand.self, AddressCommand.self, AnchorCommand.self, BundleCommand.self,
                      MessageCommand.self, BackupCommand.self, AuditCommand.self, KeyCommand.self, DNSCommand.self, DiscoverCommand.self,
                      CACommand.self, CertCommand.self, CRLCommand.self, PKCS12Command.self, TrustCommand.self, SMIMECommand.self, BenchCommand.self]
    )

    public init() {}
}

/// A failure the command line reports as `error: <reason>` with its exit code.
struct CLIFailure: Error {
    let message: String
    let exitCode: Int32

    static func usage(_ m: String) -> CLIFailure { CLIFailure(message: m, exitCode: 2) }
    static func security(_ m: String) -> CLIFailure { CLIFailure(message: m, exitCode: 1) }
}

public enum HispMain {
    /// Runs the command line and returns the process exit status:
    /// 0 success, 1 a security check failed, 2 usage or unparseable input.
    public static func run(_ arguments: [String]) async -> Int32 {
        // Files the HISP creates (stores, snapshots, keys) are for its own user only.
        umask(0o077)
        do {
            var command = try Hisp.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let failure as CLIFailure {
            printError(failure.message)
            return failure.exitCode
        } catch let error as StoreError {
            printError(Self.worded(error))
            return error.kind == .security ? 1 : 2
        } catch let error as DirectError {
            printError(error.description)
            return error.kind == .security ? 1 : 2
        } catch {
            // swift-argument-parser's own errors: help and version print and
            // succeed; every other parse error is a usage error (exit 2).
            let code = Hisp.exitCode(for: error)
            let message = Hisp.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                return 0
            }
            if let localized = error as? LocalizedError, let text = localized.errorDescription, message.isEmpty {
                printError(text)
            } else {
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
            return 2
        }
    }

    /// The store's refusals, with the command that resolves each (the store itself names no command).
    static func worded(_ e: StoreError) -> String {
        switch e {
        case .rotationUnfinished:
            return "a key rotation to this key is unfinished; run `hisp key rotate` again with the old key and this one as the new key"
        case .mailboxNotEmpty(let m, let n):
            return "mailbox \(m) holds \(n) message(s); back up, then give --delete-messages to remove them too"
        case .domainInUse(let d, let n):
            return "domain \(d) still has \(n) address(es); remove them first (hisp address list)"
        case .invalid(let text) where text.hasSuffix("is not a message id (32 lowercase hex digits)"):
            return text.dropLast() + ", as `hisp message list` prints)"
        default:
            return e.description
        }
    }

    static func printError(_ message: String) {
        // One line, never a stack trace.
        // One line, never a stack trace, and nothing from the input that a terminal would act on.
        let oneLine = SafeText.escape(message.replacingOccurrences(of: "\n", with: " "))
        FileHandle.standardError.write(Data("error: \(oneLine)\n".utf8))
    }
}
