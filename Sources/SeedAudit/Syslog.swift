import Foundation
import Glibc
public import SeedCore

/// Where and how audit records are forwarded to a syslog collector (RFC 5424).
public struct SyslogOptions: Sendable, Equatable {
    public enum Transport: String, Sendable { case udp, tcp }
    public var transport: Transport
    public var host: String
    public var port: UInt16
    public var appName: String
    /// RFC 5424 facility code; 13 is "log audit".
    public var facility: Int = 13
    /// Records waiting to be sent; beyond this they are dropped and counted, never blocking the log.
    public var queueCapacity: Int = 10_000

    public init(transport: Transport, host: String, port: UInt16, appName: String = "seed-mirror") {
        self.transport = transport
        self.host = host
        self.port = port
        self.appName = appName
    }
}

/// Sends each audit line as one RFC 5424 message from a background thread. `send` never blocks: when
/// the queue is full the record is dropped and `seedmirror_syslog_dropped_total` counts it.
public final class SyslogForwarder: @unchecked Sendable {
    // `cond` guards every mutable property below.
    private let cond = NSCondition()
    private var queue: [[UInt8]] = []
    private var head = 0
    private var stopping = false
    private var inFlight = 0
    private var socketFD: CInt = -1
    private let options: SyslogOptions
    private let logger: Logger
    private let hostname: String
    private let sentCounter: Counter
    private let droppedCounter: Counter
    private var thread: Thread?

    public init(options: SyslogOptions, metrics: MetricsRegistry? = nil, logger: Logger = .discard) {
        self.options = options
        self.logger = logger
        let m = metrics ?? MetricsRegistry()
        sentCounter = m.counter(MetricNames.syslogSent)
        droppedCounter = m.counter(MetricNames.syslogDropped)
        var buf = [CChar](repeating: 0, count: 256)
        hostname = gethostname(&buf, 255) == 0 ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "-"
        let t = Thread { [self] in run() }
        t.name = "seed-audit-syslog"
        thread = t
        t.start()
    }

    public var sent: UInt64 { sentCounter.current }
    public var dropped: UInt64 { droppedCounter.current }

    /// Queues one audit line for the collector.
    public func send(line: String, event: String, time: AuditTime) {
        let message = SyslogForwarder.format(
            line: line, event: event, time: time, facility: options.facility,
            severity: SyslogForwarder.severity(event: event), hostname: hostname, appName: options.appName,
            procID: String(getpid()))
        let framed = options.transport == .tcp ? Array("\(message.count) ".utf8) + message : message
        cond.lock()
        if stopping || queue.count - head >= options.queueCapacity {
            cond.unlock()
            droppedCounter.increment()
            return
        }
        queue.append(framed)
        cond.signal()
        cond.unlock()
    }

    /// Waits until the queue is empty or `timeout` passes (shutdown, tests). True when drained.
    @discardableResult
    public func drain(timeout: Duration = .seconds(5)) -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds) + 1e-18 * Double(timeout.components.attoseconds))
        cond.lock()
        defer { cond.unlock() }
        while queue.count - head > 0 || inFlight > 0 {
            if !cond.wait(until: deadline) { return false }
        }
        return true
    }

    public func close() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }

    deinit { if socketFD >= 0 { _ = Glibc.close(socketFD) } }

    /// Severity by event: warnings for gaps and breaker trips, notices for refusals, info otherwise.
    static func severity(event: String) -> Int {
        switch event {
        case AuditRecord.gapEvent, "breaker-tripped", "outcome-unknown": 4
        case "refused", "rate-limited", "quota-exhausted", "upstream-error", "revoke": 5
        default: 6
        }
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` (RFC 5424 §6); MSG is the audit line.
    public static func format(
        line: String, event: String, time: AuditTime, facility: Int, severity: Int, hostname: String,
        appName: String, procID: String
    ) -> [UInt8] {
        func field(_ s: String, max: Int) -> String {
            // Header fields are PRINTUSASCII without spaces; an empty one is the NILVALUE.
            let clean = String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value >= 33 && $0.value <= 126 }))
            return clean.isEmpty ? "-" : String(clean.prefix(max))
        }
        let pri = facility * 8 + severity
        let head = "<\(pri)>1 \(time.rfc3339) \(field(hostname, max: 255)) \(field(appName, max: 48)) "
            + "\(field(procID, max: 128)) \(field(event, max: 32)) - "
        return Array(head.utf8) + Array(line.utf8)
    }

    private func run() {
        while true {
            cond.lock()
            while queue.count - head == 0 && !stopping { cond.wait() }
            if queue.count - head == 0 && stopping {
                cond.unlock()
                return
            }
            let msg = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            inFlight = 1
            cond.unlock()
            let ok = transmit(msg)
            if ok { sentCounter.increment() } else { droppedCounter.increment() }
            cond.lock()
            inFlight = 0
            cond.broadcast()
            cond.unlock()
        }
    }

    private func transmit(_ msg: [UInt8]) -> Bool {
        for attempt in 0..<2 {
            if socketFD < 0 { socketFD = connectSocket() }
            guard socketFD >= 0 else {
                if attempt == 0 { continue }
                return false
            }
            let n = msg.withUnsafeBytes { Glibc.send(socketFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n == msg.count { return true }
            logger.warning("syslog send failed", [("syslog.host", options.host), ("errno", String(errno))])
            _ = Glibc.close(socketFD)
            socketFD = -1
        }
        return false
    }

    private func connectSocket() -> CInt {
        var hints = addrinfo()
        hints.ai_socktype = Int32(options.transport == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue))
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(options.host, String(options.port), &hints, &res) == 0, let first = res else {
            logger.warning("syslog host not resolved", [("syslog.host", options.host)])
            return -1
        }
        defer { freeaddrinfo(res) }
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd >= 0 {
                // A stuck collector must not wedge the forwarder for long.
                var tv = timeval(tv_sec: 2, tv_usec: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                _ = Glibc.close(fd)
            }
            ai = a.pointee.ai_next
        }
        logger.warning("syslog collector unreachable", [("syslog.host", options.host), ("syslog.port", String(options.port))])
        return -1
    }
}
