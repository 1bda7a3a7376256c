internal import CSeedShim
import Foundation
import Glibc
import SeedCompression
public import SeedPosix
import SeedCore
import Synchronization

/// What a verified blob holds: its content's size and CRC-32, computed while hashing.
public struct BlobFacts: Sendable, Equatable {
    public var method: UInt16
    public var storedSize: UInt64
    public var contentSize: UInt64
    public var crc32: UInt32
}

/// Content-addressed blobs under `<root>/blobs/sha256/<first two hex>/<hex>.<deflate|stored>`
/// (docs/design.md, "Blob layout"). Thread-safe. A blob is served only after its content has been
/// hashed once since start (or since its file changed); a mismatch is quarantined and reported.
public final class BlobStore: Sendable {
    public let root: String
    let faultHook: StoreFaultHook?

    private struct Mark {
        var device: UInt64, inode: UInt64, size: Int64, mtimeSec: Int, mtimeNsec: Int
        var facts: BlobFacts

        func matches(_ st: stat) -> Bool {
            device == UInt64(st.st_dev) && inode == UInt64(st.st_ino) && size == Int64(st.st_size)
                && mtimeSec == st.st_mtim.tv_sec && mtimeNsec == st.st_mtim.tv_nsec
        }
    }
    private struct State {
        var marks: [String: Mark] = [:]
        var open: [String: SharedFile] = [:]
    }
    private let state = Lock(State())
    private let hashes = Atomic<Int>(0)
    private let forgotten = Atomic<Int>(0)
    /// Striped locks serializing the open-and-verify of one blob (see `openVerified`).
    private let verificationLocks: [NSLock] = (0..<64).map { _ in NSLock() }

    /// How many times `openVerified` hashed a blob's content since this store was opened (a blob not
    /// verified yet in this process, or changed on disk since). Blobs written by an import of this
    /// process are not counted: their content was hashed as they were written.
    public var verificationHashCount: Int { hashes.load(ordering: .relaxed) }

    var blobsDir: String { root + "/blobs/sha256" }
    var tmpDir: String { root + "/tmp" }
    var quarantineDir: String { root + "/quarantine" }

    /// Creates the layout if needed and removes leftovers of interrupted writes from `tmp/`.
    public init(root: String, faultHook: StoreFaultHook? = nil) throws(StoreError) {
        self.root = root
        self.faultHook = faultHook
        for d in [root + "/blobs/sha256", root + "/tmp", root + "/quarantine", root + "/manifests", root + "/current"] {
            try makeDirectory(d)
        }
        for name in listDirectory(root + "/tmp") { try removeFile(root + "/tmp/" + name) }
    }

    static func suffix(_ method: UInt16) -> String { method == 8 ? "deflate" : "stored" }

    public func path(of hex: String, method: UInt16) -> String {
        let prefix = String(hex.prefix(2))
        return "\(blobsDir)/\(prefix)/\(hex).\(Self.suffix(method))"
    }

    /// The blob's method and stored size, if present.
    public func lookup(_ hex: String) -> (method: UInt16, storedSize: UInt64)? {
        for method: UInt16 in [8, 0] {
            if let st = fileStat(path(of: hex, method: method)) { return (method, UInt64(st.st_size)) }
        }
        return nil
    }

    /// Makes a finished temp file the blob `hex` (fsync, rename, fsync dir). The caller has hashed it.
    func commit(_ temp: TempFile, hex: String, method: UInt16) throws(StoreError) {
        let final = path(of: hex, method: method)
        try makeDirectory(String(final[..<final.lastIndex(of: "/")!]))
        try temp.commit(to: final, hook: faultHook)
    }

