public import Foundation
import Glibc
public import SeedLicensing

/// The SQLite ledger behind the LicenseDesk: hosts, licenses, intents and outcomes, quota counters,
/// offline pool, pending hosts and a small `meta` table (the audit chain head). See docs/design.md.
///
/// WAL, `synchronous=FULL` (a committed intent survives power loss), busy timeout 5 s. The WAL stays small:
/// SQLite checkpoints it every `walAutocheckpointPages` pages, a reset WAL is cut back to
/// `journalSizeLimitBytes`, and once the ledger has been idle for `idleCheckpointSeconds` after a write
/// (and on `close()`) a TRUNCATE checkpoint empties it. Checkpoints never skip an fsync. One process owns
/// a ledger at a time (an exclusive `flock` on `PATH.lock`); a read-only open skips the lock. Calls are
/// serialized by a lock and block the caller: call from a worker or the desk, never an event loop.
public final class Ledger: LicenseLedger, @unchecked Sendable {
    /// The schema this build writes. Migrations take older files up to it.
    public static let schemaVersion = 2
    /// The oldest schema this build can read without migrating it (a read-only open does not migrate):
    /// schema 2 changed only storage (a WITHOUT ROWID hosts table, a partial intents index), not columns.
    public static let oldestReadableSchema = 1

    /// SQLite's automatic (PASSIVE) checkpoint runs once the WAL holds this many pages (4 KiB each):
    /// 512 KiB instead of SQLite's 4 MiB default (a checkpoint per ~100 license issues: one more fsync).
    public static let walAutocheckpointPages = 128
    /// A WAL that a checkpoint reset is truncated to at most this size (SQLite keeps it otherwise).
    public static let journalSizeLimitBytes = 512 << 10
    /// Default quiet time after the last write before the idle TRUNCATE checkpoint.
    public static let defaultIdleCheckpointSeconds = 2.0

    private let db: Database
    private let lock = NSLock()
    private let lockFD: Int32
    public let path: String
    public let readOnly: Bool
    private let idleCheckpointSeconds: Double?
    // Guarded by `lock`.
    private var lastWriteNanos: UInt64 = 0
    private var idleCheckpointScheduled = false
    private var closed = false
    private var stats = LedgerCheckpointStats()
    private static let checkpointQueue = DispatchQueue(label: "seed-ledger-checkpoint", qos: .utility)

    /// Opens (creating when absent, unless read-only) and migrates a ledger. Fails with one sentence:
    /// "locked by another process", "not a SeedMirror ledger or corrupt: …", or "written by a newer SeedMirror".
    ///
    /// `idleCheckpointSeconds`: quiet time after a write before the WAL is checkpointed and truncated (nil:
    /// never on a timer; `close()` and SQLite's own checkpoints still run). Ignored when read-only.
    public static func open(
        path: String, readOnly: Bool = false, idleCheckpointSeconds: Double? = Ledger.defaultIdleCheckpointSeconds
    ) throws(LedgerError) -> Ledger {
        try open(path: path, readOnly: readOnly, idleCheckpointSeconds: idleCheckpointSeconds, schema: schemaVersion)
    }

    /// Test seam: opens read-write and migrates only up to `schema` (≤ `schemaVersion`), as an older
    /// SeedMirror would have left the file: tests upgrade such files.
    public static func openForTests(path: String, migratingTo schema: Int) throws(LedgerError) -> Ledger {
        try open(path: path, readOnly: false, idleCheckpointSeconds: nil, schema: min(schema, schemaVersion))
    }

