import Foundation
import SeedCore
import Synchronization

/// A Prometheus metric type.
public enum MetricType: String, Sendable {
    case counter, gauge, histogram
}

/// A monotonically increasing count. Lock-free; keep the handle to skip the registry lookup.
public final class Counter: Sendable {
    private let value = Atomic<UInt64>(0)
    init() {}
    public func increment(by n: UInt64 = 1) { value.add(n, ordering: .relaxed) }
    public var current: UInt64 { value.load(ordering: .relaxed) }
}

/// A value that goes up and down. Lock-free (a compare-and-swap loop on the bit pattern).
public final class Gauge: Sendable {
    private let bits = Atomic<UInt64>(0.0.bitPattern)
    init() {}
    public func set(_ v: Double) { bits.store(v.bitPattern, ordering: .relaxed) }
    public func increment(by d: Double = 1) {
        var old = bits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + d).bitPattern
            let (done, seen) = bits.compareExchange(
                expected: old, desired: new, successOrdering: .relaxed, failureOrdering: .relaxed)
            if done { return }
            old = seen
        }
    }
    public func decrement(by d: Double = 1) { increment(by: -d) }
    public var current: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }
}

/// Counts observations into cumulative buckets (upper bounds, `le`), plus their sum and count.
public final class Histogram: Sendable {
    public let bounds: [Double]
    private let state: Lock<(counts: [UInt64], sum: Double, count: UInt64)>

    init(bounds: [Double]) {
        self.bounds = bounds
        state = Lock((counts: [UInt64](repeating: 0, count: bounds.count), sum: 0, count: 0))
    }

    public func observe(_ v: Double) {
        // Buckets are counted non-cumulatively here and summed at exposition time.
        let i = bounds.firstIndex(where: { v <= $0 })
        state.withLock { s in
            if let i { s.counts[i] += 1 }
            s.sum += v
            s.count += 1
        }
    }

    public func observe(_ d: Duration) {
        let (s, atto) = d.components
        observe(Double(s) + Double(atto) / 1e18)
    }

    var snapshot: (cumulative: [UInt64], sum: Double, count: UInt64) {
        state.withLock { s in
            var acc: UInt64 = 0
            let cum = s.counts.map { c -> UInt64 in
                acc += c
                return acc
            }
            return (cum, s.sum, s.count)
        }
    }
}

/// The metrics of one process, rendered in the Prometheus text exposition format 0.0.4. Safe from any
/// thread: looking up a metric takes a short lock; updating a handle does not.
public final class MetricsRegistry: Sendable {
    typealias Labels = [(String, String)]

    private struct Child {
        var labels: Labels
        var counter: Counter?
        var gauge: Gauge?
        var histogram: Histogram?
        var function: (@Sendable () -> Double)?
    }

    private struct Family {
        var type: MetricType
        var help: String
        var children: [String: Child] = [:]
    }

    private let families = Lock<[String: Family]>([:])

    public init(catalog: [MetricDescription] = MetricNames.catalog) {
        families.withLock { f in
            for d in catalog { f[d.name] = Family(type: d.type, help: d.help) }
        }
    }

    /// The counter `name` with these labels, created at zero on first use.
    public func counter(_ name: String, help: String? = nil, labels: [(String, String)] = []) -> Counter {
        child(name, .counter, help, labels) { c in
            if c.counter == nil { c.counter = Counter() }
        }.counter!
    }

    public func gauge(_ name: String, help: String? = nil, labels: [(String, String)] = []) -> Gauge {
        child(name, .gauge, help, labels) { c in
            if c.gauge == nil { c.gauge = Gauge() }
        }.gauge!
    }

    /// A gauge read at scrape time (store bytes, open connections). Replaces an earlier function.
    public func gauge(
        _ name: String, help: String? = nil, labels: [(String, String)] = [],
        reading: @escaping @Sendable () -> Double
    ) {
        _ = child(name, .gauge, help, labels) { c in c.function = reading }
    }

    /// The histogram `name`; `buckets` (ascending upper bounds) apply when it is first created.
    public func histogram(
        _ name: String, help: String? = nil, labels: [(String, String)] = [],
        buckets: [Double] = MetricNames.latencyBuckets
    ) -> Histogram {
        child(name, .histogram, help, labels) { c in
            if c.histogram == nil { c.histogram = Histogram(bounds: buckets.sorted()) }
        }.histogram!
    }