    /// Makes several finished temp files blobs: one syncfs makes all their data durable, then each is
    /// renamed into place and a second syncfs makes the renames durable. Before the first syncfs no
    /// final name exists, so a crash leaves only tmp/ files (removed at the next open).
    func commitBatch(_ batch: [(temp: TempFile, hex: String, method: UInt16)]) throws(StoreError) {
        guard !batch.isEmpty else { return }
        for b in batch { try b.temp.finishWriting() }
        try syncFileSystem()
        var dirs: Set<String> = []
        for b in batch {
            let final = path(of: b.hex, method: b.method)
            let dir = String(final[..<final.lastIndex(of: "/")!])
            if !dirs.contains(dir) { try makeDirectory(dir) }
            dirs.insert(dir)
            if let faultHook { try faultHook(.beforeRename, final) }
            let from = b.temp.path
            do { _ = try retryingEINTR("rename", path: final) { rename(from, final) } } catch {
                throw StoreError(.io(error), subject: final)
            }
        }
        // One more syncfs makes all the renames durable: cheaper than an fsync per blob directory.
        try syncFileSystem()
    }

    /// syncfs(2) on the file system holding the cache: data and metadata of everything written so far.
    private func syncFileSystem() throws(StoreError) {
        let d: CInt
        do {
            d = try retryingEINTR("open", path: tmpDir) { open(tmpDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        } catch { throw StoreError(.io(error), subject: tmpDir) }
        let rc = seed_syncfs(d)
        let e = errno
        _ = close(d)
        if rc != 0 { throw StoreError(.io(SystemError(call: "syncfs", errno: e, path: tmpDir)), subject: tmpDir) }
    }

    /// All blobs on disk: (hex, method, stored size).
    public func allBlobs() -> [(hex: String, method: UInt16, storedSize: UInt64)] {
        var out: [(String, UInt16, UInt64)] = []
        for prefix in listDirectory(blobsDir) {
            for name in listDirectory(blobsDir + "/" + prefix) {
                let parts = name.split(separator: ".")
                guard parts.count == 2, isHexDigest(String(parts[0])), parts[1] == "deflate" || parts[1] == "stored"
                else { continue }
                let method: UInt16 = parts[1] == "deflate" ? 8 : 0
                let size = fileStat(blobsDir + "/" + prefix + "/" + name).map { UInt64($0.st_size) } ?? 0
                out.append((String(parts[0]), method, size))
            }
        }
        return out
    }

    /// Opens a blob for serving, hashing it first unless it was verified since start and is unchanged.
    /// A blob whose content does not match its name is moved to `quarantine/` and never returned.
    public func openVerified(_ hex: String, method: UInt16) throws(StoreError) -> (SharedFile, BlobFacts) {
        let p = path(of: hex, method: method)
        if let cached = cachedOpen(hex, method: method, path: p) { return cached }
        // One opener per blob does the slow part; the others wait here and then share its open file, so a
        // burst of first downloads after a start neither re-hashes a blob nor opens it once per request.
        let lock = verificationLocks[Self.stripe(of: hex, count: verificationLocks.count)]
        lock.lock()
        defer { lock.unlock() }
        if let cached = cachedOpen(hex, method: method, path: p) { return cached }
        let file: SharedFile
        do { file = try SharedFile(openingForReading: p) } catch {
            if error.errno == ENOENT { throw StoreError(.missingBlob, subject: hex) }
            throw StoreError(.io(error), subject: p)
        }
        var st = stat()
        guard fstat(file.rawValue, &st) == 0 else { throw StoreError(.io(.current("fstat", path: p)), subject: p) }
        let known: BlobFacts? = state.withLock { s in
            guard let m = s.marks[hex], m.matches(st), m.facts.method == method else { return nil }
            return m.facts
        }
        let facts: BlobFacts
        if let known {
            facts = known
        } else {
            hashes.add(1, ordering: .relaxed)
            let (actual, f) = try Self.hashContent(file, method: method, name: hex)
            if actual != hex {
                let q = quarantine(hex, method: method)
                throw StoreError(.digestMismatch(actual: actual, quarantinedTo: q), subject: hex)
            }
            facts = f
        }
        let mark = Mark(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), mtimeSec: st.st_mtim.tv_sec,
            mtimeNsec: st.st_mtim.tv_nsec, facts: facts)
        state.withLock { s in
            s.marks[hex] = mark
            s.open[hex] = file
        }
        return (file, facts)
    }

    /// The shared open file of a blob verified since start whose file is unchanged (same inode, size, mtime).
    private func cachedOpen(_ hex: String, method: UInt16, path p: String) -> (SharedFile, BlobFacts)? {
        guard let st = fileStat(p) else { return nil }
        return state.withLock { s in
            guard let f = s.open[hex], let m = s.marks[hex], m.matches(st), m.facts.method == method else {
                return nil
            }
            return (f, m.facts)
        }
    }

    private static func stripe(of hex: String, count: Int) -> Int {
        var h = 0
        for b in hex.utf8.prefix(8) { h = h &* 31 &+ Int(b) }
        return Int(UInt(bitPattern: h) % UInt(count))
    }

    /// Records that blob `hex`, just committed by this process, holds content this process hashed to
    /// `hex` (`facts` describe it): its first `openVerified` then skips the re-hash, as long as the file
    /// is unchanged (same device, inode, size, mtime). Only for blobs this process wrote itself.
    func markVerified(_ hex: String, facts: BlobFacts) {
        guard let st = fileStat(path(of: hex, method: facts.method)) else { return }
        let mark = Mark(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), mtimeSec: st.st_mtim.tv_sec,
            mtimeNsec: st.st_mtim.tv_nsec, facts: facts)
        guard mark.facts.storedSize == UInt64(st.st_size) else { return }
        state.withLock { s in
            s.marks[hex] = mark
            s.open[hex] = nil
        }
    }

