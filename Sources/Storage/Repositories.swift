import Crypto
import DirectCore
import Foundation

/// Explicit limits on what the store accepts.
public enum StoreLimits {
    /// The largest message body stored (RFC 5321 allows servers to set their own limit).
    public static let maxMessageBytes = 64 * 1024 * 1024
    public static let maxCertificateBytes = 64 * 1024
    public static let maxPrivateKeyBytes = 16 * 1024
    public static let maxRecipients = 1000
    public static let maxHeaderFieldBytes = 16 * 1024
    /// Ranges in one UID set (an IMAP client's `1:4,7,9:12`).
    public static let maxUIDRanges = 1000
    /// Keywords on one message, and the bytes of each (RFC 9051 2.3.2: an atom).
    public static let maxKeywords = 64
    public static let maxKeywordBytes = 128
    /// Messages in one page of a listing.
    public static let maxPageSize = 500
}

// MARK: domains

extension HISPStore {
    public func addDomain(
        _ name: String, caCertificate: [UInt8], caPrivateKey: [UInt8], certificate: [UInt8], privateKey: [UInt8], dns: DomainDNS
    ) async throws -> DomainRecord {
        try checkSizes(certs: [caCertificate, certificate], keys: [caPrivateKey, privateKey])
        let id = Envelope.newID()
        let now = Date()
        try await database.transaction(write: true) { tx in
            let existing = try await tx.query("SELECT id FROM domains WHERE name = ?", .text(name))
            guard existing.isEmpty else { throw StoreError.exists("domain \(name)") }
            let rk = try await self.newRowKey(table: "domains", id: id, in: tx)
            try await tx.execute(
                """
                INSERT INTO domains (id, name, created, ca_cert, cert, kek_id, dek, ca_key_enc, key_enc, dns_host, dns_ipv4, dns_ipv6)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                .text(id), .text(name), .text(Timestamp.text(now)), .blob(caCertificate), .blob(certificate),
                .integer(rk.kekID), .blob(rk.wrapped), try rk.seal("ca_key_enc", caPrivateKey), try rk.seal("key_enc", privateKey),
                .text(dns.host), dns.ipv4.map { .text($0) } ?? .null, dns.ipv6.map { .text($0) } ?? .null)
            try await self.audit("domain.add", "domain \(name)", detail: "id \(id)", in: tx)
            try await self.bumpZoneSerial(in: tx)
        }
        return DomainRecord(id: id, name: name, created: now, caCertificate: caCertificate, certificate: certificate, dns: dns)
    }

    public func domains() async throws -> [DomainRecord] {
        try await database.transaction(write: false) { tx in
            try await tx.query("SELECT id, name, created, ca_cert, cert, dns_host, dns_ipv4, dns_ipv6 FROM domains ORDER BY name", []).map(Self.domainRecord)
        }
    }

    public func domain(_ name: String) async throws -> DomainRecord {
        try await database.transaction(write: false) { tx in
            try await self.domainRow(name, in: tx)
        }
    }

    func domainRow(_ name: String, in tx: any StoreTransaction) async throws -> DomainRecord {
        let rows = try await tx.query("SELECT id, name, created, ca_cert, cert, dns_host, dns_ipv4, dns_ipv6 FROM domains WHERE name = ?", .text(name))
        guard let row = rows.first else { throw StoreError.notFound("domain \(name)") }
        return try Self.domainRecord(row)
    }

    static func domainRecord(_ row: StoreRow) throws -> DomainRecord {
        DomainRecord(
            id: try row.text("id"), name: try row.text("name"), created: Timestamp.date(try row.text("created")),
            caCertificate: try row.blob("ca_cert"), certificate: try row.blob("cert"),
            dns: DomainDNS(host: try row.text("dns_host"), ipv4: row.optionalText("dns_ipv4"), ipv6: row.optionalText("dns_ipv6")))
    }

    /// Changes how a domain is published in DNS.
    public func setDomainDNS(_ name: String, _ dns: DomainDNS) async throws {
        try await database.transaction(write: true) { tx in
            let domain = try await self.domainRow(name, in: tx)
            try await tx.execute(
                "UPDATE domains SET dns_host = ?, dns_ipv4 = ?, dns_ipv6 = ? WHERE id = ?",
                .text(dns.host), dns.ipv4.map { .text($0) } ?? .null, dns.ipv6.map { .text($0) } ?? .null, .text(domain.id))
            try await self.audit("domain.dns", "domain \(name)", detail: "host \(dns.host)", in: tx)
            try await self.bumpZoneSerial(in: tx)
        }
    }

    /// The SOA serial of every hosted zone: raised whenever what DNS publishes changes.
    public func zoneSerial() async throws -> UInt32 {
        try await database.transaction(write: false) { tx in
            let rows = try await tx.query("SELECT value FROM meta WHERE name = 'zone_serial'")
            return rows.first?.optionalText("value").flatMap { UInt32($0) } ?? 1
        }
    }

    /// Raises the zone serial to the current time, or by one if that is not higher (RFC 1982 arithmetic is not needed before 2106).
    func bumpZoneSerial(in tx: any StoreTransaction) async throws {
        let rows = try await tx.query("SELECT value FROM meta WHERE name = 'zone_serial'")
        let old = rows.first?.optionalText("value").flatMap { UInt32($0) } ?? 0
        let now = UInt32(clamping: Int64(Date().timeIntervalSince1970))
        let next = max(now, old &+ 1)
        try await tx.execute(
            "INSERT INTO meta (name, value) VALUES ('zone_serial', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            .text(String(next)))
    }

    /// The address-bound certificates a domain publishes (as CERT records at local-part.domain).
    public func publishedCertificates(domain: String) async throws -> [(address: DirectAddress, certificate: [UInt8])] {
        try await addresses(domain: domain).map { ($0.address, $0.certificate) }
    }

    /// Removes a domain with no addresses left; its anchors and bundles go with it.
    public func removeDomain(_ name: String) async throws {
        try await database.transaction(write: true) { tx in
            let domain = try await self.domainRow(name, in: tx)
            let n = try await tx.query("SELECT COUNT(*) AS n FROM addresses WHERE domain_id = ?", .text(domain.id))
            let count = try n.first?.integer("n") ?? 0
            guard count == 0 else {
                throw StoreError.domainInUse(domain: name, addresses: Int(count))
            }
            try await tx.execute("DELETE FROM anchors WHERE domain = ?", .text(name))
            try await tx.execute("DELETE FROM bundles WHERE domain = ?", .text(name))
            try await tx.execute("DELETE FROM domains WHERE id = ?", .text(domain.id))
            try await self.audit("domain.remove", "domain \(name)", detail: "id \(domain.id)", in: tx)
            try await self.bumpZoneSerial(in: tx)
        }
    }

    func checkSizes(certs: [[UInt8]], keys: [[UInt8]]) throws {
        for c in certs where c.count > StoreLimits.maxCertificateBytes {
            throw StoreError.invalid("a certificate of \(c.count) bytes exceeds the limit of \(StoreLimits.maxCertificateBytes)")
        }
        for k in keys where k.count > StoreLimits.maxPrivateKeyBytes {
            throw StoreError.invalid("a private key of \(k.count) bytes exceeds the limit of \(StoreLimits.maxPrivateKeyBytes)")
        }
    }
}

// MARK: addresses

extension HISPStore {
    /// Adds a mailbox. `passwordHash` is a PHC-style string made by `PasswordHash`.
    public func addAddress(
        _ address: DirectAddress, certificate: [UInt8], privateKey: [UInt8], passwordHash: String?
    ) async throws -> AddressRecord {
        try checkSizes(certs: [certificate], keys: [privateKey])
        let id = Envelope.newID()
        let now = Date()
        let idx = blindIndex("address", address.description)
        let domainID = try await database.transaction(write: true) { tx in
            let domain = try await self.domainRow(address.domain, in: tx)
            let existing = try await tx.query("SELECT id FROM addresses WHERE address_index = ?", .blob(idx))
            guard existing.isEmpty else { throw StoreError.exists("address \(address)") }
            let rk = try await self.newRowKey(table: "addresses", id: id, in: tx)
            try await tx.execute(
                """
                INSERT INTO addresses (id, domain_id, address_index, created, kek_id, dek, address_enc, cert_enc, key_enc, password_enc)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                .text(id), .text(domain.id), .blob(idx), .text(Timestamp.text(now)), .integer(rk.kekID), .blob(rk.wrapped),
                try rk.seal("address_enc", text: address.description), try rk.seal("cert_enc", certificate),
                try rk.seal("key_enc", privateKey), try passwordHash.map { try rk.seal("password_enc", text: $0) } ?? .null)
            try await self.audit("address.add", "address \(id)", detail: "domain \(address.domain)", in: tx)
            try await self.createSpecialFolders(mailboxID: id, now: now, in: tx)
            try await self.bumpZoneSerial(in: tx)
            return domain.id
        }
        return AddressRecord(id: id, address: address, domainID: domainID, created: now, certificate: certificate,
                             hasPassword: passwordHash != nil)
    }