    private func child(
        _ name: String, _ type: MetricType, _ help: String?, _ labels: Labels, _ make: (inout Child) -> Void
    ) -> Child {
        precondition(isValidMetricName(name), "invalid metric name \(name)")
        for (k, _) in labels { precondition(isValidLabelName(k) && k != "le", "invalid label name \(k)") }
        let sorted = labels.sorted { $0.0 < $1.0 }
        let key = renderLabels(sorted)
        return families.withLock { f in
            var fam = f[name] ?? Family(type: type, help: help ?? name.replacingUnderscores)
            precondition(fam.type == type, "metric \(name) is a \(fam.type.rawValue), not a \(type.rawValue)")
            if let help, fam.help == name.replacingUnderscores { fam.help = help }
            var c = fam.children[key] ?? Child(labels: sorted)
            make(&c)
            fam.children[key] = c
            f[name] = fam
            return c
        }
    }

    /// The text exposition (version 0.0.4): families sorted by name, each with HELP and TYPE, children
    /// sorted by labels. Families without children are left out.
    public func exposition() -> String {
        let snapshot = families.withLock { $0 }
        var out = ""
        for name in snapshot.keys.sorted() {
            let fam = snapshot[name]!
            guard !fam.children.isEmpty else { continue }
            out += "# HELP \(name) \(escapeHelp(fam.help))\n# TYPE \(name) \(fam.type.rawValue)\n"
            for key in fam.children.keys.sorted() {
                let c = fam.children[key]!
                switch fam.type {
                case .counter:
                    out += "\(name)\(key) \(c.counter?.current ?? 0)\n"
                case .gauge:
                    let v = c.function?() ?? c.gauge?.current ?? 0
                    out += "\(name)\(key) \(formatSample(v))\n"
                case .histogram:
                    guard let h = c.histogram else { continue }
                    let s = h.snapshot
                    for (i, b) in h.bounds.enumerated() {
                        out += "\(name)_bucket\(renderLabels(c.labels + [("le", formatSample(b))])) \(s.cumulative[i])\n"
                    }
                    out += "\(name)_bucket\(renderLabels(c.labels + [("le", "+Inf")])) \(s.count)\n"
                    out += "\(name)_sum\(key) \(formatSample(s.sum))\n"
                    out += "\(name)_count\(key) \(s.count)\n"
                }
            }
        }
        return out
    }

    /// The current value of a counter or gauge sample (tests and the dashboard), nil when absent.
    public func value(_ name: String, labels: [(String, String)] = []) -> Double? {
        let key = renderLabels(labels.sorted { $0.0 < $1.0 })
        let c = families.withLock { $0[name]?.children[key] }
        guard let c else { return nil }
        if let f = c.function { return f() }
        if let g = c.gauge { return g.current }
        if let k = c.counter { return Double(k.current) }
        if let h = c.histogram { return Double(h.snapshot.count) }
        return nil
    }
}

/// Counter handles of one family by a key the caller picks (a label value, a route and status), resolved
/// through the registry on first use and kept: a hot path pays a short lock and a hash lookup instead of
/// the registry's validation, label sorting and rendering. The series appear in the exposition only once
/// used, as with a direct lookup.
public final class CounterHandles<Key: Hashable & Sendable>: Sendable {
    private let registry: MetricsRegistry
    private let name: String
    private let labels: @Sendable (Key) -> [(String, String)]
    private let handles = Lock<[Key: Counter]>([:])

    public init(_ registry: MetricsRegistry, _ name: String, labels: @escaping @Sendable (Key) -> [(String, String)]) {
        self.registry = registry
        self.name = name
        self.labels = labels
    }

    public func counter(_ key: Key) -> Counter {
        if let c = handles.withLock({ $0[key] }) { return c }
        let c = registry.counter(name, labels: labels(key))
        handles.withLock { $0[key] = c }
        return c
    }
}

/// A metric the mirror exports, with its type and help text.
public struct MetricDescription: Sendable {
    public var name: String
    public var type: MetricType
    public var help: String
    public init(_ name: String, _ type: MetricType, _ help: String) {
        self.name = name
        self.type = type
        self.help = help
    }
}

