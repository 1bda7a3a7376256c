import Foundation
import SeedAudit
import SeedCore
import SeedLicensing

/// A wall clock the test moves by hand.
final class ManualWallClock: Sendable {
    private let ms: Lock<Int64>
    init(_ start: AuditTime) { ms = Lock(start.millisecondsSinceEpoch) }
    var now: AuditTime { AuditTime(millisecondsSinceEpoch: ms.withLock { $0 }) }
    func set(_ t: AuditTime) { ms.withLock { $0 = t.millisecondsSinceEpoch } }
    func advance(ms d: Int64) { ms.withLock { $0 += d } }
    var function: @Sendable () -> AuditTime { { self.now } }
}

/// Keeps log records for assertions.
final class MemoryLogSink: LogSink {
    private let records = Lock<[LogRecord]>([])
    func write(_ record: LogRecord) { records.withLock { $0.append(record) } }
    var all: [LogRecord] { records.withLock { $0 } }
    var lines: [String] { all.map { r in "\(r.level) \(r.message) " + r.metadata.map { "\($0.0)=\($0.1)" }.joined(separator: " ") } }
}

func day(_ s: String) -> AuditTime { AuditTime(parsing: s)! }

func event(
    _ kind: DecisionEvent.Kind, host: String? = nil, client: String? = "10.1.2.3", token: String? = "deploy-a",
    type: LicenseType? = .workstation, os: String? = "windows", account: String? = nil, used: Int? = nil,
    total: Int? = nil, rule: String? = nil, reason: String? = nil
) -> DecisionEvent {
    var e = DecisionEvent(kind: kind)
    e.hostAsked = host?.uppercased()
    e.hostKey = host
    e.clientAddress = client
    e.clientTokenName = token
    e.type = type
    e.os = os
    e.arch = "x64"
    e.route = .cloud
    e.account = account
    e.quotaUsed = used
    e.quotaTotal = total
    e.rule = rule
    e.reason = reason
    if kind == .issued || kind == .reused { e.licenseReference = "lic-\(host ?? "x")" }
    return e
}

/// Lines of every audit file in chain order, as (file name, lines).
func auditFiles(_ dir: String) throws -> [(String, [String])] {
    try AuditFiles.list(directory: dir).map { n in
        let text = try String(contentsOfFile: dir + "/" + n.description, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return (n.description, lines)
    }
}

func writeLines(_ dir: String, _ file: String, _ lines: [String]) throws {
    try (lines.map { $0 + "\n" }.joined()).write(toFile: dir + "/" + file, atomically: false, encoding: .utf8)
}

/// Where the line for `seq` is: (file index, line index).
func locate(_ files: [(String, [String])], seq: Int) -> (Int, Int)? {
    for (fi, f) in files.enumerated() {
        for (li, l) in f.1.enumerated() where l.hasPrefix("{\"seq\":\(seq),") { return (fi, li) }
    }
    return nil
}