    public func addresses(domain: String? = nil) async throws -> [AddressRecord] {
        try await database.transaction(write: false) { tx in
            var sql = "SELECT a.* FROM addresses a"
            var binds: [StoreValue] = []
            if let domain {
                sql += " JOIN domains d ON d.id = a.domain_id WHERE d.name = ?"
                binds.append(.text(domain))
            }
            var out: [AddressRecord] = []
            for row in try await tx.query(sql, binds) {
                out.append(try await self.addressRecord(row, in: tx).0)
            }
            return out.sorted { $0.address.description < $1.address.description }
        }
    }

    /// Whether mail for `address` is taken here, in one read: its domain is hosted
    /// and the mailbox exists (an MX's RCPT check, for every recipient of every message).
    public func lookupMailbox(_ address: DirectAddress) async throws -> MailboxLookup {
        try await database.transaction(write: false) { tx in
            guard try await !tx.query("SELECT 1 FROM domains WHERE name = ?", .text(address.domain)).isEmpty else { return .notHosted }
            do {
                _ = try await self.addressRow(address, in: tx)
                return .exists
            } catch StoreError.notFound {
                return .noMailbox
            }
        }
    }

    /// Whether `domain` is hosted here (one indexed read).
    public func hostsDomain(_ domain: String) async throws -> Bool {
        try await database.transaction(write: false) { tx in
            try await !tx.query("SELECT 1 FROM domains WHERE name = ?", .text(domain.lowercased())).isEmpty
        }
    }

