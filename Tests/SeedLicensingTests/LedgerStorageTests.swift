import Foundation
import SeedLedger
import SeedLicensing
import Testing

/// The ledger's on-disk economy: a bounded WAL, idle and closing checkpoints.
@Suite struct LedgerWALTests {
    static func record(_ i: Int, bytes: Int) -> LicenseRecord {
        LicenseRecord(
            id: 0, key: LicenseKey(account: "acct", hostKey: "host-\(i)", type: .workstation), source: .upstream,
            bytes: [UInt8](repeating: UInt8(i % 251), count: bytes), issuedAt: Date(timeIntervalSince1970: 1_700_000_000),
            expiresAt: Date(timeIntervalSince1970: 1_800_000_000), upstreamReference: "up-\(i)",
            portalHMAC: String(repeating: "ab", count: 32), clientAddress: "10.0.0.1", revokedAt: nil)
    }

    static func fileSize(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    }

    @Test func walStaysBoundedAcrossManyCommits() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            let l = try Ledger.open(path: path, idleCheckpointSeconds: nil)
            // 160 commits of ~40 KB each: ~6 MB through the WAL, more than SQLite's default 4 MB bound.
            var high = 0
            for i in 0..<160 {
                _ = try l.storeLicense(Self.record(i, bytes: 40_000))
                high = max(high, l.walBytes())
            }
            // Bound: the autocheckpoint threshold plus one commit's frames (4 KiB pages + 24-byte headers).
            let frame = 4096 + 24
            let bound = (Ledger.walAutocheckpointPages + 16) * frame + 32
            #expect(high <= bound, "WAL reached \(high) bytes, bound \(bound)")
            #expect(high > 0)
            #expect(l.checkpointStats.walBytesHighWater == high)
            #expect(try l.licenses(hostKey: nil).count == 160)
            #expect(try l.integrityCheck() == "ok")
        }
    }

    @Test func explicitCheckpointEmptiesTheWALAndKeepsTheData() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            let l = try Ledger.open(path: path, idleCheckpointSeconds: nil)
            for i in 0..<50 { try l.noteHostSeen(key: "h\(i)", alias: nil, address: "10.0.0.\(i)", at: Date()) }
            #expect(l.walBytes() > 0)
            let c = try #require(try l.checkpoint())
            #expect(c.walBytesBefore > 0)
            #expect(c.walBytesAfter == 0)
            #expect(l.walBytes() == 0)
            #expect(c.seconds >= 0 && c.seconds < 5)
            #expect(l.checkpointStats.count == 1)
            #expect(try l.hosts().count == 50)
            // Writes after a truncate go on in a fresh WAL.
            try l.noteHostSeen(key: "h50", alias: nil, address: nil, at: Date())
            #expect(l.walBytes() > 0)
            #expect(try Ledger.open(path: path, readOnly: true).hosts().count == 51)
        }
    }

    @Test func idleLedgerTruncatesItsWAL() async throws {
        let dir = NSTemporaryDirectory() + "seedmirror-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let l = try Ledger.open(path: dir + "/ledger.sqlite", idleCheckpointSeconds: 0.05)
        for i in 0..<20 { _ = try l.storeLicense(Self.record(i, bytes: 1000)) }
        #expect(l.walBytes() > 0)
        // The timer fires 50 ms after the last write; allow a loaded machine 10 s.
        let deadline = Date().addingTimeInterval(10)
        while l.checkpointStats.idleCount == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(l.checkpointStats.idleCount == 1)
        #expect(l.walBytes() == 0)
        #expect(try l.licenses(hostKey: nil).count == 20)
    }

    @Test func readsDoNotArmTheIdleCheckpoint() throws {
        try withTemporaryDirectorySync { dir in
            let l = try Ledger.open(path: dir + "/ledger.sqlite", idleCheckpointSeconds: nil)
            _ = try l.hosts()
            _ = try l.licenses(hostKey: nil)
            #expect(l.checkpointStats.walBytesHighWater == 0)
            try l.noteHostSeen(key: "h", alias: nil, address: nil, at: Date())
            #expect(l.checkpointStats.walBytesHighWater > 0)
        }
    }

    @Test func closeCheckpointsRemovesTheWALAndRefusesLaterCalls() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            let l = try Ledger.open(path: path, idleCheckpointSeconds: nil)
            for i in 0..<10 { _ = try l.storeLicense(Self.record(i, bytes: 1000)) }
            #expect(Self.fileSize(path + "-wal") ?? 0 > 0)
            try l.close()
            #expect((Self.fileSize(path + "-wal") ?? 0) == 0)
            #expect(l.checkpointStats.count == 1)
            #expect {
                _ = try l.hosts()
            } throws: { e in
                "\(e)".contains("the ledger is closed")
            }
            try l.close()  // idempotent
            #expect(try Ledger.open(path: path, readOnly: true).licenses(hostKey: nil).count == 10)
        }
    }
}

