import ArgumentParser
import CryptographicMessageSyntax
import DirectCore
import Foundation
import InternetMessage
import MailService
import PKCS12
import Storage
import X509

extension CertCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an address's (or domain's) certificate and CA as PEM, or with its key as a .p12 for a workstation.")

        @Argument(help: "A Direct address, or a hosted domain.") var target: String
        @Flag(help: "For a domain: its CA certificate (what peers add as an anchor).") var ca = false
        @Option(help: "Write a .p12 with the private key (PBES2 AES-256) instead of PEM.") var pkcs12: String?
        @Option(help: "File whose first line is the .p12 password (at least 8 characters).") var passwordFile: String?
        @Option(help: "Where to write the PEM (default: standard output).") var out: String?
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard (pkcs12 == nil) == (passwordFile == nil) else { throw ValidationError("--pkcs12 and --password-file go together") }
            guard !(ca && pkcs12 != nil) else { throw ValidationError("a CA's key is not exported; --ca writes its certificate only") }
        }

        func run() async throws {
            let owner: KeyOwner
            if target.contains("@") {
                guard !ca else { throw CLIFailure.usage("--ca is for a domain, not an address") }
                owner = .address(try AddressCommand.parse(target))
            } else {
                let d = try CommandIO.domainName(target)
                owner = ca ? .domainCA(d) : .domain(d)
            }
            try await store.withStore { s in
                let domain: String
                switch owner {
                case .address(let a): domain = a.domain
                case .domain(let d), .domainCA(let d): domain = d
                }
                let caDER = try await s.domain(domain).caCertificate
                if let pkcs12, let passwordFile {
                    let password = try PKCS12Command.password(passwordFile)
                    guard password.count >= 8 else {
                        throw CLIFailure.usage("\(passwordFile): the password has \(password.count) characters; use at least 8 (the file holds a private key)")
                    }
                    try CommandIO.refuseExisting(pkcs12)
                    let (certDER, keyDER) = try await s.credential(for: owner)
                    let name = PKCS12Command.Export.friendlyName(try StoredPKI.certificate(certDER, what: owner.description))
                    let bytes = try PKCS12.export(
                        privateKey: keyDER, certificate: certDER, chain: [caDER], friendlyName: name, password: password,
                        iterations: PKCS12.defaultIterations)
                    try CommandIO.writeSecret(bytes, to: pkcs12)
                    try await s.recordKeyExport(owner, format: "pkcs12")
                    say("wrote \(pkcs12): the key and certificate of \(owner) with its CA (PBES2 AES-256-CBC, mode 0600)")
                    say("  import it into the workstation's mail client; delete the file afterwards")
                } else {
                    let certDER: [UInt8]
                    switch owner {
                    case .domainCA: certDER = caDER
                    case .domain(let d): certDER = try await s.domain(d).certificate
                    case .address(let a): certDER = try await s.address(a).certificate
                    }
                    var pem = StoredPKI.pem(certDER)
                    if case .domainCA = owner {} else { pem += StoredPKI.pem(caDER) }
                    try CommandIO.writeOutput(Array(pem.utf8), to: out)
                    if let out { say("wrote \(out): the certificate of \(owner)\(ca ? "" : " and its CA")") }
                }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace an address's key and certificate with those in a .p12 (e.g. issued by an outside CA).")

        @Argument(help: "The Direct address.") var address: String
        @Option(help: "The .p12 or .pfx file.") var pkcs12: String
        @Option(help: "File whose first line is its password.") var passwordFile: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let a = try AddressCommand.parse(address)
            let contents: PKCS12.Contents
            do {
                contents = try PKCS12.read(try CommandIO.readFile(pkcs12, limit: PKCS12.maxFileSize), password: try PKCS12Command.password(passwordFile))
            } catch let e as PKCS12Error {
                throw CLIFailure.usage("\(pkcs12): \(e.description)")
            }
            let cert = try StoredPKI.certificate(contents.certificate, what: pkcs12)
            let key = try LocalPrivateKey(der: contents.privateKey)
            guard key.publicKeySPKI == (try CertificateSummary(der: contents.certificate)).subjectPublicKeyInfo else {
                throw CLIFailure.usage("\(pkcs12): the private key does not belong to the certificate")
            }
            // Direct AS 1.2 4.0: the certificate must be bound to this address (or its domain).
            let sans = (try? cert.extensions.subjectAlternativeNames).map { Array($0) } ?? []
            let bound = sans.contains { san in
                if case .rfc822Name(let e) = san { return e.lowercased() == a.description.lowercased() }
                if case .dnsName(let d) = san { return d.lowercased() == a.domain }
                return false
            }
            guard bound else {
                throw CLIFailure.usage("\(pkcs12): \(CommandIO.describe(cert)) is not bound to \(a) (no matching rfc822Name or dNSName)")
            }
            try await store.withStore { s in
                try await s.replaceCredential(a, certificate: contents.certificate, privateKey: key.pkcs8DER)
                say("imported \(CommandIO.describe(cert)) and its \(key.keyDescription) key for \(a)")
            }
        }
    }
}