    public func address(_ address: DirectAddress) async throws -> AddressRecord {
        try await database.transaction(write: false) { tx in try await self.addressRow(address, in: tx).0 }
    }

    /// The mailbox row's id, for storing and finding its messages: the sealed
    /// address is opened and checked against the index, as `addressRow` does,
    /// but the certificate is not opened.
    func mailboxID(_ address: DirectAddress, in tx: any StoreTransaction) async throws -> String {
        let row = try await indexedAddressRow(address, columns: "id, kek_id, dek, address_enc", in: tx)
        let id = try row.text("id")
        let rk = try await rowKey(table: "addresses", id: id, row: row, in: tx)
        try Self.checkSealedAddress(DirectAddress(try rk.openText("address_enc", row)), of: id, is: address)
        return id
    }

    /// The address's row and its opened data key.
    func addressRow(_ address: DirectAddress, in tx: any StoreTransaction) async throws -> (AddressRecord, RowKey, StoreRow) {
        let row = try await indexedAddressRow(address, columns: "*", in: tx)
        let (record, rk) = try await addressRecord(row, in: tx)
        try Self.checkSealedAddress(record.address, of: record.id, is: address)
        return (record, rk, row)
    }

    /// The row the address's blind index finds.
    private func indexedAddressRow(_ address: DirectAddress, columns: String, in tx: any StoreTransaction) async throws -> StoreRow {
        let rows = try await tx.query("SELECT \(columns) FROM addresses WHERE address_index = ?",
                                      .blob(blindIndex("address", address.description)))
        guard let row = rows.first else { throw StoreError.notFound("address \(address)") }
        return row
    }

