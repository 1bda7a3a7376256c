import Dispatch
import SeedHTTPServer
import SeedCore

/// A simulator response body delivered piece by piece: throttled to a bandwidth and/or broken at an offset
/// (reset, stall, early end) to imitate a slow or failing vendor cloud.
final class SimulatorBodyStream: BodyStream {
    enum CutAction: Sendable {
        /// The producer fails: the server resets the connection.
        case fail
        /// Nothing more for this long, then fail.
        case stall(Duration)
        /// End early although the declared length is longer.
        case end
    }

    struct Plan: Sendable {
        var bytesPerSecond: Int?
        var cut: (offset: UInt64, action: CutAction)?
    }

    private struct State {
        var piece = 0
        var offset = 0
        var sent: UInt64 = 0
        var cancelled = false
        var started: ContinuousClock.Instant?
    }

    private let pieces: [[UInt8]]
    private let plan: Plan
    private let state = Lock(State())

    init(pieces: [[UInt8]], plan: Plan) {
        self.pieces = pieces
        self.plan = plan
    }

    func pull(maxBytes: Int, _ deliver: @escaping @Sendable (BodyChunk) -> Void) {
        enum Step {
            case chunk([UInt8], delay: Duration)
            case done(BodyChunk, delay: Duration)
        }
        let step: Step = state.withLock { s in
            if s.cancelled { return .done(.failed("cancelled"), delay: .zero) }
            let now = ContinuousClock.now
            if s.started == nil { s.started = now }
            if let cut = plan.cut, s.sent >= cut.offset {
                switch cut.action {
                case .fail: return .done(.failed("simulated reset"), delay: .zero)
                case .end: return .done(.end, delay: .zero)
                case .stall(let d): return .done(.failed("simulated stall"), delay: d)
                }
            }
            while s.piece < pieces.count && s.offset >= pieces[s.piece].count {
                s.piece += 1
                s.offset = 0
            }
            guard s.piece < pieces.count else { return .done(.end, delay: .zero) }
            var n = min(maxBytes, 64 * 1024, pieces[s.piece].count - s.offset)
            if let cut = plan.cut { n = min(n, Int(cut.offset - s.sent)) }
            if let bps = plan.bytesPerSecond, bps > 0 { n = min(n, max(1, bps / 20)) }
            n = max(n, 1)
            let chunk = Array(pieces[s.piece][s.offset..<(s.offset + n)])
            s.offset += n
            s.sent += UInt64(n)
            var delay = Duration.zero
            if let bps = plan.bytesPerSecond, bps > 0, let started = s.started {
                // Pace so that by any time t no more than bps * t bytes have gone out.
                let due = started + .milliseconds(Int(Double(s.sent) * 1000 / Double(bps)))
                if due > now { delay = due - now }
            }
            return .chunk(chunk, delay: delay)
        }
        let (chunk, delay): (BodyChunk, Duration)
        switch step {
        case .chunk(let bytes, let d): (chunk, delay) = (.data(bytes), d)
        case .done(let c, let d): (chunk, delay) = (c, d)
        }
        if delay == .zero {
            deliver(chunk)
        } else {
            let (s, atto) = delay.components
            let nanos = Int(s) * 1_000_000_000 + Int(atto / 1_000_000_000)
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanos)) { deliver(chunk) }
        }
    }

    func cancel() { state.withLock { $0.cancelled = true } }
}