struct MessageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "message", abstract: "Messages in mailboxes (stored encrypted).", subcommands: [Import.self, List.self, Folders.self, Show.self, Trace.self])

    /// Header facts to keep beside the message (RFC 5322 3.6).
    static func metadata(_ bytes: [UInt8], file: String) throws -> MessageMetadata {
        let entity: MIMEEntity
        do { entity = try MIMEEntity(parsing: bytes) } catch let e as MessageError {
            throw CLIFailure.usage("\(file) is not an RFC 5322 message: \(e.description)")
        }
        return MessageMetadata(headers: entity.headers, messageID: entity.headers["Message-ID"]?.trimmingWhitespace() ?? "")
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store message file(s) in a mailbox; prints each new message's ID on its own line once it is on disk.")
        @Option(help: "The mailbox's Direct address.") var mailbox: String
        @Argument(help: "RFC 5322 message files.") var files: [String]
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give at least one message file") }
        }

        func run() async throws {
            let a = try AddressCommand.parse(mailbox)
            try await store.withStore { s in
                for file in files {
                    let bytes = try CommandIO.readFile(file, limit: StoreLimits.maxMessageBytes)
                    let meta = try MessageCommand.metadata(bytes, file: file)
                    let id = try await s.addMessage(mailbox: a, bytes: bytes, metadata: meta)
                    // Acknowledged only after the transaction is durable.
                    FileHandle.standardOutput.write(Data("\(id)\n".utf8))
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per message: ID, received, folder and UID, flags, size, sender, subject.",
            discussion: "Without --folder, every folder's messages, oldest first; with it, that folder's, newest first, a page at a time.")
        @Option(help: "The mailbox's Direct address.") var mailbox: String
        @Option(help: "Only this folder (INBOX, Sent, Drafts, Trash, Archive, or a folder of the user's).") var folder: String?
        @Option(help: "With --folder: the page to show (1 is the newest).") var page = 1
        @Option(help: "With --folder: messages per page.") var pageSize = 50
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard page >= 1 else { throw ValidationError("--page starts at 1") }
            guard (1...StoreLimits.maxPageSize).contains(pageSize) else { throw ValidationError("--page-size is 1 to \(StoreLimits.maxPageSize)") }
        }

        func run() async throws {
            let a = try AddressCommand.parse(mailbox)
            try await store.withStore { s in
                let f = ISO8601DateFormatter()
                let messages: [MessageSummary]
                if let folder {
                    let (total, listed): (Int, [MessageSummary])
                    do {
                        (total, listed) = try await s.page(mailbox: a, folder: folder, number: page, size: pageSize)
                    } catch StoreError.notFound(let what) where what.hasPrefix("folder ") {
                        throw CLIFailure.usage("\(what) not found in \(a); `hisp message folders --mailbox \(a)` lists its folders")
                    }
                    messages = listed
                    let name = SpecialFolder(name: folder)?.name ?? folder
                    let pages = max(1, (total + pageSize - 1) / pageSize)
                    if page > pages {
                        say("\(SafeText.escape(name)): \(total) message(s) in \(pages) page(s) of \(pageSize); page \(page) is past the end")
                    } else {
                        say("\(SafeText.escape(name)): \(total) message(s), page \(page) of \(pages)")
                    }
                } else {
                    messages = try await s.messages(mailbox: a)
                }
                for m in messages {
                    let flags = (m.flags.names + m.keywords).joined(separator: " ")
                    say("\(m.id)  \(f.string(from: m.received))  \(m.folder)/\(m.uid)  [\(flags)]  \(m.size)  \(m.metadata.sender)  \(m.metadata.subject)")
                }
            }
        }
    }

    struct Folders: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A mailbox's folders: name, special use, messages, unread, UIDVALIDITY, next UID, highest modification sequence.")
        @Option(help: "The mailbox's Direct address.") var mailbox: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let a = try AddressCommand.parse(mailbox)
            try await store.withStore { s in
                for f in try await s.folders(mailbox: a) {
                    say("\(f.name)  \(f.special?.attribute ?? "-")  \(f.messages) message(s)  \(f.unseen) unread  "
                        + "uidvalidity \(f.uidValidity)  uidnext \(f.uidNext)  modseq \(f.highestModSeq)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a message's exact original bytes.")
        @Argument(help: "The message ID (from `message list`).") var id: String
        @Option(help: "Write to this file (mode 0600) instead of standard output.") var out: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await store.withStore { s in
                let (_, bytes) = try await s.message(id)
                if let out {
                    try CommandIO.refuseExisting(out)
                    try CommandIO.writeSecret(bytes, to: out)
                } else {
                    CommandIO.writeStandardOutput(bytes)
                }
            }
        }
    }
}
