import Foundation
public import SeedCore

/// Operational log lines on standard error: `TIME LEVEL message key=value …`, one write per line so lines
/// from different threads never interleave. Values with spaces or quotes are JSON-quoted.
public struct StderrLogSink: LogSink {
    public init() {}

    public func write(_ record: LogRecord) {
        var line = iso8601Milliseconds(Date().timeIntervalSince1970) + " " + record.level.description + " "
            + record.message
        for (k, v) in record.metadata {
            let plain = !v.isEmpty && v.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "\\" && $0.value < 0x7f }
            line += " \(k)=" + (plain ? v : "\"" + jsonEscaped(v) + "\"")
        }
        line += "\n"
        let bytes = Array(line.utf8)
        bytes.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = Foundation.write(2, p.baseAddress! + off, p.count - off)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}
