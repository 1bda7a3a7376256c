import CSeedShim
import Glibc

/// An open file descriptor with one owner. Close explicitly to see the error; deinit only stops a leak.
public struct FileDescriptor: ~Copyable {
    public let rawValue: CInt

    public init(takingOwnershipOf fd: CInt) {
        precondition(fd >= 0, "negative file descriptor")
        rawValue = fd
    }

    /// Gives up ownership without closing; the caller now owns the raw descriptor.
    public consuming func release() -> CInt {
        let fd = rawValue
        discard self
        return fd
    }

    public consuming func close() throws(SystemError) {
        let fd = rawValue
        discard self
        if Glibc.close(fd) != 0 { throw SystemError.current("close") }
    }

    deinit { _ = Glibc.close(rawValue) }
}

/// A shared, reference-counted read-only file: many responses may read ranges of it at once (pread),
/// and it stays readable after the path is unlinked (GC never breaks a running download).
public final class SharedFile: Sendable {
    public let rawValue: CInt
    public let size: UInt64
    public let path: String

    public init(openingForReading path: String) throws(SystemError) {
        let fd = try retryingEINTR("open", path: path) { seed_open(path, O_RDONLY | O_CLOEXEC, 0) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = SystemError.current("fstat", path: path)
            _ = Glibc.close(fd)
            throw e
        }
        self.rawValue = fd
        self.size = UInt64(st.st_size)
        self.path = path
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns the count read (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SystemError) -> Int {
        try retryingEINTR("pread", path: path) { pread(rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    deinit { _ = Glibc.close(rawValue) }
}
