import Dispatch
import Foundation
import SeedCore
public import SeedHTTPServer
import Synchronization

/// Formats one access-log entry as a JSON line (no trailing newline). The path is redacted again here
/// (every `token=` value) so a token never reaches the log even if a caller forgot.
public func accessLogLine(_ e: AccessLogEntry) -> String {
    let ms = (e.durationMilliseconds * 1000).rounded() / 1000
    return "{\"time\":\"\(iso8601Milliseconds(e.time))\",\"client\":\"\(jsonEscaped(e.clientAddress))\","
        + "\"port\":\(e.clientPort),\"method\":\"\(jsonEscaped(e.method))\","
        + "\"path\":\"\(jsonEscaped(redactedTarget(e.path)))\",\"status\":\(e.status),\"bytes\":\(e.bytes),"
        + "\"ms\":\(ms),\"tls\":\"\(jsonEscaped(e.tlsVersion))\",\"cipher\":\"\(jsonEscaped(e.tlsCipher))\"}"
}

/// Replaces the value of every `token` query parameter (any case, also percent-encoded names) with `REDACTED`.
public func redactedTarget(_ target: String) -> String {
    guard let q = target.firstIndex(of: "?") else { return target }
    let path = target[..<q]
    let query = target[target.index(after: q)...]
    let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
        let name = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let decodedName = (String(name).removingPercentEncoding ?? String(name)).lowercased()
        if decodedName == "token" || decodedName == "apikey" || decodedName == "api_key" {
            return "\(name)=REDACTED"
        }
        return String(part)
    }
    return path + "?" + parts.joined(separator: "&")
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
/// for the disk. When the writer falls more than `maxPendingLines` behind, lines are dropped and
/// counted (and the count is written once the backlog clears).
public final class JSONLinesAccessLog: AccessLogSink, @unchecked Sendable {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let queue = DispatchQueue(label: "seed-mirror.access-log")
    private let pending = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    public let maxPendingLines: Int

    /// Appends to `path` (created 0640 when missing).
    public init(appendingTo path: String, maxPendingLines: Int = 100_000) throws(SystemErrorText) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw SystemErrorText("cannot open access log \(path): \(String(cString: strerror(errno)))") }
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
        queue.async { [self] in
            var line = accessLogLine(entry) + "\n"
            let lost = dropped.exchange(0, ordering: .relaxed)
            if lost > 0 { line = "{\"accessLogDropped\":\(lost)}\n" + line }
            writeAll(Array(line.utf8))
            pending.subtract(1, ordering: .relaxed)
        }
    }

    /// Waits until every line recorded so far is written.
    public func flush() { queue.sync {} }

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
