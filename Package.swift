// swift-tools-version:6.0
import PackageDescription

// Tiers follow docs/architecture.md: lower tiers never import upward (scripts/check-imports checks it).
let package = Package(
    name: "DirectHISP",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hisp", targets: ["hisp"]),
        .library(name: "SMIME", targets: ["SMIME"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Tier 0: value types, typed errors, ports.
        .target(name: "DirectCore", dependencies: ["CSecureRandom"]),
        // The kernel's CSPRNG (getrandom(2)), which Swift's Glibc module does not export.
        .target(name: "CSecureRandom"),
        // Tier 1: RFC 5322 / MIME.
        .target(name: "InternetMessage", dependencies: ["DirectCore"]),
        // Tier 1: RFC 5652 / RFC 5083 CMS types over swift-asn1.
        .target(
            name: "CryptographicMessageSyntax",
            dependencies: [
                "DirectCore",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Tier 2: RFC 8551 S/MIME packaging.
        .target(
            name: "SMIME",
            dependencies: [
                "DirectCore", "InternetMessage", "CryptographicMessageSyntax",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Tier 1: the DNS wire format (RFC 1035, EDNS0 RFC 6891, CERT RFC 4398), pure code.
        .target(name: "DNSCore", dependencies: ["DirectCore", .product(name: "NIOCore", package: "swift-nio")]),
        // Tier 1: SMTP (RFC 5321) commands, replies, input framing and the server session state machine.
        .target(name: "SMTPCore", dependencies: ["DirectCore", "InternetMessage"]),
        .target(name: "POP3Core", dependencies: ["SMTPCore"]),
        .target(name: "IMAPCore", dependencies: ["DirectCore", "InternetMessage", "SMTPCore"]),
        // Tier 1: the LDAP v3 messages certificate discovery needs (RFC 4511), BER on swift-asn1.
        .target(name: "LDAPCore", dependencies: ["DirectCore", .product(name: "SwiftASN1", package: "swift-asn1")]),
        // Tier 2: private-key operations by the system's OpenSSL 3, loaded at run time (docs/keys.md).
        .target(
            name: "OpenSSLKeys",
            dependencies: [
                "DirectCore", "CryptographicMessageSyntax",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Tier 3: the Direct security and trust agent (sign/encrypt out, decrypt/verify/trust in), pure code over ports.
        .target(
            name: "SecurityAgent",
            dependencies: [
                "DirectCore", "InternetMessage", "CryptographicMessageSyntax", "SMIME", "DirectTrust",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Tier 4: the queue: preparing, sending, retries, DSNs, MDN tracking.
        .target(
            name: "Delivery",
            dependencies: [
                "DirectCore", "InternetMessage", "SecurityAgent", "DirectTrust", "Storage",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tier 4: the mail core every edge calls: submit, accept, mailboxes, status, sign-in.
        .target(
            name: "MailService",
            dependencies: [
                "DirectCore", "InternetMessage", "SecurityAgent", "Storage", "Delivery",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tier 1: PKCS#12 (RFC 7292) files for moving a key and its chain; legacy ciphers to read old ones.
        .target(
            name: "PKCS12",
            dependencies: [
                "DirectCore", "CryptographicMessageSyntax",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Tier 2: issuing CA and end-entity certificates and CRLs in the Direct profile.
        .target(
            name: "CertificateAuthority",
            dependencies: [
                "DirectCore", "CryptographicMessageSyntax",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Tier 2: the Direct trust policy, path building (AIA), revocation (CRL).
        .target(
            name: "DirectTrust",
            dependencies: [
                "DirectCore", "CryptographicMessageSyntax",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Tier 5: HTTP(S) fetching for AIA, CRLs and trust bundles.
        .target(
            name: "HTTPFetch",
            dependencies: [
                "DirectCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Tier 3: the encrypted store: master key, key hierarchy, envelope encryption,
        // blind indexes, the audit chain, repositories over a SQL database port.
        .target(
            name: "Storage",
            dependencies: [
                "DirectCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Tier 5: the embedded SQLite database behind Storage's port.
        .target(name: "SQLiteStore", dependencies: ["Storage", "DirectCore", "CSQLite"]),
        // The system's SQLite library (3.35 or later: RETURNING, DROP COLUMN).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // Tier 5: the authoritative certificate DNS server (UDP and TCP) for the hosted domains.
        .target(
            name: "DNSServer",
            dependencies: [
                "DNSCore", "Storage", "DirectCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Tier 5: the SMTP listeners (MX and submission) over NIO, STARTTLS by NIOSSL.
        .target(
            name: "SMTPServer",
            dependencies: [
                "DirectCore", "SMTPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tier 5: the POP3 listeners (STLS and implicit TLS), on the SMTP listeners' TLS and session registry.
        .target(
            name: "POP3Server",
            dependencies: [
                "POP3Core", "SMTPCore", "SMTPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tier 5: the IMAP listeners (STARTTLS and implicit TLS), on the SMTP listeners' TLS and session registry.
        .target(
            name: "IMAPServer",
            dependencies: [
                "IMAPCore", "SMTPServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tier 5: the SMTP client (MX or a configured route, STARTTLS required by default, connection reuse).
        .target(
            name: "SMTPClient",
            dependencies: [
                "DirectCore", "SMTPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // Tier 5: the stub resolver (UDP, TCP fallback, CNAMEs, TTL cache, per-zone servers).
        .target(
            name: "DNSResolver",
            dependencies: [
                "DNSCore", "DirectCore", "DirectTrust",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Tier 5: the LDAP client for certificate discovery over NIO.
        .target(
            name: "LDAPClient",
            dependencies: [
                "LDAPCore", "DirectTrust", "DirectCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Tier 6: configuration and the one composition root that builds the services of `hisp serve`.
        .target(
            name: "HISPApp",
            dependencies: [
                "DirectCore", "CryptographicMessageSyntax", "DirectTrust", "Storage", "SecurityAgent", "Delivery", "MailService", "SMTPCore",
                "SMTPServer", "POP3Core", "POP3Server", "IMAPCore", "IMAPServer", "SMTPClient", "DNSCore", "DNSServer", "DNSResolver", "LDAPClient", "CAllocatorTuning", "OpenSSLKeys",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Tier 7: the command line (a library so tests can drive it in-process).
        .target(
            name: "HISPCommands",
            dependencies: [
                "DirectCore", "InternetMessage", "CryptographicMessageSyntax", "SMIME", "CertificateAuthority", "DirectTrust", "HTTPFetch", "PKCS12", "OpenSSLKeys",
                "Storage", "SQLiteStore", "DNSCore", "DNSServer", "DNSResolver", "LDAPClient", "HISPApp", "MailService", "SMTPClient", "SMTPCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // glibc allocator tuning for the server process (see Sources/hisp/main.swift).
        .target(name: "CAllocatorTuning"),
        .executableTarget(name: "hisp", dependencies: ["HISPCommands", "CAllocatorTuning"]),
        // The parsers that face the network and files, as fuzz targets (tiers 1 and 2 only).
        .target(name: "FuzzTargets", dependencies: ["CryptographicMessageSyntax", "DNSCore", "IMAPCore", "InternetMessage", "LDAPCore", "PKCS12", "POP3Core", "SMTPCore"]),
        // libFuzzer's driver over them (scripts/fuzz); without -DFUZZING it replays files.
        .executableTarget(name: "hisp-fuzz", dependencies: ["FuzzTargets"]),

        // Test support: temporary workspaces, processes, a test PKI. Never imported by product targets.
        .target(
            name: "HISPTesting",
            dependencies: [
                "CryptographicMessageSyntax", "Storage", "SQLiteStore",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Tests/HISPTesting"
        ),
        .testTarget(name: "DirectCoreTests", dependencies: ["DirectCore"]),
        .testTarget(name: "InternetMessageTests", dependencies: ["InternetMessage"]),
        .testTarget(
            name: "CryptographicMessageSyntaxTests",
            dependencies: [
                "CryptographicMessageSyntax", "HISPTesting",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .testTarget(
            name: "SMIMETests",
            dependencies: [
                "SMIME", "InternetMessage", "CryptographicMessageSyntax", "DirectTrust", "HISPTesting",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .testTarget(
            name: "CertificateAuthorityTests",
            dependencies: [
                "CertificateAuthority",
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .testTarget(
            name: "DirectTrustTests",
            dependencies: ["DirectTrust", "HISPTesting", .product(name: "X509", package: "swift-certificates")]
        ),
        .testTarget(name: "PKCS12Tests", dependencies: ["PKCS12", "HISPTesting", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "SMTPCoreTests", dependencies: ["SMTPCore"]),
        .testTarget(name: "POP3CoreTests", dependencies: ["POP3Core"]),
        .testTarget(name: "IMAPCoreTests", dependencies: ["IMAPCore"]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "HISPTesting"]),
        .testTarget(
            name: "SMTPServerTests",
            dependencies: [
                "SMTPServer", "SMTPClient", "SMTPCore", "HISPTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "DNSCoreTests", dependencies: ["DNSCore", "HISPTesting"]),
        .testTarget(name: "LDAPClientTests", dependencies: ["LDAPClient", "LDAPCore", "DirectTrust", "HISPTesting"]),
        .testTarget(name: "DNSResolverTests", dependencies: ["DNSResolver", "DNSCore", "HISPTesting"]),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "SQLiteStore", "HISPTesting", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "DeliveryTests",
            dependencies: [
                "Delivery", "MailService", "Storage", "SQLiteStore", "SecurityAgent", "DirectTrust", "DirectCore", "InternetMessage", "HISPTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]),
        .testTarget(
            name: "SecurityAgentTests",
            dependencies: [
                "SecurityAgent", "SMIME", "DirectTrust", "CertificateAuthority", "CryptographicMessageSyntax", "InternetMessage", "DirectCore",
                "HISPTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]),
        .testTarget(
            name: "MailServiceTests",
            dependencies: [
                "MailService", "Delivery", "Storage", "SQLiteStore", "SecurityAgent", "DirectTrust", "DirectCore", "InternetMessage", "HISPTesting",
                "CryptographicMessageSyntax", "SMIME", "HISPCommands", "CertificateAuthority",
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "OpenSSLKeysTests",
            dependencies: [
                "OpenSSLKeys", "CryptographicMessageSyntax",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "HISPCommandsTests", dependencies: ["HISPCommands", "HISPTesting", "hisp"]),
    ]
)
