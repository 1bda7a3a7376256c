import CSeedShim
import Glibc

/// A failed system call: which call, on what, and the errno text.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public var call: String
    public var errno: Int32
    public var path: String?

    public init(call: String, errno: Int32, path: String? = nil) {
        self.call = call
        self.errno = errno
        self.path = path
    }

    /// Captures the current thread's errno at once.
    public static func current(_ call: String, path: String? = nil) -> SystemError {
        SystemError(call: call, errno: seed_errno(), path: path)
    }

    public var description: String {
        let text = String(cString: strerror(errno))
        if let path { return "\(call) \(path): \(text)" }
        return "\(call): \(text)"
    }
}

/// Runs a system call, retrying on EINTR, and throws on -1.
public func retryingEINTR<T: BinaryInteger>(_ call: String, path: String? = nil, _ body: () -> T) throws(SystemError)
    -> T
{
    while true {
        let r = body()
        if r == -1 {
            let e = seed_errno()
            if e == EINTR { continue }
            throw SystemError(call: call, errno: e, path: path)
        }
        return r
    }
}