/// Schema 1 files (written before the storage migration) upgrade in place and stay readable.
@Suite struct LedgerMigrationTests {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    /// A schema-1 ledger with a host (and alias), an issued license, a pending and an unknown intent.
    static func makeSchema1(_ path: String) throws -> (license: LicenseRecord, pending: Int64) {
        let old = try Ledger.openForTests(path: path, migratingTo: 1)
        #expect(try old.storedSchemaVersion() == 1)
        #expect(try old.schemaObjectsForTests().contains("index sqlite_autoindex_hosts_1"))
        #expect(try old.schemaObjectsForTests().contains("index intents_by_state"))
        try old.noteHostSeen(key: "ws-01", alias: "WS-01.corp", address: "10.1.1.1", at: t0)
        try old.noteHostSeen(key: "ws-02", alias: nil, address: nil, at: t0)
        let key = LicenseKey(account: "acct", hostKey: "ws-01", type: .workstation)
        let intent = try old.beginIntent(key, at: t0)
        let stored = try old.completeIntent(
            intent, license: LedgerWALTests.record(1, bytes: 900).with(key: key), tokenName: "tok", at: t0)
        let unknown = try old.beginIntent(LicenseKey(account: "acct", hostKey: "ws-02", type: .server), at: t0)
        _ = try old.markPendingIntentsUnknown(at: t0)
        #expect(try old.intent(unknown)?.state == .unknown)
        let pending = try old.beginIntent(LicenseKey(account: "acct", hostKey: "ws-03", type: .workstation), at: t0)
        // The offline pool as schema 1 kept it: a served entry still held its bytes.
        for host in ["ws-07", "ws-08"] {
            try old.importPoolLicense(
                PoolLicense(
                    hostKey: host, type: .workstation, bytes: [UInt8](repeating: 7, count: 1000), importedAt: t0,
                    expiresAt: t0 + 86400, sourceName: "batch.zip"))
        }
        try old.executeForTests("UPDATE pool SET used_at = 1700000100 WHERE host_key = 'ws-07'")
        try old.close()
        return (stored, pending)
    }

