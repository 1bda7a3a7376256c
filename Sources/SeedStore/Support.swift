internal import CSeedOpenSSL
import Glibc
public import SeedPosix
public import SeedZip

/// A store failure: what failed, on which blob/manifest/path, and why.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// A blob's content does not hash to its name; it was moved to quarantine.
        case digestMismatch(actual: String, quarantinedTo: String)
        /// A blob's size, CRC or length differs from what the manifest records.
        case blobMismatch(String)
        case missingBlob
        case missingManifest
        case badManifest(String)
        case badArchive(ZipError)
        case badName(String)
        case badBundle(String)
        case io(SystemError)
        case crypto(String)
        case compression(String)
        /// Raised by a test hook to simulate a crash at a chosen point.
        case injectedFault(String)
    }
    public var kind: Kind
    /// The blob, manifest or file concerned.
    public var subject: String

    public init(_ kind: Kind, subject: String) {
        self.kind = kind
        self.subject = subject
    }

    /// True when the store's own data is damaged (the server answers 5xx and logs it).
    public var isIntegrityFailure: Bool {
        switch kind {
        case .digestMismatch, .blobMismatch, .missingBlob, .badManifest: true
        default: false
        }
    }

    public var description: String {
        switch kind {
        case .digestMismatch(let actual, let q):
            "blob \(subject) hashes to \(actual.prefix(12)); quarantined to \(q), never served; re-import the package"
        case .blobMismatch(let s): "blob \(subject) does not match its manifest (\(s)); re-import the package"
        case .missingBlob: "blob \(subject) is not in the store; re-import the package or import a bundle"
        case .missingManifest: "manifest \(subject) is not in the store"
        case .badManifest(let s): "manifest \(subject) is invalid: \(s)"
        case .badArchive(let z): "cannot import \(subject): \(z)"
        case .badName(let s): "invalid \(s): \(subject)"
        case .badBundle(let s): "bundle \(subject) refused: \(s)"
        case .io(let e): "\(subject): \(e)"
        case .crypto(let s): "SHA-256 failed for \(subject): \(s)"
        case .compression(let s): "compression failed for \(subject): \(s)"
        case .injectedFault(let s): "injected fault at \(s) for \(subject)"
        }
    }
}

/// Incremental SHA-256 over OpenSSL EVP. Owns its EVP_MD_CTX; one thread at a time.
public final class SHA256Hasher {
    private let ctx: OpaquePointer

    public init() {
        guard let c = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        // Initialising SHA-256 on a fresh context only fails on allocation failure: a bug-level event.
        precondition(EVP_DigestInit_ex(c, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex(sha256) failed")
        ctx = c
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        precondition(EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate failed")
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Finishes and returns the lower-case hex digest; the hasher must not be used afterwards.
    public func finalHex() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &out, &len) == 1 && len == 32, "EVP_DigestFinal_ex failed")
        return hexOf(out)
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalHex()
    }
}

func hexOf(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

func isHexDigest(_ s: String) -> Bool {
    s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
}

/// Archive reads through a SharedFile (pread), so the caller never holds the whole archive in memory.
struct FileZipSource: ZipByteSource {
    let file: SharedFile
    var size: UInt64 { file.size }
    func read(at offset: UInt64, count: Int) throws(ZipError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw ZipError(.truncated("wanted \(count) bytes at offset \(offset) of \(size)"))
        }
        do {
            return try preadExactly(file, at: offset, count: count)
        } catch {
            throw ZipError(.io(error.description))
        }
    }
}

func preadExactly(_ file: SharedFile, at offset: UInt64, count: Int) throws(SystemError) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let r: Result<Int, SystemError> = out.withUnsafeMutableBytes { b in
            Result { () throws(SystemError) in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: b[done...]), at: offset + UInt64(done))
            }
        }
        let n = try r.get()
        if n == 0 { throw SystemError(call: "pread (short file)", errno: EIO, path: file.path) }
        done += n
    }
    return out
}

/// Streams `length` bytes of `file` from `offset` to `body` in chunks.
func forEachChunk(
    _ file: SharedFile, offset: UInt64 = 0, length: UInt64, chunkSize: Int = 1 << 20,
    _ body: (UnsafeRawBufferPointer) throws(StoreError) -> Void
) throws(StoreError) {
    var done: UInt64 = 0
    while done < length {
        let n = Int(min(UInt64(chunkSize), length - done))
        let chunk: [UInt8]
        do { chunk = try preadExactly(file, at: offset + done, count: n) } catch {
            throw StoreError(.io(error), subject: file.path)
        }
        let r: Result<Void, StoreError> = chunk.withUnsafeBytes { b in
            Result { () throws(StoreError) in try body(b) }
        }
        try r.get()
        done += UInt64(n)
    }
}

