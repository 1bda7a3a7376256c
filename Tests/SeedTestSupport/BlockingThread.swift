import Foundation

/// Runs blocking test-client code on a thread of its own and awaits the result. Blocking sockets must not
/// sit on Swift's cooperative pool: it has one thread per core, and the server under test needs those
/// threads for its deferred answers.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let t = Thread { c.resume(with: Result { try body() }) }
        t.start()
    }
}