/// The names every part uses (docs/audit.md §Metrics). Labels are given at the call site.
public enum MetricNames {
    /// `route`, `status` (HTTP status code).
    public static let requests = "seedmirror_requests_total"
    /// `kind` (a DecisionEvent.Kind raw value).
    public static let decisions = "seedmirror_license_decisions_total"
    public static let licensesIssued = "seedmirror_licenses_issued_total"
    public static let licensesReused = "seedmirror_licenses_reused_total"
    /// `account`.
    public static let quotaRemaining = "seedmirror_quota_remaining"
    public static let storeBytes = "seedmirror_store_bytes"
    public static let storeDedupRatio = "seedmirror_store_dedup_ratio"
    public static let cacheHits = "seedmirror_cache_hits_total"
    public static let cacheMisses = "seedmirror_cache_misses_total"
    /// `operation` (package, license).
    public static let upstreamLatency = "seedmirror_upstream_request_duration_seconds"
    public static let singleFlightWaiters = "seedmirror_singleflight_waiters"
    public static let openConnections = "seedmirror_open_connections"
    /// `result` (ok, failed).
    public static let tlsHandshakes = "seedmirror_tls_handshakes_total"
    public static let auditRecords = "seedmirror_audit_records_total"
    public static let auditWriteErrors = "seedmirror_audit_write_errors_total"
    public static let auditGaps = "seedmirror_audit_gaps_total"
    public static let auditQueueDepth = "seedmirror_audit_queue_depth"
    public static let syslogSent = "seedmirror_syslog_sent_total"
    public static let syslogDropped = "seedmirror_syslog_dropped_total"

    public static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    public static let catalog: [MetricDescription] = [
        MetricDescription(requests, .counter, "HTTP requests answered, by route and status code."),
        MetricDescription(decisions, .counter, "License decisions and operator actions, by kind."),
        MetricDescription(licensesIssued, .counter, "New licenses obtained from upstream (issued or renewed)."),
        MetricDescription(licensesReused, .counter, "Requests answered with an existing license (licenses saved)."),
        MetricDescription(quotaRemaining, .gauge, "Licenses left on the upstream account, as last reported."),
        MetricDescription(storeBytes, .gauge, "Bytes of blobs in the package store."),
        MetricDescription(storeDedupRatio, .gauge, "Logical package bytes divided by stored blob bytes."),
        MetricDescription(cacheHits, .counter, "Package requests served from the store."),
        MetricDescription(cacheMisses, .counter, "Package requests that had to go upstream."),
        MetricDescription(upstreamLatency, .histogram, "Time from sending an upstream request to its complete answer."),
        MetricDescription(singleFlightWaiters, .gauge, "Requests waiting for another request's upstream call."),
        MetricDescription(openConnections, .gauge, "Client connections currently open."),
        MetricDescription(tlsHandshakes, .counter, "TLS handshakes, by result."),
        MetricDescription(auditRecords, .counter, "Audit records written to disk."),
        MetricDescription(auditWriteErrors, .counter, "Failed audit batch writes (retried)."),
        MetricDescription(auditGaps, .counter, "Audit gaps found at startup (records lost before a crash)."),
        MetricDescription(auditQueueDepth, .gauge, "Audit records waiting to be written."),
        MetricDescription(syslogSent, .counter, "Audit records sent to the syslog collector."),
        MetricDescription(syslogDropped, .counter, "Audit records not sent to syslog because its queue was full."),
    ]
}

func renderLabels(_ labels: [(String, String)]) -> String {
    guard !labels.isEmpty else { return "" }
    return "{" + labels.map { "\($0.0)=\"\(escapeLabelValue($0.1))\"" }.joined(separator: ",") + "}"
}

/// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
func escapeLabelValue(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// HELP text escapes backslash and line feed.
func escapeHelp(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
}

func formatSample(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return "\(v)"
}

func isValidMetricName(_ s: String) -> Bool {
    guard let f = s.utf8.first, f == UInt8(ascii: "_") || f == UInt8(ascii: ":") || isAlpha(f) else { return false }
    return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || isAlpha($0) || isDigit($0) }
}

func isValidLabelName(_ s: String) -> Bool {
    guard let f = s.utf8.first, f == UInt8(ascii: "_") || isAlpha(f), !s.hasPrefix("__") else { return false }
    return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isAlpha($0) || isDigit($0) }
}

private func isAlpha(_ c: UInt8) -> Bool { (65...90).contains(c) || (97...122).contains(c) }
private func isDigit(_ c: UInt8) -> Bool { (48...57).contains(c) }

extension String {
    fileprivate var replacingUnderscores: String { split(separator: "_").joined(separator: " ") }
}