    private static func open(path: String, readOnly: Bool, idleCheckpointSeconds: Double?, schema: Int)
        throws(LedgerError) -> Ledger
    {
        var fd: Int32 = -1
        if !readOnly {
            fd = Glibc.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw LedgerError(
                    .io, path: path, "cannot open lock file \(path).lock: \(String(cString: strerror(errno)))")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                Glibc.close(fd)
                if e == EWOULDBLOCK { throw LedgerError(.locked, path: path, "") }
                throw LedgerError(.io, path: path, "cannot lock \(path).lock: \(String(cString: strerror(e)))")
            }
            // The ledger holds license bytes: owner-only. SQLite gives its -wal and -shm files the database
            // file's mode, so creating it 0600 (and tightening an older, wider file) covers all three.
            let created = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if created >= 0 { Glibc.close(created) }
            for file in [path, path + "-wal", path + "-shm"] {
                var st = stat()
                if stat(file, &st) == 0, st.st_mode & 0o077 != 0 { _ = chmod(file, 0o600) }
            }
        } else if !FileManager.default.fileExists(atPath: path) {
            throw LedgerError(.notFound, path: path, "no ledger at this path")
        }
        let db: Database
        do {
            db = try Database(path: path, readOnly: readOnly)
        } catch {
            if fd >= 0 { Glibc.close(fd) }
            throw error
        }
        // From here the Ledger owns the lock descriptor: its deinit closes it, also when the schema step
        // throws. Closing it here as well closed the number twice, and in between another thread's newly
        // opened file (another ledger's database, say) could have been given that number.
        let ledger = Ledger(
            db: db, lockFD: fd, path: path, readOnly: readOnly,
            idleCheckpointSeconds: readOnly ? nil : idleCheckpointSeconds)
        try ledger.prepareSchema(target: schema)
        return ledger
    }

    private init(db: Database, lockFD: Int32, path: String, readOnly: Bool, idleCheckpointSeconds: Double?) {
        self.db = db
        self.lockFD = lockFD
        self.path = path
        self.readOnly = readOnly
        self.idleCheckpointSeconds = idleCheckpointSeconds
    }

    deinit {
        // Closing the descriptor releases the flock.
        if lockFD >= 0 { Glibc.close(lockFD) }
    }

    private func locked<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw LedgerError(.io, path: path, "the ledger is closed") }
        let before = db.totalChanges
        defer { if db.totalChanges != before { noteWriteLocked() } }
        return try body()
    }

    // MARK: - WAL checkpoints

    private static func uptimeNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// After a write: (re)arm the idle checkpoint. Caller holds `lock`.
    private func noteWriteLocked() {
        stats.walBytesHighWater = max(stats.walBytesHighWater, walBytes())
        guard let delay = idleCheckpointSeconds else { return }
        lastWriteNanos = Self.uptimeNanos()
        if !idleCheckpointScheduled {
            idleCheckpointScheduled = true
            scheduleIdleCheck(after: delay)
        }
    }

    private func scheduleIdleCheck(after seconds: Double) {
        Self.checkpointQueue.asyncAfter(deadline: .now() + max(seconds, 0.001)) { [weak self] in
            self?.idleCheck()
        }
    }

    /// Runs on the checkpoint queue: checkpoints when no write came for the idle time, else waits on.
    private func idleCheck() {
        guard let delay = idleCheckpointSeconds else { return }
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        let quiet = Double(Self.uptimeNanos() &- lastWriteNanos) / 1e9
        if quiet < delay {
            scheduleIdleCheck(after: delay - quiet)
            return
        }
        idleCheckpointScheduled = false
        // Request threads may be waiting on `lock`: a busy database (another process reading) is left for
        // the next idle period rather than waited for.
        _ = try? checkpointLocked(busyTimeoutMilliseconds: 50, idle: true)
    }

    /// Caller holds `lock`. Copies the WAL into the database (fsynced, as every checkpoint under
    /// `synchronous=FULL`) and truncates it to zero bytes; nil when another connection kept it busy.
    private func checkpointLocked(busyTimeoutMilliseconds: Int32, idle: Bool) throws(LedgerError) -> LedgerCheckpoint?
    {
        let walBefore = walBytes()
        let t0 = Self.uptimeNanos()
        db.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
        defer { db.setBusyTimeout(milliseconds: 5000) }
        guard try db.checkpointTruncate() != nil else {
            stats.busy += 1
            return nil
        }
        let r = LedgerCheckpoint(
            walBytesBefore: walBefore, walBytesAfter: walBytes(), seconds: Double(Self.uptimeNanos() &- t0) / 1e9)
        stats.count += 1
        if idle { stats.idleCount += 1 }
        stats.totalSeconds += r.seconds
        stats.maxSeconds = max(stats.maxSeconds, r.seconds)
        return r
    }

    /// Bytes of the `-wal` file now (0 when absent).
    public func walBytes() -> Int {
        var st = stat()
        return stat(path + "-wal", &st) == 0 ? Int(st.st_size) : 0
    }

    /// Checkpoints now and truncates the WAL (what the idle timer does). Nil when another process's
    /// connection kept the WAL busy for `busyTimeoutMilliseconds`. A read-only ledger has nothing to do.
    @discardableResult
    public func checkpoint(busyTimeoutMilliseconds: Int32 = 5000) throws(LedgerError) -> LedgerCheckpoint? {
        guard !readOnly else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return nil }
        return try checkpointLocked(busyTimeoutMilliseconds: busyTimeoutMilliseconds, idle: false)
    }

    /// What the checkpoints of this ledger did since it opened.
    public var checkpointStats: LedgerCheckpointStats {
        lock.lock()
        defer { lock.unlock() }
        return stats
    }

    /// Clean close: a final TRUNCATE checkpoint (the WAL ends empty) and the database connection closes
    /// (SQLite then removes the `-wal` and `-shm` files). Later calls fail with "the ledger is closed".
    /// The process lock is released when the Ledger is freed.
    public func close() throws(LedgerError) {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        if !readOnly { _ = try checkpointLocked(busyTimeoutMilliseconds: 5000, idle: false) }
        closed = true
        db.close()
    }

    // MARK: - Schema

    /// Index i takes schema i to i+1.
    private static let migrations: [String] = [
        """
        CREATE TABLE schema_version(version INTEGER NOT NULL);
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE hosts(key TEXT PRIMARY KEY, aliases TEXT NOT NULL DEFAULT '', first_address TEXT,
          last_address TEXT, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
        CREATE TABLE licenses(id INTEGER PRIMARY KEY, host_key TEXT NOT NULL, type TEXT NOT NULL,
          account TEXT NOT NULL, source TEXT NOT NULL, bytes BLOB NOT NULL, issued_at REAL NOT NULL,
          expires_at REAL NOT NULL, upstream_ref TEXT, portal_hmac TEXT NOT NULL, client_address TEXT,
          revoked_at REAL, intent_id INTEGER);
        CREATE INDEX licenses_by_key ON licenses(host_key, account, type);
        CREATE TABLE intents(id INTEGER PRIMARY KEY, account TEXT NOT NULL, host_key TEXT NOT NULL,
          type TEXT NOT NULL, started_at REAL NOT NULL, state TEXT NOT NULL, detail TEXT, settled_at REAL);
        CREATE INDEX intents_by_state ON intents(state);
        CREATE TABLE quota_accounts(account TEXT PRIMARY KEY, used INTEGER NOT NULL DEFAULT 0,
          learned_total INTEGER, learned_at REAL);
        CREATE TABLE quota_tokens(token_name TEXT PRIMARY KEY, used INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE pool(host_key TEXT NOT NULL, type TEXT NOT NULL, bytes BLOB NOT NULL, imported_at REAL NOT NULL,
          expires_at REAL NOT NULL, source_name TEXT NOT NULL, used_at REAL, PRIMARY KEY(host_key, type));
        CREATE TABLE pending_hosts(host_key TEXT NOT NULL, type TEXT NOT NULL, first_asked REAL NOT NULL,
          last_asked REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(host_key, type));
        INSERT INTO schema_version(version) VALUES (0);
        """,
        // 1 → 2: storage only, same columns. `hosts` keyed by its text key without a rowid (the rowid table
        // kept every key twice: in the row and in its primary-key index), and the intents index covers only
        // unsettled intents (the few the startup and admin queries look for) instead of every issued one.
        // A served pool license's bytes live on in its `licenses` row: the used pool row drops its copy.
        """
        CREATE TABLE hosts_v2(key TEXT PRIMARY KEY, aliases TEXT NOT NULL DEFAULT '', first_address TEXT,
          last_address TEXT, first_seen REAL NOT NULL, last_seen REAL NOT NULL) WITHOUT ROWID;
        INSERT INTO hosts_v2(key, aliases, first_address, last_address, first_seen, last_seen)
          SELECT key, aliases, first_address, last_address, first_seen, last_seen FROM hosts;
        DROP TABLE hosts;
        ALTER TABLE hosts_v2 RENAME TO hosts;
        DROP INDEX intents_by_state;
        CREATE INDEX intents_unsettled ON intents(state) WHERE \(Ledger.unsettled);
        UPDATE pool SET bytes = X'' WHERE used_at IS NOT NULL;
        """,
    ]

    /// The partial index's condition; a query that repeats it verbatim can use `intents_unsettled`.
    static let unsettled = "state IN ('pending', 'unknown')"

    private func prepareSchema(target: Int) throws(LedgerError) {
        try db.execute("PRAGMA busy_timeout = 5000")
        // The first read of the file: a non-database or damaged header fails here (SQLITE_NOTADB).
        let tables = Set(
            try db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").rows { $0.text(0) ?? "" })
        var version = 0
        if !tables.isEmpty {
            guard tables.contains("schema_version") else {
                throw LedgerError(.corrupt, path: path, "it has tables but no schema_version table")
            }
            guard let v = try db.prepare("SELECT version FROM schema_version").rows({ Int($0.int(0)) }).first else {
                throw LedgerError(.corrupt, path: path, "schema_version is empty")
            }
            version = v
        }
        if version > Ledger.schemaVersion {
            throw LedgerError(.newerSchema(found: version, supported: Ledger.schemaVersion), path: path, "")
        }
        if readOnly {
            guard version >= Ledger.oldestReadableSchema else {
                throw LedgerError(.io, path: path, "schema \(version) needs a migration; open it read-write first")
            }
            return
        }
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("PRAGMA synchronous = FULL")
        try db.execute("PRAGMA wal_autocheckpoint = \(Ledger.walAutocheckpointPages)")
        try db.execute("PRAGMA journal_size_limit = \(Ledger.journalSizeLimitBytes)")
        let migrated = version < target
        while version < target {
            let sql = Ledger.migrations[version]
            let next = version + 1
            try db.transaction { () throws(LedgerError) in
                try db.execute(sql)
                try db.execute("UPDATE schema_version SET version = \(next)")
            }
            version = next
        }
        if migrated {
            // Rebuilt tables leave their old pages free inside the file; a one-time VACUUM gives them back
            // (a rewrite through the WAL: seconds for a ledger of 100,000 hosts), and the TRUNCATE
            // checkpoint then empties the WAL it filled.
            try db.execute("VACUUM")
            _ = try db.checkpointTruncate()
        }
    }

    /// Pages inside the file that hold nothing (SQLite reuses them before growing the file).
    public func freePageCount() throws(LedgerError) -> Int {
        try locked { () throws(LedgerError) in
            Int(try db.prepare("PRAGMA freelist_count").rows { $0.int(0) }.first ?? 0)
        }
    }

    /// Runs `PRAGMA integrity_check`; "ok" when the file is sound.
    public func integrityCheck() throws(LedgerError) -> String {
        try locked { () throws(LedgerError) in
            try db.prepare("PRAGMA integrity_check").rows { $0.text(0) ?? "" }.joined(separator: "\n")
        }
    }

    /// Test and migration seam: the stored schema version.
    public func storedSchemaVersion() throws(LedgerError) -> Int {
        try locked { () throws(LedgerError) in
            Int(try db.prepare("SELECT version FROM schema_version").rows { $0.int(0) }.first ?? 0)
        }
    }

    /// Test seam: the file's tables and indexes (SQLite's automatic ones included) as `type name` lines, sorted.
    public func schemaObjectsForTests() throws(LedgerError) -> [String] {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "SELECT type || ' ' || name || IIF(sql LIKE '%WITHOUT ROWID%', ' without-rowid', '') FROM sqlite_master ORDER BY 1"
            ).rows { $0.text(0) ?? "" }
        }
    }

    /// Test seam: runs SQL as is (to leave a file as an older SeedMirror would have written it).
    public func executeForTests(_ sql: String) throws(LedgerError) {
        try locked { () throws(LedgerError) in try db.execute(sql) }
    }

    /// Test seam: pretend a newer SeedMirror wrote this file.
    public func executeForTestsSetVersion(_ version: Int) throws(LedgerError) {
        try locked { () throws(LedgerError) in try db.execute("UPDATE schema_version SET version = \(version)") }
    }

    /// Test seam: make this file look like some other application's SQLite database.
    public func executeForTestsDropSchemaVersion() throws(LedgerError) {
        try locked { () throws(LedgerError) in try db.execute("DROP TABLE schema_version") }
    }

    // MARK: - Meta

    public func writeMeta(_ key: String, _ value: String) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            )
            .run([.text(key), .text(value)])
        }
    }

    /// Stores a meta value; false when the write failed (use `writeMeta` to see why).
    @discardableResult
    public func setMeta(_ key: String, _ value: String) -> Bool {
        do { try writeMeta(key, value) } catch { return false }
        return true
    }

    /// Reads a meta value, surfacing a read failure (the audit head store wants to know).
    public func readMeta(_ key: String) throws(LedgerError) -> String? {
        try locked { () throws(LedgerError) in
            try db.prepare("SELECT value FROM meta WHERE key = ?").rows([.text(key)]) { $0.text(0) }.first ?? nil
        }
    }

    public func meta(_ key: String) -> String? {
        try? locked { () throws(LedgerError) in
            try db.prepare("SELECT value FROM meta WHERE key = ?").rows([.text(key)]) { $0.text(0) }.first ?? nil
        }
    }

    // MARK: - Licenses

    private static let licenseColumns =
        "id, host_key, type, account, source, bytes, issued_at, expires_at, upstream_ref, portal_hmac, client_address, revoked_at"

    private static func license(_ s: Statement) -> LicenseRecord {
        LicenseRecord(
            id: s.int(0),
            key: LicenseKey(
                account: s.text(3) ?? "", hostKey: s.text(1) ?? "",
                type: LicenseType(word: s.text(2) ?? "") ?? .workstation),
            source: IssuedLicense.Source(rawValue: s.text(4) ?? "") ?? .upstream, bytes: s.blob(5),
            issuedAt: s.date(6) ?? .distantPast, expiresAt: s.date(7) ?? .distantPast, upstreamReference: s.text(8),
            portalHMAC: s.text(9) ?? "", clientAddress: s.text(10), revokedAt: s.date(11))
    }

    public func activeLicenses(now: Date) throws(LedgerError) -> [LicenseRecord] {
        try locked { () throws(LedgerError) in
            // Latest unrevoked license per key.
            try db.prepare(
                """
                SELECT \(Ledger.licenseColumns) FROM licenses l WHERE revoked_at IS NULL AND expires_at > ?
                AND id = (SELECT MAX(id) FROM licenses m WHERE m.host_key = l.host_key AND m.account = l.account
                          AND m.type = l.type AND m.revoked_at IS NULL)
                """
            ).rows([.real(now.timeIntervalSince1970)], Ledger.license)
        }
    }

    public func licenses(hostKey: String?) throws(LedgerError) -> [LicenseRecord] {
        try locked { () throws(LedgerError) in
            if let hostKey {
                return try db.prepare("SELECT \(Ledger.licenseColumns) FROM licenses WHERE host_key = ? ORDER BY id")
                    .rows([.text(hostKey)], Ledger.license)
            }
            return try db.prepare("SELECT \(Ledger.licenseColumns) FROM licenses ORDER BY id").rows([], Ledger.license)
        }
    }

    public func licensedHostKeys() throws(LedgerError) -> [String] {
        try locked { () throws(LedgerError) in
            try db.prepare("SELECT DISTINCT host_key FROM licenses").rows { $0.text(0) ?? "" }
        }
    }

    private func insertLicense(_ l: LicenseRecord, intent: Int64?) throws(LedgerError) -> LicenseRecord {
        try db.prepare(
            """
            INSERT INTO licenses(host_key, type, account, source, bytes, issued_at, expires_at, upstream_ref,
              portal_hmac, client_address, revoked_at, intent_id) VALUES (?,?,?,?,?,?,?,?,?,?,NULL,?)
            """
        ).run([
            .text(l.key.hostKey), .text(l.key.type.rawValue), .text(l.key.account), .text(l.source.rawValue),
            .blob(l.bytes), .real(l.issuedAt.timeIntervalSince1970), .real(l.expiresAt.timeIntervalSince1970),
            l.upstreamReference.map { .text($0) } ?? .null, .text(l.portalHMAC),
            l.clientAddress.map { .text($0) } ?? .null,
            intent.map { .int($0) } ?? .null,
        ])
        var out = l
        out.id = db.lastInsertRowID
        return out
    }

    public func storeLicense(_ license: LicenseRecord) throws(LedgerError) -> LicenseRecord {
        try locked { () throws(LedgerError) in try insertLicense(license, intent: nil) }
    }

    public func revokeLicenses(hostKey: String, at: Date) throws(LedgerError) -> Int {
        try locked { () throws(LedgerError) in
            try db.prepare("UPDATE licenses SET revoked_at = ? WHERE host_key = ? AND revoked_at IS NULL")
                .run([.real(at.timeIntervalSince1970), .text(hostKey)])
            return db.changes
        }
    }

    // MARK: - Hosts

    public func hosts() throws(LedgerError) -> [HostRecord] {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "SELECT key, aliases, first_address, last_address, first_seen, last_seen FROM hosts ORDER BY key"
            )
            .rows { s in
                HostRecord(
                    key: s.text(0) ?? "", aliases: (s.text(1) ?? "").split(separator: " ").map(String.init),
                    firstAddress: s.text(2), lastAddress: s.text(3), firstSeen: s.date(4) ?? .distantPast,
                    lastSeen: s.date(5) ?? .distantPast)
            }
        }
    }

    public func noteHostSeen(key: String, alias: String?, address: String?, at: Date) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            let t = at.timeIntervalSince1970
            let addr: SQLValue = address.map { .text($0) } ?? .null
            try db.prepare(
                """
                INSERT INTO hosts(key, aliases, first_address, last_address, first_seen, last_seen) VALUES (?, '', ?, ?, ?, ?)
                ON CONFLICT(key) DO UPDATE SET last_seen = excluded.last_seen,
                  last_address = COALESCE(excluded.last_address, last_address),
                  first_address = COALESCE(first_address, excluded.first_address)
                """
            ).run([.text(key), addr, addr, .real(t), .real(t)])
            // Aliases are space-separated spellings as asked (host names hold no spaces); a few per host.
            if let alias, !alias.isEmpty {
                let clean = String(alias.prefix(253).map { $0 == " " ? "_" : $0 })
                let current =
                    try db.prepare("SELECT aliases FROM hosts WHERE key = ?").rows([.text(key)]) { $0.text(0) ?? "" }
                    .first ?? ""
                var list = current.split(separator: " ").map(String.init)
                if !list.contains(clean) && list.count < 32 {
                    list.append(clean)
                    try db.prepare("UPDATE hosts SET aliases = ? WHERE key = ?").run([
                        .text(list.joined(separator: " ")), .text(key),
                    ])
                }
            }
        }
    }

    // MARK: - Quotas

    public func quotaCounters() throws(LedgerError) -> QuotaCounters {
        try locked { () throws(LedgerError) in
            var q = QuotaCounters()
            for (a, used, learned) in try db.prepare("SELECT account, used, learned_total FROM quota_accounts").rows({
                ($0.text(0) ?? "", Int($0.int(1)), $0.isNull(2) ? nil : Int($0.int(2)))
            }) {
                q.perAccount[a] = used
                q.learnedTotals[a] = learned
            }
            for (t, used) in try db.prepare("SELECT token_name, used FROM quota_tokens").rows({
                ($0.text(0) ?? "", Int($0.int(1)))
            }) {
                q.perToken[t] = used
            }
            return q
        }
    }

    public func setLearnedQuota(account: String, total: Int, at: Date) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            try db.prepare(
                """
                INSERT INTO quota_accounts(account, used, learned_total, learned_at) VALUES (?, 0, ?, ?)
                ON CONFLICT(account) DO UPDATE SET learned_total = excluded.learned_total, learned_at = excluded.learned_at
                """
            ).run([.text(account), .int(Int64(total)), .real(at.timeIntervalSince1970)])
        }
    }

    // MARK: - Intents

    private static func intentRecord(_ s: Statement) -> IntentRecord {
        IntentRecord(
            id: s.int(0),
            key: LicenseKey(
                account: s.text(1) ?? "", hostKey: s.text(2) ?? "",
                type: LicenseType(word: s.text(3) ?? "") ?? .workstation),
            startedAt: s.date(4) ?? .distantPast, state: IntentState(rawValue: s.text(5) ?? "") ?? .unknown,
            detail: s.text(6))
    }
    private static let intentColumns = "id, account, host_key, type, started_at, state, detail"

    public func beginIntent(_ key: LicenseKey, at: Date) throws(LedgerError) -> Int64 {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "INSERT INTO intents(account, host_key, type, started_at, state) VALUES (?, ?, ?, ?, 'pending')"
            )
            .run([.text(key.account), .text(key.hostKey), .text(key.type.rawValue), .real(at.timeIntervalSince1970)])
            return db.lastInsertRowID
        }
    }

    public func completeIntent(_ id: Int64, license: LicenseRecord, tokenName: String?, at: Date) throws(LedgerError)
        -> LicenseRecord
    {
        try locked { () throws(LedgerError) in
            try db.transaction { () throws(LedgerError) in
                let stored = try insertLicense(license, intent: id)
                try db.prepare("UPDATE intents SET state = 'issued', detail = ?, settled_at = ? WHERE id = ?")
                    .run([.text("license \(stored.id)"), .real(at.timeIntervalSince1970), .int(id)])
                if license.source == .upstream {
                    try db.prepare(
                        "INSERT INTO quota_accounts(account, used) VALUES (?, 1) ON CONFLICT(account) DO UPDATE SET used = used + 1"
                    ).run([.text(license.key.account)])
                    if let tokenName {
                        try db.prepare(
                            "INSERT INTO quota_tokens(token_name, used) VALUES (?, 1) ON CONFLICT(token_name) DO UPDATE SET used = used + 1"
                        ).run([.text(tokenName)])
                    }
                }
                return stored
            }
        }
    }

    public func settleIntent(_ id: Int64, state: IntentState, detail: String, at: Date) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            try db.prepare("UPDATE intents SET state = ?, detail = ?, settled_at = ? WHERE id = ?")
                .run([.text(state.rawValue), .text(detail), .real(at.timeIntervalSince1970), .int(id)])
        }
    }

    public func markPendingIntentsUnknown(at: Date) throws(LedgerError) -> [IntentRecord] {
        try locked { () throws(LedgerError) in
            try db.transaction { () throws(LedgerError) in
                let pending = try db.prepare(
                    "SELECT \(Ledger.intentColumns) FROM intents WHERE \(Ledger.unsettled) AND state = 'pending' ORDER BY id"
                )
                .rows([], Ledger.intentRecord)
                try db.prepare(
                    "UPDATE intents SET state = 'unknown', detail = 'in flight when the mirror stopped', settled_at = ? WHERE \(Ledger.unsettled) AND state = 'pending'"
                ).run([.real(at.timeIntervalSince1970)])
                return pending.map {
                    var r = $0
                    r.state = .unknown
                    return r
                }
            }
        }
    }

    public func intents(in states: Set<IntentState>) throws(LedgerError) -> [IntentRecord] {
        try locked { () throws(LedgerError) in
            let list = states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ")
            guard !list.isEmpty else { return [] }
            // Only unsettled states asked: the partial index answers without scanning the settled ones.
            let narrow = states.isSubset(of: [.pending, .unknown]) ? "\(Ledger.unsettled) AND " : ""
            return try db.prepare(
                "SELECT \(Ledger.intentColumns) FROM intents WHERE \(narrow)state IN (\(list)) ORDER BY id"
            )
            .rows([], Ledger.intentRecord)
        }
    }

    public func intent(_ id: Int64) throws(LedgerError) -> IntentRecord? {
        try locked { () throws(LedgerError) in
            try db.prepare("SELECT \(Ledger.intentColumns) FROM intents WHERE id = ?").rows(
                [.int(id)], Ledger.intentRecord
            ).first
        }
    }

    public func resolveIntent(_ id: Int64, detail: String, at: Date) throws(LedgerError) -> IntentRecord? {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "UPDATE intents SET state = 'resolved', detail = ?, settled_at = ? WHERE id = ? AND \(Ledger.unsettled)"
            ).run([.text(detail), .real(at.timeIntervalSince1970), .int(id)])
            guard db.changes == 1 else { return nil }
            return try db.prepare("SELECT \(Ledger.intentColumns) FROM intents WHERE id = ?").rows(
                [.int(id)], Ledger.intentRecord
            )
            .first
        }
    }

    // MARK: - Offline pool and pending hosts

    public func importPoolLicense(_ l: PoolLicense) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            try db.prepare(
                """
                INSERT INTO pool(host_key, type, bytes, imported_at, expires_at, source_name, used_at) VALUES (?,?,?,?,?,?,NULL)
                ON CONFLICT(host_key, type) DO UPDATE SET bytes = excluded.bytes, imported_at = excluded.imported_at,
                  expires_at = excluded.expires_at, source_name = excluded.source_name, used_at = NULL
                """
            ).run([
                .text(l.hostKey), .text(l.type.rawValue), .blob(l.bytes), .real(l.importedAt.timeIntervalSince1970),
                .real(l.expiresAt.timeIntervalSince1970), .text(l.sourceName),
            ])
        }
    }

    private static func pool(_ s: Statement) -> PoolLicense {
        PoolLicense(
            hostKey: s.text(0) ?? "", type: LicenseType(word: s.text(1) ?? "") ?? .workstation, bytes: s.blob(2),
            importedAt: s.date(3) ?? .distantPast, expiresAt: s.date(4) ?? .distantPast, sourceName: s.text(5) ?? "")
    }

    public func poolLicense(hostKey: String, type: LicenseType) throws(LedgerError) -> PoolLicense? {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "SELECT host_key, type, bytes, imported_at, expires_at, source_name FROM pool WHERE host_key = ? AND type = ? AND used_at IS NULL"
            ).rows([.text(hostKey), .text(type.rawValue)], Ledger.pool).first
        }
    }

    /// Marks a pool license served. Its bytes were stored as a `licenses` row first (the desk's order), so
    /// the pool row drops its copy: a used pool license is never served again (a re-import replaces it).
    public func markPoolLicenseUsed(hostKey: String, type: LicenseType, at: Date) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            try db.prepare("UPDATE pool SET used_at = ?, bytes = X'' WHERE host_key = ? AND type = ?")
                .run([.real(at.timeIntervalSince1970), .text(hostKey), .text(type.rawValue)])
        }
    }

    public func poolLicenses() throws(LedgerError) -> [PoolLicense] {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "SELECT host_key, type, bytes, imported_at, expires_at, source_name FROM pool ORDER BY host_key"
            )
            .rows([], Ledger.pool)
        }
    }

    public func addPendingHost(key: String, type: LicenseType, at: Date, limit: Int) throws(LedgerError) -> Bool {
        try locked { () throws(LedgerError) in
            let t = at.timeIntervalSince1970
            try db.prepare("UPDATE pending_hosts SET last_asked = ?, count = count + 1 WHERE host_key = ? AND type = ?")
                .run([.real(t), .text(key), .text(type.rawValue)])
            if db.changes == 1 { return true }
            let n = try db.prepare("SELECT COUNT(*) FROM pending_hosts").rows { $0.int(0) }.first ?? 0
            guard n < limit else { return false }
            try db.prepare(
                "INSERT INTO pending_hosts(host_key, type, first_asked, last_asked, count) VALUES (?, ?, ?, ?, 1)"
            )
            .run([.text(key), .text(type.rawValue), .real(t), .real(t)])
            return true
        }
    }

    public func removePendingHost(key: String, type: LicenseType) throws(LedgerError) {
        try locked { () throws(LedgerError) in
            try db.prepare("DELETE FROM pending_hosts WHERE host_key = ? AND type = ?").run([
                .text(key), .text(type.rawValue),
            ])
        }
    }

    public func pendingHosts() throws(LedgerError) -> [PendingHost] {
        try locked { () throws(LedgerError) in
            try db.prepare(
                "SELECT host_key, type, first_asked, last_asked, count FROM pending_hosts ORDER BY host_key, type"
            )
            .rows { s in
                PendingHost(
                    hostKey: s.text(0) ?? "", type: LicenseType(word: s.text(1) ?? "") ?? .workstation,
                    firstAsked: s.date(2) ?? .distantPast, lastAsked: s.date(3) ?? .distantPast, count: Int(s.int(4)))
            }
        }
    }
}

/// One checkpoint: the WAL's size before and after, and how long the ledger was held for it.
public struct LedgerCheckpoint: Sendable, Equatable {
    public var walBytesBefore: Int
    public var walBytesAfter: Int
    public var seconds: Double
}

/// Checkpoints run by this process on one ledger (SQLite's automatic ones not counted).
public struct LedgerCheckpointStats: Sendable, Equatable {
    public var count = 0
    public var idleCount = 0
    /// Checkpoints that found another connection busy and were left for later.
    public var busy = 0
    public var totalSeconds = 0.0
    public var maxSeconds = 0.0
    /// Largest `-wal` size seen after a write.
    public var walBytesHighWater = 0
}

/// The system's wall clock for the desk (the pure SeedLicensing target reads no clocks itself).
public struct SystemDeskClock: DeskClock {
    public init() {}
    public func now() -> Date { Date() }
}
