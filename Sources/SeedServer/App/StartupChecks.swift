import Foundation

/// A reason `serve` refuses to start: one line naming the file and what to do.
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Refuses private-key files that every user on the machine can read (mode `o+r`), or that are missing.
/// A key others can read is a key others can copy: the operator must `chmod 600` it first.
public func checkPrivateKeyPermissions(_ paths: [String]) throws(StartupError) {
    for path in paths {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw StartupError("private key \(path): \(String(cString: strerror(errno)))")
        }
        if st.st_mode & S_IROTH != 0 {
            throw StartupError(
                "private key \(path) is readable by every user (mode \(String(st.st_mode & 0o777, radix: 8))); "
                    + "run `chmod 600 \(path)` and start again")
        }
    }
}
