import CSeedShim
import Foundation
import Glibc
public import SeedPosix
import SeedCore
import Synchronization

/// Something registered with an event loop. Called only on that loop's thread.
public protocol EventHandler: AnyObject {
    /// `events` is the epoll mask (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, ...).
    func handleEvents(_ events: UInt32)
}

/// Identifies a registration on one loop; stale tokens (after deregistration) are ignored.
public struct EventToken: Hashable, Sendable {
    fileprivate let raw: UInt64
}

/// Identifies a scheduled timer on one loop.
public struct TimerID: Hashable, Sendable {
    fileprivate let raw: UInt64
}

/// Epoll event bits, read once from the C headers.
public enum EpollEvents {
    public static let input = seed_EPOLLIN()
    public static let output = seed_EPOLLOUT()
    public static let error = seed_EPOLLERR()
    public static let hangup = seed_EPOLLHUP()
    public static let readHangup = seed_EPOLLRDHUP()
    public static let edgeTriggered = seed_EPOLLET()
}

/// The monotonic clock in nanoseconds.
public func monotonicNanoseconds() -> Int64 { seed_monotonic_ns() }

/// One epoll loop on its own thread. Registration, timers and handler callbacks are confined to the
/// loop thread; `execute` and `stop` may be called from any thread (they wake the loop through an eventfd).
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epollFD: CInt
    private let wakeFD: CInt
    private var slots: [(generation: UInt32, handler: (any EventHandler)?)] = []
    private var freeSlots: [Int] = []
    private let pending = Lock<[@Sendable () -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    private var timerHeap: [(deadline: Int64, id: UInt64)] = []
    private var timerActions: [UInt64: () -> Void] = [:]
    private var nextTimerID: UInt64 = 1
    private var threadID: pthread_t?
    private var threadName: String?
    private let finished = Lock<[@Sendable () -> Void]?>([])
    /// The time at the start of the current loop turn (monotonic ns); cheap to read from handlers.
    public private(set) var now: Int64 = monotonicNanoseconds()

    private static let wakeToken: UInt64 = UInt64.max

    public init(index: Int) throws(SystemError) {
        self.index = index
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard ep >= 0 else { throw SystemError.current("epoll_create1") }
        let ev = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard ev >= 0 else {
            let e = SystemError.current("eventfd")
            close(ep)
            throw e
        }
        epollFD = ep
        wakeFD = ev
        var event = epoll_event()
        seed_epoll_event_set(&event, seed_EPOLLIN(), Self.wakeToken)
        guard epoll_ctl(ep, EPOLL_CTL_ADD, ev, &event) == 0 else {
            let e = SystemError.current("epoll_ctl")
            close(ep)
            close(ev)
            throw e
        }
    }

    deinit {
        close(epollFD)
        close(wakeFD)
    }

    /// True on this loop's own thread.
    public var inLoop: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    // MARK: registration (loop thread, or before the loop runs)

    public func register(fd: CInt, events: UInt32, handler: any EventHandler) throws(SystemError) -> EventToken {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot].handler = handler
        } else {
            slot = slots.count
            slots.append((0, handler))
        }
        let token = EventToken(raw: UInt64(slots[slot].generation) << 32 | UInt64(slot))
        var event = epoll_event()
        seed_epoll_event_set(&event, events, token.raw)
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) != 0 {
            let e = SystemError.current("epoll_ctl ADD")
            releaseSlot(slot)
            throw e
        }
        return token
    }

    public func modify(fd: CInt, token: EventToken, events: UInt32) throws(SystemError) {
        var event = epoll_event()
        seed_epoll_event_set(&event, events, token.raw)
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) != 0 { throw SystemError.current("epoll_ctl MOD") }
    }

    /// Removes the descriptor from epoll (call before closing it) and forgets the handler.
    public func deregister(fd: CInt, token: EventToken) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        let slot = Int(token.raw & 0xFFFF_FFFF)
        if slot < slots.count, slots[slot].generation == UInt32(token.raw >> 32) { releaseSlot(slot) }
    }

    private func releaseSlot(_ slot: Int) {
        slots[slot].handler = nil
        slots[slot].generation &+= 1
        freeSlots.append(slot)
    }

    // MARK: timers (loop thread)

    /// Runs `action` on the loop once `deadline` (monotonic ns) has passed.
    public func schedule(at deadline: Int64, _ action: @escaping () -> Void) -> TimerID {
        let id = nextTimerID
        nextTimerID += 1
        timerActions[id] = action
        timerHeap.append((deadline, id))
        var i = timerHeap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if timerHeap[parent].deadline <= timerHeap[i].deadline { break }
            timerHeap.swapAt(parent, i)
            i = parent
        }
        return TimerID(raw: id)
    }

    public func cancel(_ timer: TimerID) {
        timerActions[timer.raw] = nil
        // Stale heap entries are dropped when they come due; rebuild if they pile up.
        if timerHeap.count > 64 && timerHeap.count > 4 * timerActions.count {
            timerHeap = timerHeap.filter { timerActions[$0.id] != nil }
            timerHeap.sort { $0.deadline < $1.deadline }
        }
    }

    private func popTimer() -> (deadline: Int64, id: UInt64) {
        let top = timerHeap[0]
        let last = timerHeap.removeLast()
        if !timerHeap.isEmpty {
            timerHeap[0] = last
            var i = 0
            let n = timerHeap.count
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < n && timerHeap[l].deadline < timerHeap[m].deadline { m = l }
                if r < n && timerHeap[r].deadline < timerHeap[m].deadline { m = r }
                if m == i { break }
                timerHeap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    private func runDueTimers() -> Int32 {
        while let first = timerHeap.first {
            if timerActions[first.id] == nil {
                _ = popTimer()
                continue
            }
            if first.deadline > now {
                let ms = (first.deadline - now + 999_999) / 1_000_000
                return Int32(min(ms, 60_000))
            }
            _ = popTimer()
            if let action = timerActions.removeValue(forKey: first.id) { action() }
            now = monotonicNanoseconds()
        }
        return -1
    }

    // MARK: cross-thread

    /// Runs `task` on the loop thread soon. Safe from any thread.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        pending.withLock { $0.append(task) }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func runPendingTasks() {
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD, &value, 8)
        let tasks = pending.withLock { tasks in
            let t = tasks
            tasks.removeAll(keepingCapacity: true)
            return t
        }
        for task in tasks { task() }
    }

    /// Asks the loop to return from `run()` after the current turn. Safe from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    /// Calls `body` (on some thread) once the loop thread has exited; at once if it already has.
    public func whenStopped(_ body: @escaping @Sendable () -> Void) {
        let runNow = finished.withLock { list -> Bool in
            guard list != nil else { return true }
            list!.append(body)
            return false
        }
        if runNow { body() }
    }

    // MARK: running

    /// Starts the loop on a new thread.
    public func start(name: String) {
        let thread = Thread { [self] in
            self.run()
        }
        threadName = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Runs the loop on the calling thread until `stop()`.
    public func run() {
        threadID = pthread_self()
        if let name = threadName { seed_set_thread_name(String(name.prefix(15))) }
        let capacity = 256
        let events = UnsafeMutableRawPointer.allocate(byteCount: capacity * seed_epoll_event_size(), alignment: 8)
        defer { events.deallocate() }
        let typed = events.bindMemory(to: epoll_event.self, capacity: capacity)
        while !stopRequested.load(ordering: .acquiring) {
            now = monotonicNanoseconds()
            let timeout = runDueTimers()
            let n = epoll_wait(epollFD, typed, Int32(capacity), timeout)
            now = monotonicNanoseconds()
            if n < 0 {
                if seed_errno() == EINTR { continue }
                preconditionFailure("epoll_wait failed: \(SystemError.current("epoll_wait"))")
            }
            for i in 0..<Int(n) {
                let ev = events + i * seed_epoll_event_size()
                let evp = ev.assumingMemoryBound(to: epoll_event.self)
                let data = seed_epoll_event_data(evp)
                let mask = seed_epoll_event_events(evp)
                if data == Self.wakeToken {
                    runPendingTasks()
                    continue
                }
                let slot = Int(data & 0xFFFF_FFFF)
                guard slot < slots.count, slots[slot].generation == UInt32(data >> 32),
                    let handler = slots[slot].handler
                else { continue }
                handler.handleEvents(mask)
            }
        }
        runPendingTasks()
        let waiters = finished.withLock { list in
            let w = list ?? []
            list = nil
            return w
        }
        for w in waiters { w() }
    }
}
