import Foundation
import SeedNet
import SeedCore
import Synchronization
import Testing

final class LoopRecorder: Sendable {
    let fired = Lock<[Int]>([])
    let count = Lock(0)
    let offLoop = Atomic<Int>(0)
}

@Suite struct TransportEventLoopTests {
    @Test func timersFireInDeadlineOrderAndCancelledOnesDoNot() async throws {
        let loop = try EventLoop(index: 0)
        loop.start(name: "test-loop")
        let r = LoopRecorder()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            loop.execute {
                let now = loop.now
                #expect(loop.inLoop)
                for (i, ms) in [30, 10, 20, 5, 40].enumerated() {
                    let id = loop.schedule(at: now + Int64(ms) * 1_000_000) { r.fired.withLock { $0.append(i) } }
                    if i == 4 { loop.cancel(id) }
                }
                _ = loop.schedule(at: now + 60_000_000) { done.resume() }
            }
        }
        #expect(r.fired.withLock { $0 } == [3, 1, 2, 0])
        loop.stop()
        await withCheckedContinuation { c in loop.whenStopped { c.resume() } }
    }

    @Test func tasksFromManyThreadsAllRunOnTheLoop() async throws {
        let loop = try EventLoop(index: 1)
        loop.start(name: "test-loop")
        let r = LoopRecorder()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<500 {
                        loop.execute {
                            if !loop.inLoop { r.offLoop.add(1, ordering: .relaxed) }
                            r.count.withLock { $0 += 1 }
                        }
                    }
                }
            }
        }
        #expect(await eventually(5) { r.count.withLock { $0 } == 4000 })
        #expect(r.offLoop.load(ordering: .relaxed) == 0)
        loop.stop()
        await withCheckedContinuation { c in loop.whenStopped { c.resume() } }
    }

    @Test func stoppedLoopsGiveBackTheirDescriptors() async throws {
        let before = eventDescriptors()
        for i in 0..<100 {
            let loop = try EventLoop(index: i)
            loop.start(name: "test-loop")
            loop.stop()
            await withCheckedContinuation { c in loop.whenStopped { c.resume() } }
        }
        // Each leaked loop would keep an epoll and an eventfd descriptor (200 in all); other suites' servers
        // starting meanwhile account for a handful at most.
        #expect(await eventually(2) { eventDescriptors() - before < 20 })
    }
}