    /// The index matched; the sealed address must say the same (a row moved under another index fails here).
    private static func checkSealedAddress(_ sealed: DirectAddress?, of id: String, is address: DirectAddress) throws {
        guard let sealed, sealed.description.lowercased() == address.description.lowercased() else {
            throw StoreError.integrity("addresses \(id): the sealed address does not match its index")
        }
    }

    func addressRecord(_ row: StoreRow, in tx: any StoreTransaction) async throws -> (AddressRecord, RowKey) {
        let id = try row.text("id")
        let rk = try await rowKey(table: "addresses", id: id, row: row, in: tx)
        let text = try rk.openText("address_enc", row)
        guard let address = DirectAddress(text) else { throw StoreError.integrity("addresses \(id): unreadable address") }
        let record = AddressRecord(
            id: id, address: address, domainID: try row.text("domain_id"), created: Timestamp.date(try row.text("created")),
            certificate: try rk.open("cert_enc", row), hasPassword: row.optionalBlob("password_enc") != nil)
        return (record, rk)
    }

    /// Removes a mailbox. Refused while it holds messages unless `deleteMessages`.
    public func removeAddress(_ address: DirectAddress, deleteMessages: Bool) async throws -> Int {
        try await database.transaction(write: true) { tx in
            let (record, _, _) = try await self.addressRow(address, in: tx)
            let n = try await tx.query("SELECT COUNT(*) AS n FROM messages WHERE mailbox_id = ?", .text(record.id))
            let count = Int(try n.first?.integer("n") ?? 0)
            if count > 0 && !deleteMessages {
                throw StoreError.mailboxNotEmpty(mailbox: address.description, messages: count)
            }
            try await tx.execute("DELETE FROM messages WHERE mailbox_id = ?", .text(record.id))
            try await tx.execute("DELETE FROM expunged WHERE folder_id IN (SELECT id FROM folders WHERE mailbox_id = ?)", .text(record.id))
            try await tx.execute("DELETE FROM folders WHERE mailbox_id = ?", .text(record.id))
            try await tx.execute("DELETE FROM addresses WHERE id = ?", .text(record.id))
            try await self.audit("address.remove", "address \(record.id)", detail: "messages deleted: \(count)", in: tx)
            try await self.bumpZoneSerial(in: tx)
            return count
        }
    }

    /// Replaces an address's certificate and key (`hisp cert import`).
    public func replaceCredential(_ address: DirectAddress, certificate: [UInt8], privateKey: [UInt8]) async throws {
        try checkSizes(certs: [certificate], keys: [privateKey])
        try await database.transaction(write: true) { tx in
            let (record, rk, _) = try await self.addressRow(address, in: tx)
            try await tx.execute(
                "UPDATE addresses SET cert_enc = ?, key_enc = ? WHERE id = ?",
                try rk.seal("cert_enc", certificate), try rk.seal("key_enc", privateKey), .text(record.id))
            try await self.audit("cert.import", "address \(record.id)", in: tx)
            try await self.bumpZoneSerial(in: tx)
        }
    }

