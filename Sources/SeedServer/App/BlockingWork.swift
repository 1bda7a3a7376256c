import Foundation
import SeedCore

/// Runs blocking work (file hashing, imports, fsync, ledger reads) on `BlockingPool.shared`, so the Swift
/// concurrency pool, which has one thread per core, never waits for the disk.
func onBlockingThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        BlockingPool.shared.submit { c.resume(returning: body()) }
    }
}

/// `onBlockingThread` for throwing work.
func onBlockingThread<T: Sendable>(throwing body: @escaping @Sendable () throws -> T)
    async throws -> T
{
    let r: Result<T, any Error> = await onBlockingThread {
        do { return .success(try body()) } catch { return .failure(error) }
    }
    return try r.get()
}

/// At most `maxThreads` threads running submitted jobs in submission order; a thread is started when a job
/// arrives and fewer than `maxThreads` run, and ends when the queue is empty. Bounded so that a burst (1,000
/// first package requests after a start, all waiting for the same blobs to be verified) queues jobs instead
/// of starting a thread, with its stack and malloc arena, for each. A job must not wait for a job submitted
/// after it (jobs here only do disk work and take store locks that running jobs hold). `name` names the
/// threads.
final class BlockingPool: Sendable {
    static let shared = BlockingPool(maxThreads: 16, name: "seed-mirror-io")

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        /// Index of the next job to run in `jobs` (the array is compacted when it drains).
        var next = 0
        var threads = 0
    }

    let maxThreads: Int
    private let name: String
    private let state = Lock(State())

    init(maxThreads: Int, name: String) {
        precondition(maxThreads > 0)
        self.maxThreads = maxThreads
        self.name = name
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        let start = state.withLock { s -> Bool in
            s.jobs.append(job)
            guard s.threads < maxThreads else { return false }
            s.threads += 1
            return true
        }
        if start {
            let thread = Thread { [self] in work() }
            thread.name = name
            thread.start()
        }
    }

    /// Threads running now (for tests).
    var threadCount: Int { state.withLock { $0.threads } }

    private func work() {
        while let job = take() { job() }
    }

    private func take() -> (@Sendable () -> Void)? {
        state.withLock { s -> (@Sendable () -> Void)? in
            guard s.next < s.jobs.count else {
                s.jobs.removeAll(keepingCapacity: s.jobs.capacity <= 1024)
                s.next = 0
                s.threads -= 1
                return nil
            }
            let job = s.jobs[s.next]
            s.jobs[s.next] = {}  // what the job captured is released once it has run
            s.next += 1
            return job
        }
    }
}
