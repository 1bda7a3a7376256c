public import Foundation

/// The desk's source of wall-clock time. License lifetimes are wall-clock facts stored in the ledger,
/// so this is `Date`, not a monotonic instant; code that measures intervals clamps a clock stepping back.
public protocol DeskClock: Sendable {
    func now() -> Date
}

/// A clock that moves only when told to, for tests. Safe to use from any thread.
public final class ManualClock: DeskClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = start }

    public func now() -> Date { lock.withLock { current } }

    public func advance(by seconds: TimeInterval) { lock.withLock { current += seconds } }

    public func set(_ date: Date) { lock.withLock { current = date } }
}