    /// The password hash of a mailbox, if it has one.
    public func passwordHash(_ address: DirectAddress) async throws -> String? {
        try await database.transaction(write: false) { tx in
            let (_, rk, row) = try await self.addressRow(address, in: tx)
            guard row.optionalBlob("password_enc") != nil else { return nil }
            return try rk.openText("password_enc", row)
        }
    }
}

// MARK: keys

extension HISPStore: KeyStore {
    public func credential(for owner: KeyOwner) async throws -> (certificate: [UInt8], privateKeyPKCS8: [UInt8]) {
        try await database.transaction(write: false) { tx in
            switch owner {
            case .domainCA(let name), .domain(let name):
                let rows = try await tx.query("SELECT * FROM domains WHERE name = ?", .text(name))
                guard let row = rows.first else { throw StoreError.notFound("domain \(name)") }
                let rk = try await self.rowKey(table: "domains", id: try row.text("id"), row: row, in: tx)
                if case .domainCA = owner { return (try row.blob("ca_cert"), try rk.open("ca_key_enc", row)) }
                return (try row.blob("cert"), try rk.open("key_enc", row))
            case .address(let address):
                let (record, rk, row) = try await self.addressRow(address, in: tx)
                return (record.certificate, try rk.open("key_enc", row))
            }
        }
    }

    /// Records that a private key left the store (`hisp cert export`).
    public func recordKeyExport(_ owner: KeyOwner, format: String) async throws {
        try await database.transaction(write: true) { tx in
            var object = owner.description
            if case .address(let a) = owner { object = "address \(try await self.addressRow(a, in: tx).0.id)" }
            try await self.audit("cert.export", object, detail: format, in: tx)
        }
    }
}

// MARK: anchors and bundles

extension HISPStore {
    public func addAnchor(domain: String, direction: AnchorDirection, certificate: [UInt8], subject: String) async throws -> AnchorRecord {
        try checkSizes(certs: [certificate], keys: [])
        let id = Envelope.newID()
        let now = Date()
        let fingerprint = SHA256.hash(data: certificate).map { String(format: "%02x", $0) }.joined()
        try await database.transaction(write: true) { tx in
            if domain != "*" { _ = try await self.domainRow(domain, in: tx) }
            let existing = try await tx.query("SELECT id FROM anchors WHERE domain = ? AND sha256 = ?", .text(domain), .text(fingerprint))
            guard existing.isEmpty else { throw StoreError.exists("anchor \(fingerprint.prefix(16)) for \(domain)") }
            try await tx.execute(
                "INSERT INTO anchors (id, domain, direction, sha256, subject, cert, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                .text(id), .text(domain), .text(direction.rawValue), .text(fingerprint), .text(subject), .blob(certificate),
                .text(Timestamp.text(now)))
            try await self.audit("anchor.add", "anchor \(id)", detail: "domain \(domain), \(direction.rawValue), sha256 \(fingerprint)", in: tx)
        }
        return AnchorRecord(id: id, domain: domain, direction: direction, fingerprint: fingerprint, subject: subject,
                            certificate: certificate, created: now)
    }

    public func anchors(domain: String? = nil) async throws -> [AnchorRecord] {
        try await database.transaction(write: false) { tx in
            let rows = domain == nil
                ? try await tx.query("SELECT * FROM anchors ORDER BY domain, created", [])
                : try await tx.query("SELECT * FROM anchors WHERE domain = ? ORDER BY created", .text(domain!))
            return try rows.map { row in
                AnchorRecord(
                    id: try row.text("id"), domain: try row.text("domain"),
                    direction: AnchorDirection(rawValue: try row.text("direction")) ?? .both,
                    fingerprint: try row.text("sha256"), subject: try row.text("subject"), certificate: try row.blob("cert"),
                    created: Timestamp.date(try row.text("created")))
            }
        }
    }

