import Foundation
import SeedAudit
import SeedTestSupport
import Testing

func sampleRegistry() -> MetricsRegistry {
    let m = MetricsRegistry()
    m.counter(MetricNames.requests, labels: [("route", "cloud"), ("status", "200")]).increment(by: 3)
    m.counter(MetricNames.requests, labels: [("status", "403"), ("route", "cloud")]).increment()
    m.counter(MetricNames.decisions, labels: [("kind", "issued")]).increment()
    m.counter(MetricNames.licensesIssued).increment()
    m.counter(MetricNames.licensesReused).increment(by: 2)
    m.gauge(MetricNames.quotaRemaining, labels: [("account", "we\"ird\\acc\nount")]).set(40)
    m.gauge(MetricNames.storeBytes) { 123_456_789 }
    m.gauge(MetricNames.storeDedupRatio).set(1.75)
    m.counter(MetricNames.cacheHits).increment()
    m.counter(MetricNames.cacheMisses).increment()
    let h = m.histogram(MetricNames.upstreamLatency, labels: [("operation", "license")])
    h.observe(0.003)
    h.observe(0.2)
    h.observe(Duration.seconds(40))
    m.gauge(MetricNames.singleFlightWaiters).set(0)
    m.gauge(MetricNames.openConnections).increment(by: 5)
    m.gauge(MetricNames.openConnections).decrement()
    m.counter(MetricNames.tlsHandshakes, labels: [("result", "ok")]).increment()
    return m
}

@Test func expositionFormatParses() throws {
    let text = sampleRegistry().exposition()
    #expect(text.hasSuffix("\n"))
    var typed: [String: String] = [:]
    var helped: Set<String> = []
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        if line.hasPrefix("# HELP ") {
            let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
            #expect(parts.count == 2)
            helped.insert(String(parts[0]))
        } else if line.hasPrefix("# TYPE ") {
            let parts = line.dropFirst(7).split(separator: " ")
            #expect(parts.count == 2 && ["counter", "gauge", "histogram"].contains(String(parts[1])))
            #expect(typed[String(parts[0])] == nil, "TYPE given twice for \(parts[0])")
            typed[String(parts[0])] = String(parts[1])
        } else {
            // name{labels} value  — label values may hold escaped quotes, so find the closing brace by scanning.
            let s = Array(line.utf8)
            var i = 0
            while i < s.count, s[i] != UInt8(ascii: "{"), s[i] != UInt8(ascii: " ") { i += 1 }
            let name = String(decoding: s[0..<i], as: UTF8.self)
            var labels = ""
            if i < s.count, s[i] == UInt8(ascii: "{") {
                let start = i
                var inString = false
                i += 1
                while i < s.count {
                    if inString {
                        if s[i] == UInt8(ascii: "\\") { i += 2; continue }
                        if s[i] == UInt8(ascii: "\"") { inString = false }
                    } else if s[i] == UInt8(ascii: "\"") {
                        inString = true
                    } else if s[i] == UInt8(ascii: "}") {
                        break
                    }
                    i += 1
                }
                #expect(i < s.count, "unterminated labels in \(line)")
                labels = String(decoding: s[start...i], as: UTF8.self)
                i += 1
            }
            #expect(i < s.count && s[i] == UInt8(ascii: " "))
            let valueText = String(decoding: s[(i + 1)...], as: UTF8.self)
            let value = try #require(valueText == "+Inf" ? Double.infinity : Double(valueText), "bad value in \(line)")
            samples[name + labels] = value
            let family = ["_bucket", "_sum", "_count"].reduce(name) { n, suffix in
                typed[n] == nil && n.hasSuffix(suffix) ? String(n.dropLast(suffix.count)) : n
            }
            #expect(typed[family] != nil, "sample \(name) before its TYPE line")
            #expect(helped.contains(family))
            #expect(!line.contains("\n"))
        }
    }
    #expect(samples["seedmirror_requests_total{route=\"cloud\",status=\"200\"}"] == 3)
    #expect(samples["seedmirror_requests_total{route=\"cloud\",status=\"403\"}"] == 1)
    #expect(samples["seedmirror_quota_remaining{account=\"we\\\"ird\\\\acc\\nount\"}"] == 40)
    #expect(samples["seedmirror_store_bytes"] == 123_456_789)
    #expect(samples["seedmirror_store_dedup_ratio"] == 1.75)
    #expect(samples["seedmirror_open_connections"] == 4)
    #expect(samples["seedmirror_upstream_request_duration_seconds_bucket{operation=\"license\",le=\"0.005\"}"] == 1)
    #expect(samples["seedmirror_upstream_request_duration_seconds_bucket{operation=\"license\",le=\"0.25\"}"] == 2)
    #expect(samples["seedmirror_upstream_request_duration_seconds_bucket{operation=\"license\",le=\"30\"}"] == 2)
    #expect(samples["seedmirror_upstream_request_duration_seconds_bucket{operation=\"license\",le=\"+Inf\"}"] == 3)
    #expect(samples["seedmirror_upstream_request_duration_seconds_count{operation=\"license\"}"] == 3)
    #expect(typed["seedmirror_upstream_request_duration_seconds"] == "histogram")
    #expect(typed["seedmirror_requests_total"] == "counter")
}

@Test func expositionPassesPromtool() throws {
    guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: FileManager.default.isExecutableFile) else {
        print("skipped: promtool is not installed (apt-get install prometheus)")
        return
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: promtool)
    p.arguments = ["check", "metrics"]
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = output
    try p.run()
    input.fileHandleForWriting.write(Data(sampleRegistry().exposition().utf8))
    try input.fileHandleForWriting.close()
    let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "promtool: \(out)")
    #expect(out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool lint: \(out)")
}

@Test func countersAreSafeFromManyThreads() async {
    let m = MetricsRegistry()
    await withTaskGroup(of: Void.self) { g in
        for t in 0..<8 {
            g.addTask {
                for i in 0..<1000 {
                    m.counter(MetricNames.requests, labels: [("route", "r\(i % 3)"), ("status", "200")]).increment()
                    m.gauge(MetricNames.openConnections).increment(by: t % 2 == 0 ? 1 : -1)
                }
            }
        }
    }
    let total = (0..<3).compactMap { m.value(MetricNames.requests, labels: [("route", "r\($0)"), ("status", "200")]) }
    #expect(total.reduce(0, +) == 8000)
    #expect(m.value(MetricNames.openConnections) == 0)
}

@Test func auditLogFeedsDecisionMetrics() async throws {
    try await withTemporaryDirectory { dir in
        let m = MetricsRegistry()
        _ = try writeScenario(dir, metrics: m)
        #expect(m.value(MetricNames.decisions, labels: [("kind", "issued")]) == 36)
        #expect(m.value(MetricNames.decisions, labels: [("kind", "rate-limited")]) == 3)
        #expect(m.value(MetricNames.licensesIssued) == 36)
        #expect(m.value(MetricNames.licensesReused) == 10)
        #expect(m.value(MetricNames.quotaRemaining, labels: [("account", "acme")]) == 0)
        #expect(m.value(MetricNames.quotaRemaining, labels: [("account", "beta")]) == 40)
        #expect(m.value(MetricNames.auditRecords) == 54)
    }
}