    @Test func schema1LedgerIsMigratedAndKeepsEverything() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            let (license, pending) = try Self.makeSchema1(path)
            let l = try Ledger.open(path: path, idleCheckpointSeconds: nil)
            #expect(try l.storedSchemaVersion() == Ledger.schemaVersion)
            let objects = try l.schemaObjectsForTests()
            #expect(objects.contains("table hosts without-rowid"))
            #expect(!objects.contains("index sqlite_autoindex_hosts_1"))
            #expect(!objects.contains("table hosts_v2"))
            #expect(objects.contains("index intents_unsettled"))
            #expect(!objects.contains("index intents_by_state"))
            #expect(try l.integrityCheck() == "ok")
            // The migration's VACUUM left no free pages behind and its WAL empty.
            #expect(try l.freePageCount() == 0)
            #expect(l.walBytes() == 0)
            let hosts = try l.hosts()
            #expect(hosts.map(\.key) == ["ws-01", "ws-02"])
            #expect(hosts[0].aliases == ["WS-01.corp"])
            #expect(hosts[0].firstAddress == "10.1.1.1")
            #expect(hosts[0].firstSeen == Self.t0)
            let licenses = try l.licenses(hostKey: "ws-01")
            #expect(licenses.count == 1)
            #expect(licenses.first?.bytes == license.bytes)
            #expect(licenses.first?.portalHMAC == license.portalHMAC)
            #expect(try l.intents(in: [.unknown]).map(\.key.hostKey) == ["ws-02"])
            #expect(try l.intents(in: [.pending]).map(\.id) == [pending])
            #expect(try l.intents(in: Set(IntentState.allCases)).count == 3)
            // The crash recovery queries work on the new index.
            #expect(try l.markPendingIntentsUnknown(at: Self.t0).map(\.id) == [pending])
            #expect(try l.intents(in: [.unknown, .pending]).count == 2)
            #expect(try l.resolveIntent(pending, detail: "checked", at: Self.t0)?.state == .resolved)
            // The served pool entry lost its copy of the bytes; the waiting one kept them.
            let pool = try l.poolLicenses()
            #expect(pool.map(\.hostKey) == ["ws-07", "ws-08"])
            #expect(pool[0].bytes.isEmpty)
            #expect(pool[1].bytes == [UInt8](repeating: 7, count: 1000))
            #expect(try l.poolLicense(hostKey: "ws-07", type: .workstation) == nil)
            // Writes go on after the migration.
            try l.noteHostSeen(key: "ws-01", alias: "ws-01-b", address: "10.1.1.2", at: Self.t0 + 60)
            let h = try #require(try l.hosts().first)
            #expect(h.aliases == ["WS-01.corp", "ws-01-b"])
            #expect(h.lastAddress == "10.1.1.2")
            #expect(h.firstAddress == "10.1.1.1")
        }
    }

    @Test func schema1LedgerIsReadableReadOnlyWithoutMigrating() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            _ = try Self.makeSchema1(path)
            let r = try Ledger.open(path: path, readOnly: true)
            #expect(try r.storedSchemaVersion() == 1)
            #expect(try r.hosts().count == 2)
            #expect(try r.licenses(hostKey: nil).count == 1)
            #expect(try r.intents(in: [.unknown, .pending]).count == 2)
        }
    }

    @Test func servedPoolLicenseKeepsItsBytesOnlyInItsLicenseRow() throws {
        try withTemporaryDirectorySync { dir in
            let l = try Ledger.open(path: dir + "/ledger.sqlite", idleCheckpointSeconds: nil)
            let bytes = [UInt8](repeating: 9, count: 1200)
            try l.importPoolLicense(
                PoolLicense(
                    hostKey: "ws-09", type: .server, bytes: bytes, importedAt: Self.t0, expiresAt: Self.t0 + 86400,
                    sourceName: "b.zip"))
            #expect(try l.poolLicense(hostKey: "ws-09", type: .server)?.bytes == bytes)
            var r = LedgerWALTests.record(9, bytes: 0).with(
                key: LicenseKey(account: "acct", hostKey: "ws-09", type: .server))
            r.bytes = bytes
            r.source = .pool
            _ = try l.storeLicense(r)
            try l.markPoolLicenseUsed(hostKey: "ws-09", type: .server, at: Self.t0)
            #expect(try l.poolLicense(hostKey: "ws-09", type: .server) == nil)
            #expect(try l.poolLicenses().first?.bytes == [])
            #expect(try l.licenses(hostKey: "ws-09").first?.bytes == bytes)
            // A re-import makes it servable again, with its bytes.
            try l.importPoolLicense(
                PoolLicense(
                    hostKey: "ws-09", type: .server, bytes: bytes, importedAt: Self.t0, expiresAt: Self.t0 + 86400,
                    sourceName: "c.zip"))
            #expect(try l.poolLicense(hostKey: "ws-09", type: .server)?.bytes == bytes)
        }
    }

    @Test func freshLedgerHasTheCompactLayout() throws {
        try withTemporaryDirectorySync { dir in
            let l = try Ledger.open(path: dir + "/ledger.sqlite", idleCheckpointSeconds: nil)
            let objects = try l.schemaObjectsForTests()
            #expect(objects.contains("table hosts without-rowid"))
            #expect(objects.contains("index intents_unsettled"))
            #expect(!objects.contains { $0.hasPrefix("index sqlite_autoindex_hosts") })
        }
    }
}

extension LicenseRecord {
    func with(key: LicenseKey) -> LicenseRecord {
        var r = self
        r.key = key
        return r
    }
}
