import Dispatch
import Glibc

/// Delivers SIGTERM, SIGINT and SIGHUP as values of an async stream instead of running handlers in signal
/// context. Creating one ignores the default action of those signals for the whole process; `cancel`
/// restores the defaults.
final class SignalWatcher: @unchecked Sendable {
    enum Event: Sendable, Equatable {
        case terminate(Int32)
        case reload
    }

    let events: AsyncStream<Event>
    private let sources: [any DispatchSourceSignal]
    private let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    init() {
        var continuation: AsyncStream<Event>.Continuation!
        events = AsyncStream { continuation = $0 }
        let c = continuation!
        var made: [any DispatchSourceSignal] = []
        for s in signals {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler { c.yield(s == SIGHUP ? .reload : .terminate(s)) }
            source.resume()
            made.append(source)
        }
        sources = made
    }

    func cancel() {
        for s in sources { s.cancel() }
        for s in signals { signal(s, SIG_DFL) }
    }
}
