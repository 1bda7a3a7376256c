import SeedCore

/// One in-flight piece of work that many callers wait for. The leader calls `finish` exactly once;
/// followers `wait`, with a timeout so a stuck leader cannot wedge them. A follower that times out gets
/// `.timedOut` and must not start the work itself (that is what the flight exists to prevent).
final class Flight<Value: Sendable, Failure: Error & Sendable>: Sendable {
    enum WaitResult: Sendable {
        case finished(Result<Value, Failure>)
        case timedOut
    }

    private struct Waiter {
        var continuation: CheckedContinuation<WaitResult, Never>
        var timer: Task<Void, Never>?
    }
    private struct State {
        var result: Result<Value, Failure>?
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Lock(State())

    init() {}

    /// Number of callers waiting right now (for metrics).
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    func finish(_ result: Result<Value, Failure>) {
        let waiters = state.withLock { s -> [Waiter] in
            precondition(s.result == nil, "a flight finishes once")
            s.result = result
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters {
            w.timer?.cancel()
            w.continuation.resume(returning: .finished(result))
        }
    }

    func wait(timeout: Duration) async -> WaitResult {
        await withCheckedContinuation { (c: CheckedContinuation<WaitResult, Never>) in
            let id: UInt64? = state.withLock { s in
                if s.result != nil { return nil }
                let id = s.nextID
                s.nextID += 1
                s.waiters[id] = Waiter(continuation: c, timer: nil)
                return id
            }
            guard let id else {
                let r = state.withLock { $0.result! }
                c.resume(returning: .finished(r))
                return
            }
            let timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                if Task.isCancelled { return }
                guard let self else { return }
                if let w = self.state.withLock({ $0.waiters.removeValue(forKey: id) }) {
                    w.continuation.resume(returning: .timedOut)
                }
            }
            // Keep the timer only while the waiter is still registered (finish may have run already).
            let stillWaiting = state.withLock { s -> Bool in
                guard s.waiters[id] != nil else { return false }
                s.waiters[id]!.timer = timer
                return true
            }
            if !stillWaiting { timer.cancel() }
        }
    }
}

/// Flights keyed by what they fetch. `join` makes the first caller the leader; the entry goes away when
/// the leader finishes, so the table holds only running work (bounded by the number of distinct keys
/// in flight, which for packages is the handful of (os, arch) pairs).
final class FlightTable<Key: Hashable & Sendable, Value: Sendable, Failure: Error & Sendable>: Sendable {
    enum Join {
        case lead(Flight<Value, Failure>)
        case follow(Flight<Value, Failure>)
    }
    private let flights = Lock([Key: Flight<Value, Failure>]())

    init() {}

    func join(_ key: Key) -> Join {
        flights.withLock { t in
            if let f = t[key] { return .follow(f) }
            let f = Flight<Value, Failure>()
            t[key] = f
            return .lead(f)
        }
    }

    /// Removes the entry, then wakes the followers; a caller arriving after this starts a new flight.
    func finish(_ key: Key, _ flight: Flight<Value, Failure>, _ result: Result<Value, Failure>) {
        flights.withLock { t in
            if t[key] === flight { t[key] = nil }
        }
        flight.finish(result)
    }

    var inFlight: Int { flights.withLock { $0.count } }
}
