public import SeedPosix

/// A failure of the audit log: what failed, on what, and why.
public struct AuditError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        case io(SystemError)
        /// The head store could not be read or written.
        case headStore(String)
        /// The chain on disk does not match itself or the head; the message names the record.
        case chainBroken(String)
        /// The log was closed; records can no longer be written.
        case closed
        case invalidArgument(String)
    }
    public var kind: Kind
    public var path: String

    public init(_ kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    public var description: String {
        switch kind {
        case .io(let e): "audit log \(path): \(e)"
        case .headStore(let m): "audit head \(path): \(m)"
        case .chainBroken(let m):
            "audit log \(path) is broken: \(m); run `seed-mirror audit verify` and keep the files for investigation"
        case .closed: "audit log \(path) is closed"
        case .invalidArgument(let m): "audit log \(path): \(m)"
        }
    }
}
