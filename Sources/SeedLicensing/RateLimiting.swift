public import Foundation

/// `count` events per `seconds`, allowing a burst of `count`.
public struct RateLimit: Sendable, Equatable {
    public var count: Int
    public var seconds: TimeInterval
    public init(count: Int, per seconds: TimeInterval) {
        precondition(count > 0 && seconds > 0, "a rate limit needs a positive count and period")
        self.count = count
        self.seconds = seconds
    }
}

/// A token bucket: `capacity` tokens, refilled continuously at `count / seconds` per second.
public struct TokenBucket: Sendable, Equatable {
    public enum Decision: Equatable, Sendable {
        case allow
        case reject(retryAfter: TimeInterval)

        /// Retry-After in whole seconds, at least 1.
        public var retryAfterSeconds: Int? {
            if case .reject(let t) = self { return max(1, Int(t.rounded(.up))) }
            return nil
        }
    }

    public let capacity: Double
    public let ratePerSecond: Double
    public private(set) var tokens: Double
    private var last: Date

    public init(_ limit: RateLimit, now: Date) {
        capacity = Double(limit.count)
        ratePerSecond = Double(limit.count) / limit.seconds
        tokens = capacity
        last = now
    }

    private mutating func refill(_ now: Date) {
        // A clock that steps back adds nothing and does not move `last` backwards.
        let elapsed = max(0, now.timeIntervalSince(last))
        tokens = min(capacity, tokens + elapsed * ratePerSecond)
        if now > last { last = now }
    }

    /// Whether a token is available now, without taking it.
    public mutating func check(now: Date) -> Decision {
        refill(now)
        return tokens >= 1 ? .allow : .reject(retryAfter: (1 - tokens) / ratePerSecond)
    }

    public mutating func take(now: Date) -> Decision {
        let d = check(now: now)
        if d == .allow { tokens -= 1 }
        return d
    }
}

/// A dictionary with a size bound, for tables keyed by client-controlled data (host names, addresses,
/// tokens). Two generations: when the young one fills half the bound, the old one is dropped whole, so
/// the entries forgotten are those not touched for the longest; lookups promote. O(1) amortized.
public struct BoundedTable<Key: Hashable, Value> {
    public let capacity: Int
    private var young: [Key: Value] = [:]
    private var old: [Key: Value] = [:]
    public private(set) var evictions = 0

    public init(capacity: Int) {
        precondition(capacity >= 2)
        self.capacity = capacity
    }

    public var count: Int { young.count + old.count }

    public subscript(key: Key) -> Value? {
        mutating get {
            if let v = young[key] { return v }
            guard let v = old.removeValue(forKey: key) else { return nil }
            insert(key, v)
            return v
        }
        set {
            if let v = newValue {
                old.removeValue(forKey: key)
                insert(key, v)
            } else {
                young.removeValue(forKey: key)
                old.removeValue(forKey: key)
            }
        }
    }

    /// The value for `key`, created by `make` when absent.
    public mutating func value(_ key: Key, orInsert make: () -> Value) -> Value {
        if let v = self[key] { return v }
        let v = make()
        self[key] = v
        return v
    }

    private mutating func insert(_ key: Key, _ value: Value) {
        if young[key] == nil && young.count >= capacity / 2 {
            evictions += old.count
            old = young
            young = [:]
        }
        young[key] = value
    }
}

/// Single flight per key: the first caller leads (asks upstream), the others wait for its answer.
/// Bounded in keys and waiters; every waiter has a deadline so a stuck leader cannot wedge followers.
public struct InflightTable<Key: Hashable, Waiter> {
    public enum Join: Equatable { case lead, follow, overloaded }
    private struct Entry {
        var waiters: [(waiter: Waiter, deadline: Date)] = []
    }
    public let maxKeys: Int
    public let maxWaitersPerKey: Int
    private var entries: [Key: Entry] = [:]

    public init(maxKeys: Int, maxWaitersPerKey: Int) {
        self.maxKeys = maxKeys
        self.maxWaitersPerKey = maxWaitersPerKey
    }

    public var count: Int { entries.count }
    public func isInflight(_ key: Key) -> Bool { entries[key] != nil }
    public func waiterCount(_ key: Key) -> Int { entries[key]?.waiters.count ?? 0 }

    /// `.lead` when nobody leads `key` (the waiter is not stored: the caller is the leader), `.follow` when
    /// the waiter was queued behind the leader, `.overloaded` when a bound is reached (answer "busy").
    public mutating func join(_ key: Key, _ waiter: Waiter, deadline: Date) -> Join {
        if entries[key] == nil {
            guard entries.count < maxKeys else { return .overloaded }
            entries[key] = Entry()
            return .lead
        }
        guard entries[key]!.waiters.count < maxWaitersPerKey else { return .overloaded }
        entries[key]!.waiters.append((waiter, deadline))
        return .follow
    }

    /// Ends the flight for `key`; returns the waiters to hand the leader's answer to.
    public mutating func finish(_ key: Key) -> [Waiter] {
        entries.removeValue(forKey: key)?.waiters.map(\.waiter) ?? []
    }

    /// Removes one waiter (its own timeout fired); nil when it was already answered.
    public mutating func remove(_ key: Key, where match: (Waiter) -> Bool) -> Waiter? {
        guard let i = entries[key]?.waiters.firstIndex(where: { match($0.waiter) }) else { return nil }
        return entries[key]!.waiters.remove(at: i).waiter
    }

    /// Removes and returns every waiter whose deadline has passed; the leader keeps its slot.
    public mutating func expire(now: Date) -> [Waiter] {
        var out: [Waiter] = []
        for key in Array(entries.keys) {
            let (late, onTime) = entries[key]!.waiters.reduce(into: ([Waiter](), [(waiter: Waiter, deadline: Date)]()))
            {
                if $1.deadline <= now { $0.0.append($1.waiter) } else { $0.1.append($1) }
            }
            entries[key]!.waiters = onTime
            out += late
        }
        return out
    }
}