/// A file being written under `tmp/`, made durable and renamed into place by `commit`.
/// Until `commit` returns, nothing exists under the final name.
final class TempFile {
    let path: String
    private var fd: CInt
    private(set) var size: UInt64 = 0

    init(inDirectory dir: String) throws(StoreError) {
        var name = ""
        for _ in 0..<4 { name += String(UInt32.random(in: 0...UInt32.max), radix: 16) }
        path = dir + "/" + name + ".part"
        let p = path
        do {
            fd = try retryingEINTR("open", path: p) { open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        } catch { throw StoreError(.io(error), subject: p) }
    }

    deinit { if fd >= 0 { _ = close(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let p = path
            let n: Int
            do {
                n = try retryingEINTR("write", path: p) {
                    Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                }
            } catch { throw StoreError(.io(error), subject: p) }
            done += n
        }
        size += UInt64(bytes.count)
    }

    func write(_ bytes: [UInt8]) throws(StoreError) {
        let r: Result<Void, StoreError> = bytes.withUnsafeBytes { b in Result { () throws(StoreError) in try write(b) }
        }
        try r.get()
    }

    /// fsync, close, rename to `finalPath`, fsync the directory (docs/design.md, "Blob layout").
    func commit(to finalPath: String, hook: StoreFaultHook?) throws(StoreError) {
        let p = path
        do throws(SystemError) {
            _ = try retryingEINTR("fsync", path: p) { fsync(fd) }
            let f = fd
            fd = -1
            if close(f) != 0 { throw SystemError.current("close", path: p) }
        } catch { throw StoreError(.io(error), subject: p) }
        if let hook { try hook(.beforeRename, finalPath) }
        do {
            _ = try retryingEINTR("rename", path: finalPath) { rename(p, finalPath) }
        } catch { throw StoreError(.io(error), subject: finalPath) }
        try syncDirectory(parentOf: finalPath)
    }

    /// Closes without fsync; `BlobStore.commitBatch` makes a whole batch durable with one syncfs.
    func finishWriting() throws(StoreError) {
        guard fd >= 0 else { return }
        let f = fd
        fd = -1
        if close(f) != 0 { throw StoreError(.io(.current("close", path: path)), subject: path) }
    }

    func discard() {
        if fd >= 0 {
            _ = close(fd)
            fd = -1
        }
        _ = unlink(path)
    }
}

/// Where a test may inject a failure; the store stops there as if the process had died.
public enum StoreFaultPoint: Sendable { case beforeRename }
public typealias StoreFaultHook = @Sendable (StoreFaultPoint, String) throws(StoreError) -> Void

func syncDirectory(parentOf path: String) throws(StoreError) {
    let dir = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    let d: CInt
    do { d = try retryingEINTR("open", path: dir) { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) } } catch {
        throw StoreError(.io(error), subject: dir)
    }
    defer { _ = close(d) }
    do { _ = try retryingEINTR("fsync", path: dir) { fsync(d) } } catch { throw StoreError(.io(error), subject: dir) }
}

func makeDirectory(_ path: String) throws(StoreError) {
    var built = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        built += "/" + part
        if mkdir(built, 0o755) != 0 {
            let e = errno
            if e != EEXIST { throw StoreError(.io(SystemError(call: "mkdir", errno: e, path: built)), subject: path) }
        }
    }
}

/// Names in a directory, without "." and ".."; an absent directory is empty.
func listDirectory(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var out: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { out.append(name) }
    }
    return out.sorted()
}

func fileStat(_ path: String) -> stat? {
    var st = stat()
    return stat(path, &st) == 0 ? st : nil
}

func fileExists(_ path: String) -> Bool { fileStat(path) != nil }

func readWholeFile(_ path: String, limit: Int = 64 << 20) throws(StoreError) -> [UInt8] {
    let f: SharedFile
    do { f = try SharedFile(openingForReading: path) } catch { throw StoreError(.io(error), subject: path) }
    guard f.size <= UInt64(limit) else { throw StoreError(.badName("file larger than \(limit) bytes"), subject: path) }
    do { return try preadExactly(f, at: 0, count: Int(f.size)) } catch { throw StoreError(.io(error), subject: path) }
}

/// Writes a small file atomically (tmp, fsync, rename, fsync dir).
func writeFileAtomically(_ bytes: [UInt8], to path: String, tmpDir: String, hook: StoreFaultHook? = nil)
    throws(StoreError)
{
    let t = try TempFile(inDirectory: tmpDir)
    do {
        try t.write(bytes)
        try t.commit(to: path, hook: hook)
    } catch {
        if case .injectedFault = error.kind { throw error }
        t.discard()
        throw error
    }
}

func removeFile(_ path: String) throws(StoreError) {
    if unlink(path) != 0 && errno != ENOENT {
        throw StoreError(.io(SystemError.current("unlink", path: path)), subject: path)
    }
}
