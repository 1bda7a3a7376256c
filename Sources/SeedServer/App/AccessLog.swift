import Dispatch
import Foundation
import SeedAudit
import SeedCore
public import SeedHTTPServer
import Synchronization

/// Formats one access-log entry as a JSON line (no trailing newline). The path is redacted again here
/// (every `token=` value) so a token never reaches the log even if a caller forgot.
public func accessLogLine(_ e: AccessLogEntry) -> String {
    var f = AccessLogFormatter()
    var out: [UInt8] = []
    f.append(e, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Writes access-log lines as bytes, with the time's date-and-seconds part cached per second (one writer
/// thread formats every line, so one formatter serves a whole log).
struct AccessLogFormatter {
    private var second = Int.min
    /// `"time":"2026-12-03T16:00:00.` for `second`.
    private var timePrefix: [UInt8] = []

    mutating func append(_ e: AccessLogEntry, to out: inout [UInt8]) {
        let whole = Int(e.time.rounded(.down))
        let millis = Int(((e.time - Double(whole)) * 1000).rounded(.down))
        if whole != second {
            second = whole
            timePrefix = Array("{\"time\":\"".utf8)
            var t = tm()
            var tt = time_t(whole)
            gmtime_r(&tt, &t)
            JSONBytes.appendPadded(Int(t.tm_year) + 1900, width: 4, to: &timePrefix)
            timePrefix.append(UInt8(ascii: "-"))
            JSONBytes.appendPadded(Int(t.tm_mon) + 1, width: 2, to: &timePrefix)
            timePrefix.append(UInt8(ascii: "-"))
            JSONBytes.appendPadded(Int(t.tm_mday), width: 2, to: &timePrefix)
            timePrefix.append(UInt8(ascii: "T"))
            JSONBytes.appendPadded(Int(t.tm_hour), width: 2, to: &timePrefix)
            timePrefix.append(UInt8(ascii: ":"))
            JSONBytes.appendPadded(Int(t.tm_min), width: 2, to: &timePrefix)
            timePrefix.append(UInt8(ascii: ":"))
            JSONBytes.appendPadded(Int(t.tm_sec), width: 2, to: &timePrefix)
            timePrefix.append(UInt8(ascii: "."))
        }
        out.append(contentsOf: timePrefix)
        JSONBytes.appendPadded(millis, width: 3, to: &out)
        JSONBytes.appendRaw("Z\",\"client\":", to: &out)
        JSONBytes.appendQuoted(e.clientAddress, to: &out)
        JSONBytes.appendRaw(",\"port\":", to: &out)
        JSONBytes.appendInteger(e.clientPort, to: &out)
        JSONBytes.appendRaw(",\"method\":", to: &out)
        JSONBytes.appendQuoted(e.method, to: &out)
        JSONBytes.appendRaw(",\"path\":", to: &out)
        JSONBytes.appendQuoted(redactedTarget(e.path), to: &out)
        JSONBytes.appendRaw(",\"status\":", to: &out)
        JSONBytes.appendInteger(e.status, to: &out)
        JSONBytes.appendRaw(",\"bytes\":", to: &out)
        JSONBytes.appendInteger(e.bytes, to: &out)
        JSONBytes.appendRaw(",\"ms\":", to: &out)
        let ms = (e.durationMilliseconds * 1000).rounded() / 1000
        out.append(contentsOf: ms.description.utf8)
        JSONBytes.appendRaw(",\"tls\":", to: &out)
        JSONBytes.appendQuoted(e.tlsVersion, to: &out)
        JSONBytes.appendRaw(",\"cipher\":", to: &out)
        JSONBytes.appendQuoted(e.tlsCipher, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

/// Replaces the value of every `token` query parameter (any case, also percent-encoded names) with `REDACTED`.
/// Also `apikey` and `api_key`. Returns `target` itself (no copy) when nothing is redacted.
public func redactedTarget(_ target: String) -> String {
    var target = target
    return target.withUTF8 { u -> String? in
        guard let q = u.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        var out: [UInt8]?
        var i = q + 1
        var copied = 0  // bytes of `u` already in `out`
        while i <= u.count {
            var end = i
            while end < u.count && u[end] != UInt8(ascii: "&") { end += 1 }
            var nameEnd = i
            while nameEnd < end && u[nameEnd] != UInt8(ascii: "=") { nameEnd += 1 }
            if isRedactedName(UnsafeBufferPointer(rebasing: u[i..<nameEnd])) {
                if out == nil { out = [] ; out!.reserveCapacity(u.count + 8) }
                out!.append(contentsOf: UnsafeBufferPointer(rebasing: u[copied..<nameEnd]))
                out!.append(contentsOf: "=REDACTED".utf8)
                copied = end
            }
            i = end + 1
        }
        guard var o = out else { return nil }
        o.append(contentsOf: UnsafeBufferPointer(rebasing: u[copied..<u.count]))
        return String(decoding: o, as: UTF8.self)
    } ?? target
}

/// Whether a query parameter name is `token`, `apikey` or `api_key` (any case) once percent-decoded
/// (a name that does not decode is compared as it is).
private func isRedactedName(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
    guard raw.count >= 5 else { return false }
    if !raw.contains(UInt8(ascii: "%")) { return matchesRedactedName(raw) }
    let text = String(decoding: raw, as: UTF8.self)
    var decoded = text.removingPercentEncoding ?? text
    return decoded.withUTF8 { matchesRedactedName($0) }
}

private func matchesRedactedName(_ n: UnsafeBufferPointer<UInt8>) -> Bool {
    if n.contains(where: { $0 >= 0x80 }) {
        // Unicode lower-casing can map a non-ASCII letter to an ASCII one (the Kelvin sign to `k`).
        let name = String(decoding: n, as: UTF8.self).lowercased()
        return name == "token" || name == "apikey" || name == "api_key"
    }
    func lower(_ c: UInt8) -> UInt8 { (65...90).contains(c) ? c | 0x20 : c }
    func equals(_ word: StaticString) -> Bool {
        guard n.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for i in 0..<n.count where lower(n[i]) != w[i] { return false }
        return true
    }
    return equals("token") || equals("apikey") || equals("api_key")
}

/// `2026-12-03T16:00:00.123Z` for seconds since the epoch.
func iso8601Milliseconds(_ t: Double) -> String {
    let whole = Int(t.rounded(.down))
    let millis = Int(((t - Double(whole)) * 1000).rounded(.down))
    var tm = tm()
    var tt = time_t(whole)
    gmtime_r(&tt, &tm)
    func pad(_ v: Int32, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
    return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
        + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
}

/// Writes access-log lines to a file descriptor from a background queue, so loop threads never wait
/// for the disk (nor format the line: `record` only queues the entry). Entries queued while the writer is
/// busy go out together, formatted into one buffer and written with one call. A drain starts `batchDelay`
/// after the first line of a batch (not at once), so a busy server wakes the writer a hundred times a second
/// rather than once per request; `flush()` drains at once. When the writer falls more
/// than `maxPendingLines` behind, lines are dropped and counted (and the count is written once the backlog
/// clears).
public final class JSONLinesAccessLog: AccessLogSink, @unchecked Sendable {
    private struct Queued {
        var entries: [AccessLogEntry] = []
        /// A drain is scheduled or running on `queue`.
        var draining = false
    }

    private let fd: Int32
    private let ownsDescriptor: Bool
    private let queue = DispatchQueue(label: "seed-mirror.access-log")
    private let queued = Lock(Queued())
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    public let maxPendingLines: Int
    /// How long a first queued line waits for more before the writer runs (at most that much of the log is
    /// in memory only; the lines were never fsynced anyway).
    static let batchDelay: DispatchTimeInterval = .milliseconds(10)
    // Owned by `queue`.
    private var formatter = AccessLogFormatter()
    private var buffer: [UInt8] = []

    /// Appends to `path` (created 0640 when missing).
    public init(appendingTo path: String, maxPendingLines: Int = 100_000) throws(SystemErrorText) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw SystemErrorText("cannot open access log \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.ownsDescriptor = true
        self.maxPendingLines = maxPendingLines
    }

    /// Writes to standard error (not owned).
    public init(standardError: Void = (), maxPendingLines: Int = 100_000) {
        self.fd = 2
        self.ownsDescriptor = false
        self.maxPendingLines = maxPendingLines
    }

    public func record(_ entry: AccessLogEntry) {
        if pending.add(1, ordering: .relaxed).newValue > maxPendingLines {
            pending.subtract(1, ordering: .relaxed)
            dropped.add(1, ordering: .relaxed)
            return
        }
        let schedule = queued.withLock { q -> Bool in
            q.entries.append(entry)
            if q.draining { return false }
            q.draining = true
            return true
        }
        if schedule { queue.asyncAfter(deadline: .now() + Self.batchDelay) { [self] in drain() } }
    }

    /// Waits until every line recorded so far is written.
    public func flush() { queue.sync { drain() } }

    /// Writes what is queued, batch by batch, until nothing is left (on `queue`).
    private func drain() {
        var batch: [AccessLogEntry] = []
        while true {
            queued.withLock { q in
                swap(&batch, &q.entries)
                if batch.isEmpty { q.draining = false }
            }
            if batch.isEmpty { return }
            buffer.removeAll(keepingCapacity: true)
            let lost = dropped.exchange(0, ordering: .relaxed)
            if lost > 0 {
                JSONBytes.appendRaw("{\"accessLogDropped\":", to: &buffer)
                JSONBytes.appendInteger(lost, to: &buffer)
                JSONBytes.appendRaw("}\n", to: &buffer)
            }
            for e in batch {
                formatter.append(e, to: &buffer)
                buffer.append(0x0A)
            }
            writeAll(buffer)
            pending.subtract(batch.count, ordering: .relaxed)
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            off += n
        }
    }

    deinit { if ownsDescriptor { close(fd) } }
}

/// An error that is just its one-line description.
public struct SystemErrorText: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
