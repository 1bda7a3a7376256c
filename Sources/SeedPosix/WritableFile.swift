import CSeedShim
import Glibc

/// A file written front to back, with one owner: every write writes all its bytes (short writes and
/// EINTR retried), `syncAndClose` makes them durable. Errors name the call, the path and the errno text.
/// deinit closes a file left open (an abandoned write), without syncing.
public final class WritableFile {
    public let path: String
    private var fd: CInt
    /// Bytes written so far.
    public private(set) var written: UInt64 = 0

    /// Creates `path`, which must not exist yet (O_EXCL), with `permissions`.
    public init(creatingExclusively path: String, permissions: UInt32 = 0o600) throws(SystemError) {
        fd = try retryingEINTR("open", path: path) {
            seed_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        }
        self.path = path
    }

    public var isOpen: Bool { fd >= 0 }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        guard fd >= 0 else { throw SystemError(call: "write", errno: EBADF, path: path) }
        var done = 0
        while done < bytes.count {
            done += try retryingEINTR("write", path: path) {
                Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            }
        }
        written += UInt64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws(SystemError) {
        let result = bytes.withUnsafeBytes { p in Result { () throws(SystemError) in try write(p) } }
        try result.get()
    }

    /// fsync, then close; the file stays. Closes even when fsync fails.
    public func syncAndClose() throws(SystemError) {
        guard fd >= 0 else { throw SystemError(call: "fsync", errno: EBADF, path: path) }
        let fd = self.fd
        self.fd = -1
        do {
            _ = try retryingEINTR("fsync", path: path) { fsync(fd) }
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        if Glibc.close(fd) != 0 { throw SystemError.current("close", path: path) }
    }

    /// Closes without syncing (the content is being abandoned); a second call does nothing.
    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// Removes a file (unlink); a missing file is not an error.
public func removeFile(atPath path: String) throws(SystemError) {
    if unlink(path) != 0 {
        let e = SystemError.current("unlink", path: path)
        if e.errno != ENOENT { throw e }
    }
}
