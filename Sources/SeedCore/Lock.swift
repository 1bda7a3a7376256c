#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`, with the `withLock` shape of `Synchronization.Mutex`.
///
/// The project uses this instead of `Synchronization.Mutex` for state shared between threads because
/// ThreadSanitizer models `pthread_mutex_lock`/`unlock` (it intercepts them), while `Mutex` on Linux takes its
/// contended path inside the uninstrumented `libswiftSynchronization.so` (a compare-and-swap, then a futex
/// system call): TSan misses that happens-before edge and reports every access inside a contended `withLock`
/// as a race (docs/hardening.md). With this type a TSan report is a real race.
///
/// A class, so it can be captured by escaping closures and shared by reference like a `let` `Mutex`; the
/// mutex lives in its own allocation so its address never moves. Not recursive: calling `withLock` again
/// from inside the closure on the same lock deadlocks (as with `Mutex`).
public final class Lock<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ initialValue: consuming sending Value) {
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed with error \(rc)")
        value = initialValue
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value and returns its result; the lock is released when
    /// `body` returns or throws.
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed with error \(rc)")
        defer {
            let rc = pthread_mutex_unlock(mutex)
            precondition(rc == 0, "pthread_mutex_unlock failed with error \(rc)")
        }
        return try body(&value)
    }
}
