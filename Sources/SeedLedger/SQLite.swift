internal import CSeedSQLite
import Foundation

/// A SQLite failure: the step, the SQLite message and the file.
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case locked, corrupt, newerSchema(found: Int, supported: Int), sqlite(code: Int32), io, notFound
    }
    public var kind: Kind
    public var path: String
    public var message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String {
        switch kind {
        case .locked: "ledger \(path) is locked by another process (is another seed-mirror running?)"
        case .corrupt: "ledger \(path) is not a SeedMirror ledger or corrupt: \(message)"
        case .newerSchema(let found, let supported):
            "ledger \(path) was written by a newer SeedMirror (schema \(found) > \(supported)); upgrade seed-mirror"
        case .sqlite(let code): "ledger \(path): \(message) (SQLite code \(code))"
        case .io: "ledger \(path): \(message)"
        case .notFound: "ledger \(path): \(message)"
        }
    }
}

/// Owns one `sqlite3` connection. Not thread-safe by itself: the Ledger serializes calls with a lock.
final class Database {
    private let handle: OpaquePointer
    let path: String

    init(path: String, readOnly: Bool) throws(LedgerError) {
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            var msg = "cannot open"
            var code = rc
            if let db {
                code = sqlite3_extended_errcode(db)
                msg = Database.message(db, code)
            }
            sqlite3_close_v2(db)
            throw LedgerError(.sqlite(code: code), path: path, "opening: " + msg)
        }
        // Specific codes (SQLITE_IOERR_FSYNC rather than SQLITE_IOERR) in every message from here on.
        sqlite3_extended_result_codes(db, 1)
        handle = db
        self.path = path
    }

    private var isOpen = true

    deinit { close() }

    /// Closes the connection (idempotent); statements not yet finalized keep it alive until they are.
    func close() {
        guard isOpen else { return }
        isOpen = false
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, _ what: String) -> LedgerError {
        let msg = Database.message(handle, rc)
        let primary = rc & 0xFF
        if primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT { return LedgerError(.corrupt, path: path, msg) }
        if primary == SQLITE_BUSY || primary == SQLITE_LOCKED { return LedgerError(.locked, path: path, msg) }
        return LedgerError(.sqlite(code: rc), path: path, "\(what): \(msg)")
    }

    /// SQLite's message for `rc`; for a failed system call (I/O, open, disk full), the operating system's
    /// reason too ("disk I/O error" alone names no cause).
    private static func message(_ db: OpaquePointer, _ rc: Int32) -> String {
        var msg = String(cString: sqlite3_errmsg(db))
        let primary = rc & 0xFF
        if primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN || primary == SQLITE_FULL {
            let e = sqlite3_system_errno(db)
            if e != 0 { msg += " (\(String(cString: strerror(e))))" }
        }
        return msg
    }

    func execute(_ sql: String) throws(LedgerError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, "executing \(sql.prefix(40))") }
    }

    func prepare(_ sql: String) throws(LedgerError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, "preparing \(sql.prefix(40))") }
        return Statement(stmt, database: self)
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var changes: Int { Int(sqlite3_changes(handle)) }
    /// Rows inserted, updated or deleted through this connection since it opened (a write detector).
    var totalChanges: Int64 { sqlite3_total_changes64(handle) }

    func setBusyTimeout(milliseconds: Int32) { sqlite3_busy_timeout(handle, milliseconds) }

    /// `sqlite3_wal_checkpoint_v2` in TRUNCATE mode: copies every WAL frame into the database file, fsyncs
    /// it and truncates the WAL to zero bytes. Returns the WAL's frames before and the frames copied, or
    /// nil when a reader or writer of another connection kept it from finishing (SQLITE_BUSY).
    func checkpointTruncate() throws(LedgerError) -> (frames: Int, copied: Int)? {
        var frames: Int32 = 0
        var copied: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, &frames, &copied)
        if rc & 0xFF == SQLITE_BUSY { return nil }
        guard rc == SQLITE_OK else { throw error(rc, "checkpointing the WAL") }
        return (Int(frames), Int(copied))
    }

    /// Runs `body` in one transaction (BEGIN IMMEDIATE … COMMIT), rolling back when it throws.
    func transaction<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let v = try body()
            try execute("COMMIT")
            return v
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A SQLite value to bind.
enum SQLValue {
    case int(Int64), real(Double), text(String), blob([UInt8]), null
}

/// Owns one prepared statement; keeps its Database alive.
final class Statement {
    private let handle: OpaquePointer
    private let database: Database

    init(_ handle: OpaquePointer, database: Database) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    func bind(_ values: [SQLValue]) throws(LedgerError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .int(let x): rc = sqlite3_bind_int64(handle, idx, x)
            case .real(let x): rc = sqlite3_bind_double(handle, idx, x)
            case .text(let s): rc = sqlite3_bind_text(handle, idx, s, -1, seed_sqlite_transient())
            case .blob(let b):
                rc = b.withUnsafeBytes {
                    sqlite3_bind_blob(handle, idx, $0.baseAddress, Int32($0.count), seed_sqlite_transient())
                }
            case .null: rc = sqlite3_bind_null(handle, idx)
            }
            guard rc == SQLITE_OK else { throw database.error(rc, "binding") }
        }
    }

    /// Steps once; true when a row is available.
    func step() throws(LedgerError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw database.error(rc, "stepping")
    }

    func run(_ values: [SQLValue] = []) throws(LedgerError) {
        try bind(values)
        while try step() {}
    }

    func rows<T>(_ map: (Statement) -> T) throws(LedgerError) -> [T] { try rows([], map) }

    func rows<T>(_ values: [SQLValue], _ map: (Statement) -> T) throws(LedgerError) -> [T] {
        try bind(values)
        var out: [T] = []
        while try step() { out.append(map(self)) }
        return out
    }

    func int(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
    func double(_ i: Int32) -> Double { sqlite3_column_double(handle, i) }
    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
    func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return String(cString: p)
    }
    func blob(_ i: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(handle, i))
        guard n > 0, let p = sqlite3_column_blob(handle, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
    func date(_ i: Int32) -> Date? { isNull(i) ? nil : Date(timeIntervalSince1970: double(i)) }
}
