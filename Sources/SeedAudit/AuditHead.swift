import Foundation
import Glibc
import SeedPosix

/// The last record written: its sequence number and the SHA-256 of its line. Kept apart from the
/// files so a cut-off tail is detected as well as an edit (docs/audit.md §Head).
public struct AuditHead: Sendable, Equatable, CustomStringConvertible {
    public var seq: UInt64
    public var hash: String

    public init(seq: UInt64, hash: String) {
        self.seq = seq
        self.hash = hash
    }

    public var description: String { "seq \(seq) (\(hash.prefix(12)))" }
}

/// Durable storage of the audit head. The server picks one: the HEAD file beside the log, or a row in
/// the ledger's `meta` table. Called from the audit writer thread only, after the records are on disk.
public protocol AuditHeadStore: Sendable {
    func load() throws -> AuditHead?
    func store(_ head: AuditHead) throws
}

/// The head in `<dir>/HEAD` as one JSON line, replaced atomically (temp, fsync, rename, fsync dir).
public struct FileAuditHeadStore: AuditHeadStore {
    public let path: String

    public init(directory: String) { path = directory + "/HEAD" }

    public func load() throws -> AuditHead? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw AuditError(.headStore("cannot read the file"), path: path)
            }
            return nil
        }
        var bytes = [UInt8](data)
        while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 { bytes.removeLast() }
        guard case .success(let fields) = FlatJSONParser.parse(bytes), fields.count == 2,
            fields[0].0 == "seq", case .integer(let seq) = fields[0].1, seq >= 0,
            fields[1].0 == "hash", case .string(let hash) = fields[1].1, hash.utf8.count == 64
        else { throw AuditError(.headStore("not a head record ({\"seq\":N,\"hash\":\"HEX\"})"), path: path) }
        return AuditHead(seq: UInt64(seq), hash: hash)
    }

    public func store(_ head: AuditHead) throws {
        try writeFileAtomically(path: path, bytes: Array("{\"seq\":\(head.seq),\"hash\":\"\(head.hash)\"}\n".utf8))
    }
}

/// A head kept in memory (tests, and tools that only read).
public final class MemoryAuditHeadStore: AuditHeadStore, @unchecked Sendable {
    private let lock = NSLock()
    private var head: AuditHead?
    public init(_ head: AuditHead? = nil) { self.head = head }
    public func load() throws -> AuditHead? { lock.withLock { head } }
    public func store(_ head: AuditHead) throws { lock.withLock { self.head = head } }
}

/// Writes `bytes` to `path` via a temp file, fsync, rename and a directory fsync.
func writeFileAtomically(path: String, bytes: [UInt8]) throws(AuditError) {
    let tmp = path + ".tmp"
    let fd: CInt
    do {
        fd = try retryingEINTR("open", path: tmp) { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    } catch { throw AuditError(.io(error), path: tmp) }
    let file = FileDescriptor(takingOwnershipOf: fd)
    do {
        try writeAll(file.rawValue, bytes, path: tmp)
        _ = try retryingEINTR("fsync", path: tmp) { fsync(file.rawValue) }
        try file.close()
        _ = try retryingEINTR("rename", path: path) { rename(tmp, path) }
    } catch { throw AuditError(.io(error), path: path) }
    fsyncDirectory(of: path)
}

func writeAll(_ fd: CInt, _ bytes: [UInt8], path: String) throws(SystemError) {
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemError.current("write", path: path)
        }
        off += n
    }
}

/// Makes a rename or a new file durable; failures only weaken durability, so they are not fatal.
func fsyncDirectory(of path: String) {
    let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
    let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        _ = fsync(fd)
        _ = close(fd)
    }
}

/// A head kept as one text value in a key/value store (the ledger's `meta` table): `SEQ HASH`.
/// The server passes closures so SeedAudit does not depend on the ledger.
public struct KeyValueAuditHeadStore: AuditHeadStore {
    public let read: @Sendable () throws -> String?
    public let write: @Sendable (String) throws -> Void

    public init(read: @escaping @Sendable () throws -> String?, write: @escaping @Sendable (String) throws -> Void) {
        self.read = read
        self.write = write
    }

    public func load() throws -> AuditHead? {
        guard let text = try read() else { return nil }
        let parts = text.split(separator: " ")
        guard parts.count == 2, let seq = UInt64(parts[0]), parts[1].utf8.count == 64 else {
            throw AuditError(.headStore("stored head \"\(text.prefix(80))\" is not \"SEQ HASH\""), path: "meta")
        }
        return AuditHead(seq: seq, hash: String(parts[1]))
    }

    public func store(_ head: AuditHead) throws { try write("\(head.seq) \(head.hash)") }
}
