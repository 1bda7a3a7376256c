import CSeedShim
import Glibc
import Synchronization

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
private let pageSize = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))

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

    /// The address of the read-only mapping of `[0, size)`: 0 before the first `mapped()`, -1 when mapping failed.
    private let mapping = Atomic<Int>(0)

    /// The file's first `size` bytes mapped read-only (shared), made on first use and kept until the file is
    /// released; nil when the file is empty or cannot be mapped (read with `read(into:at:)` then).
    ///
    /// Only for files that are never truncated while open: touching a mapped page past a shortened end raises
    /// SIGBUS. Blobs qualify: they are written to a temporary file and renamed into place, never modified or
    /// truncated afterwards (a replaced blob is a new inode; this mapping keeps the old one).
    public func mapped() -> UnsafeRawBufferPointer? {
        let known = mapping.load(ordering: .acquiring)
        if known > 0 { return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: known), count: Int(size)) }
        if known < 0 || size == 0 || size > UInt64(Int.max) { return nil }
        guard let p = mmap(nil, Int(size), PROT_READ, MAP_SHARED, rawValue, 0), p != MAP_FAILED else {
            mapping.store(-1, ordering: .releasing)
            return nil
        }
        let (won, current) = mapping.compareExchange(
            expected: 0, desired: Int(bitPattern: p), ordering: .acquiringAndReleasing)
        if !won {
            munmap(p, Int(size))
            return current > 0 ? UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: current), count: Int(size)) : nil
        }
        return UnsafeRawBufferPointer(start: p, count: Int(size))
    }

    /// Unmaps the pages of `[from, to)` from this process (the page cache keeps them; the next touch maps them
    /// again): served ranges do not stay in the process's resident set. Pages only partly inside are kept,
    /// except the file's last page. No effect without a mapping.
    public func releaseMappedPages(from: UInt64, to: UInt64) {
        let address = mapping.load(ordering: .acquiring)
        guard address > 0, from < to else { return }
        let page = UInt64(pageSize)
        let start = (from + page - 1) / page * page
        let end = to >= size ? (size + page - 1) / page * page : to / page * page
        guard start < end else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: address + Int(start)), Int(end - start), MADV_DONTNEED)
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns the count read (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SystemError) -> Int {
        try retryingEINTR("pread", path: path) { pread(rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    deinit {
        let address = mapping.load(ordering: .acquiring)
        if address > 0 { munmap(UnsafeMutableRawPointer(bitPattern: address), Int(size)) }
        _ = Glibc.close(rawValue)
    }
}
