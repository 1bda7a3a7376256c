import Dispatch
import Foundation
import SeedCore
import Testing

@testable import SeedServer

/// The pool that runs the mirror's blocking work: bounded threads, every job run, threads end when idle.
@Suite struct BlockingPoolTests {
    @Test func atMostMaxThreadsRunEveryJobAndEndWhenDrained() throws {
        let pool = BlockingPool(maxThreads: 3, name: "test-pool")
        struct Tally {
            var running = 0
            var most = 0
            var started: [Int] = []
        }
        let tally = Lock(Tally())
        let done = DispatchGroup()
        for i in 0..<24 {
            done.enter()
            pool.submit {
                tally.withLock {
                    $0.running += 1
                    $0.most = max($0.most, $0.running)
                    $0.started.append(i)
                }
                // Hold the first jobs until three run at once (however slowly threads start on a loaded
                // machine), so the bound is shown reached as well as never passed.
                let until = Date().addingTimeInterval(5)
                while tally.withLock({ $0.most }) < 3 && Date() < until { usleep(1_000) }
                usleep(1_000)
                tally.withLock { $0.running -= 1 }
                done.leave()
            }
        }
        #expect(done.wait(timeout: .now() + 20) == .success)
        let t = tally.withLock { $0 }
        #expect(t.most == 3, "at most 3 jobs at once, and the bound is used: \(t.most)")
        // Every job ran once (threads take them in submission order, but two jobs taken back to back may
        // record their start in either order).
        #expect(t.started.sorted() == Array(0..<24))
        // Threads end once the queue is empty.
        let deadline = Date().addingTimeInterval(5)
        while pool.threadCount > 0 && Date() < deadline { usleep(1_000) }
        #expect(pool.threadCount == 0)
        // And start again for later work.
        let again = DispatchSemaphore(value: 0)
        pool.submit { again.signal() }
        #expect(again.wait(timeout: .now() + 5) == .success)
    }

    @Test func onBlockingThreadReturnsAndThrowsThroughThePool() async throws {
        struct Refused: Error {}
        #expect(await onBlockingThread { 41 + 1 } == 42)
        await #expect(throws: Refused.self) {
            try await onBlockingThread(throwing: { () throws -> Int in throw Refused() })
        }
        // More concurrent calls than the shared pool has threads all complete.
        let sum = await withTaskGroup(of: Int.self) { group in
            for i in 0..<64 { group.addTask { await onBlockingThread { usleep(2_000); return i } } }
            return await group.reduce(0, +)
        }
        #expect(sum == (0..<64).reduce(0, +))
    }
}