    /// Removes the anchors of `domain` whose id or SHA-256 fingerprint starts with `prefix` (at least 8 hex digits; exactly one must match).
    public func removeAnchor(domain: String, matching prefix: String) async throws -> AnchorRecord {
        let p = prefix.lowercased().replacingOccurrences(of: ":", with: "")
        guard p.count >= 8 else { throw StoreError.invalid("give at least 8 hex digits of the anchor's id or SHA-256") }
        let all = try await anchors(domain: domain)
        let matches = all.filter { $0.id.hasPrefix(p) || $0.fingerprint.hasPrefix(p) }
        guard matches.count == 1, let anchor = matches.first else {
            throw matches.isEmpty ? StoreError.notFound("anchor \(prefix) for \(domain)")
                : StoreError.conflict("\(prefix) matches \(matches.count) anchors of \(domain); give more digits")
        }
        try await database.transaction(write: true) { tx in
            try await tx.execute("DELETE FROM anchors WHERE id = ?", .text(anchor.id))
            try await self.audit("anchor.remove", "anchor \(anchor.id)", detail: "domain \(domain), sha256 \(anchor.fingerprint)", in: tx)
        }
        return anchor
    }

    public func addBundle(domain: String, direction: AnchorDirection, source: String, refreshSeconds: Int, signersPEM: String?) async throws -> BundleRecord {
        guard source.utf8.count <= 2048 else { throw StoreError.invalid("a bundle source is at most 2048 bytes") }
        let id = Envelope.newID()
        let now = Date()
        try await database.transaction(write: true) { tx in
            if domain != "*" { _ = try await self.domainRow(domain, in: tx) }
            let existing = try await tx.query("SELECT id FROM bundles WHERE domain = ? AND source = ?", .text(domain), .text(source))
            guard existing.isEmpty else { throw StoreError.exists("bundle \(source) for \(domain)") }
            try await tx.execute(
                "INSERT INTO bundles (id, domain, direction, source, refresh_seconds, signers_pem, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                .text(id), .text(domain), .text(direction.rawValue), .text(source), .integer(Int64(refreshSeconds)),
                signersPEM.map { .text($0) } ?? .null, .text(Timestamp.text(now)))
            try await self.audit("bundle.add", "bundle \(id)", detail: "domain \(domain), \(direction.rawValue), \(source)", in: tx)
        }
        return BundleRecord(id: id, domain: domain, direction: direction, source: source, refreshSeconds: refreshSeconds, signersPEM: signersPEM, created: now)
    }

    public func bundles(domain: String? = nil) async throws -> [BundleRecord] {
        try await database.transaction(write: false) { tx in
            let rows = domain == nil
                ? try await tx.query("SELECT * FROM bundles ORDER BY domain, created", [])
                : try await tx.query("SELECT * FROM bundles WHERE domain = ? ORDER BY created", .text(domain!))
            return try rows.map { row in
                BundleRecord(
                    id: try row.text("id"), domain: try row.text("domain"),
                    direction: AnchorDirection(rawValue: try row.text("direction")) ?? .both, source: try row.text("source"),
                    refreshSeconds: Int(try row.integer("refresh_seconds")), signersPEM: row.optionalText("signers_pem"), created: Timestamp.date(try row.text("created")))
            }
        }
    }

    public func removeBundle(domain: String, source: String) async throws {
        try await database.transaction(write: true) { tx in
            let rows = try await tx.query("SELECT id FROM bundles WHERE domain = ? AND (source = ? OR id = ?)",
                                          .text(domain), .text(source), .text(source))
            guard let id = try rows.first?.text("id") else { throw StoreError.notFound("bundle \(source) for \(domain)") }
            try await tx.execute("DELETE FROM bundles WHERE id = ?", .text(id))
            try await self.audit("bundle.remove", "bundle \(id)", detail: "domain \(domain)", in: tx)
        }
    }
}

/// What `lookupMailbox` found.
public enum MailboxLookup: Sendable, Equatable {
    case notHosted
    case noMailbox
    case exists
}