    /// Hashes a blob's content (inflating deflate blobs): returns the SHA-256 hex and the facts.
    /// Corrupt deflate data counts as a mismatch (the returned digest is "corrupt: ...").
    static func hashContent(_ file: SharedFile, method: UInt16, name: String) throws(StoreError) -> (String, BlobFacts)
    {
        let sha = SHA256Hasher()
        var crc = CRC32()
        var size: UInt64 = 0
        if method == 8 {
            let inflater: RawInflater
            do { inflater = try RawInflater() } catch {
                throw StoreError(.compression(error.description), subject: name)
            }
            var broken: String? = nil
            try forEachChunk(file, length: file.size) { (chunk) throws(StoreError) in
                guard broken == nil else { return }
                do {
                    try inflater.inflate(chunk) { out in
                        sha.update(out)
                        crc.update(out)
                        size += UInt64(out.count)
                    }
                } catch let e as CompressionError { broken = e.description } catch { broken = "\(error)" }
            }
            if broken == nil && !inflater.isFinished { broken = "deflate stream truncated" }
            if let broken {
                return ("corrupt: " + broken, BlobFacts(method: 8, storedSize: file.size, contentSize: 0, crc32: 0))
            }
        } else {
            try forEachChunk(file, length: file.size) { (chunk) throws(StoreError) in
                sha.update(chunk)
                crc.update(chunk)
                size += UInt64(chunk.count)
            }
        }
        return (sha.finalHex(), BlobFacts(method: method, storedSize: file.size, contentSize: size, crc32: crc.value))
    }

    /// Moves a bad blob aside and forgets it; returns where it went.
    @discardableResult
    func quarantine(_ hex: String, method: UInt16) -> String {
        let from = path(of: hex, method: method)
        var to = "\(quarantineDir)/\(hex).\(Self.suffix(method))"
        var n = 1
        while fileExists(to) {
            to = "\(quarantineDir)/\(hex).\(Self.suffix(method)).\(n)"
            n += 1
        }
        if rename(from, to) != 0 { _ = unlink(from) }
        forget(hex)
        return to
    }

    /// Drops the in-memory mark and cached descriptor (open plans keep their own reference).
    func forget(_ hex: String) {
        state.withLock { s in
            s.marks[hex] = nil
            s.open[hex] = nil
        }
        forgotten.add(1, ordering: .releasing)
    }

    /// Goes up whenever a blob is forgotten (quarantined, removed by gc): callers holding verified open
    /// blobs from before must check them again through `openVerified`.
    public var generation: Int { forgotten.load(ordering: .acquiring) }

    func remove(_ hex: String, method: UInt16) throws(StoreError) {
        try removeFile(path(of: hex, method: method))
        forget(hex)
    }
}
