import Foundation
import SeedCore

/// How a usage report groups its rows.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case day, week, token, type, os, host
}

/// Which records a report covers. `since` is inclusive, `until` exclusive; `now` anchors burn rates.
public struct UsageQuery: Sendable, Equatable {
    public var since: AuditTime?
    public var until: AuditTime?
    public var groupBy: UsageGrouping
    public var now: AuditTime

    public init(since: AuditTime? = nil, until: AuditTime? = nil, groupBy: UsageGrouping = .day, now: AuditTime) {
        self.since = since
        self.until = until
        self.groupBy = groupBy
        self.now = now
    }

    /// The instant burn rates and projections are computed at: `until` when given, else `now`.
    public var reference: AuditTime { until.map { min($0, now) } ?? now }
}

/// Counts of one row (or the totals).
public struct UsageCounts: Sendable, Equatable {
    /// License requests of any outcome (operator actions and audit notices are not requests).
    public var requests = 0
    public var issued = 0
    public var renewed = 0
    /// Answered with the host's existing license: each one is a license saved.
    public var reused = 0
    public var poolServed = 0
    public var refusedByRule = 0
    public var rateLimited = 0
    public var quotaExhausted = 0
    public var upstreamErrors = 0
    public var outcomeUnknown = 0
    /// Decisions a rule in report-only mode would have refused.
    public var reportOnly = 0

    public init() {}

    public var licensesSaved: Int { reused }
    /// Licenses that cost quota.
    public var newLicenses: Int { issued + renewed }

    mutating func add(_ r: AuditRecord) {
        guard let kind = r.kind else { return }
        switch kind {
        case .issued: issued += 1
        case .renewed: renewed += 1
        case .reused: reused += 1
        case .poolServed: poolServed += 1
        case .refused: refusedByRule += 1
        case .rateLimited: rateLimited += 1
        case .quotaExhausted: quotaExhausted += 1
        case .upstreamError: upstreamErrors += 1
        case .outcomeUnknown: outcomeUnknown += 1
        case .pending: break
        case .licenseImport, .revoke, .resolve, .configReload, .breakerTripped: return
        }
        requests += 1
        if r.reportOnly { reportOnly += 1 }
    }

    nonisolated(unsafe) static let columns: [(String, KeyPath<UsageCounts, Int>)] = [
        ("requests", \.requests), ("issued", \.issued), ("renewed", \.renewed), ("reused", \.reused),
        ("poolServed", \.poolServed), ("refusedByRule", \.refusedByRule), ("rateLimited", \.rateLimited),
        ("quotaExhausted", \.quotaExhausted), ("upstreamErrors", \.upstreamErrors),
        ("outcomeUnknown", \.outcomeUnknown), ("reportOnly", \.reportOnly),
    ]
}

/// The latest quota figures seen for an account or a token.
public struct QuotaSnapshot: Sendable, Equatable {
    public var key: String
    public var used: Int64
    public var total: Int64
    public var asOf: AuditTime
    public var remaining: Int64 { max(0, total - used) }
}

/// Per-token figures: its own counts and the quota it last saw.
public struct TokenUsage: Sendable, Equatable {
    public var token: String
    public var counts: UsageCounts
    public var quota: QuotaSnapshot?
}

/// New licenses per day over a trailing window ending at the report's reference time.
public struct BurnRate: Sendable, Equatable {
    public var days: Int
    public var licenses: Int
    public var perDay: Double { Double(licenses) / Double(days) }

    public init(days: Int, licenses: Int) {
        self.days = days
        self.licenses = licenses
    }
}

/// A usage report over audit records: pure computation, rendered as a table, CSV or JSON.
public struct UsageReport: Sendable, Equatable {
    public struct Group: Sendable, Equatable {
        public var key: String
        public var counts: UsageCounts
    }

    public var query: UsageQuery
    public var totals = UsageCounts()
    public var groups: [Group] = []
    /// Refusals by rule name, most first.
    public var refusalsByRule: [(rule: String, count: Int)] = []
    public var accounts: [QuotaSnapshot] = []
    public var tokens: [TokenUsage] = []
    public var burn7: BurnRate
    public var burn30: BurnRate
    /// Sum of the accounts' remaining licenses, nil when no record carried quota figures.
    public var remaining: Int64?
    /// The UTC day the quota runs out at the 7-day rate (30-day when the week was idle); nil when unknown or idle.
    public var projectedExhaustion: String?

    public static func == (a: UsageReport, b: UsageReport) -> Bool { a.json() == b.json() }

    /// Computes the report. Records may come in any order; ties keep their order.
    public static func compute(records: [AuditRecord], query: UsageQuery) -> UsageReport {
        let ref = query.reference
        var report = UsageReport(
            query: query, burn7: BurnRate(days: 7, licenses: 0), burn30: BurnRate(days: 30, licenses: 0))
        var groups: [String: UsageCounts] = [:]
        var rules: [String: Int] = [:]
        var accounts: [String: QuotaSnapshot] = [:]
        var tokens: [String: TokenUsage] = [:]
        for r in records {
            let inWindow = (query.since.map { r.time >= $0 } ?? true) && (query.until.map { r.time < $0 } ?? true)
            if r.time <= ref, let kind = r.kind, kind == .issued || kind == .renewed {
                if r.time > ref.adding(days: -7) { report.burn7.licenses += 1 }
                if r.time > ref.adding(days: -30) { report.burn30.licenses += 1 }
            }
            if r.time <= ref, let used = r.quotaUsed, let total = r.quotaTotal {
                let key = r.account ?? "default"
                if accounts[key].map({ $0.asOf <= r.time }) ?? true {
                    accounts[key] = QuotaSnapshot(key: key, used: used, total: total, asOf: r.time)
                }
                if let t = r.clientToken, tokens[t]?.quota.map({ $0.asOf <= r.time }) ?? true {
                    tokens[t, default: TokenUsage(token: t, counts: UsageCounts(), quota: nil)].quota =
                        QuotaSnapshot(key: t, used: used, total: total, asOf: r.time)
                }
            }
            guard inWindow else { continue }
            report.totals.add(r)
            if r.kind == .refused { rules[r.rule ?? "(none)", default: 0] += 1 }
            if let t = r.clientToken { tokens[t, default: TokenUsage(token: t, counts: UsageCounts(), quota: nil)].counts.add(r) }
            let key: String
            switch query.groupBy {
            case .day: key = r.time.dateString
            case .week: key = r.time.isoWeek
            case .token: key = r.clientToken ?? "(none)"
            case .type: key = r.type ?? "(none)"
            case .os: key = r.os ?? "(none)"
            case .host: key = r.host ?? r.hostAsked ?? "(none)"
            }
            var c = groups[key] ?? UsageCounts()
            c.add(r)
            // Rows only for keys that had requests; operator actions alone do not make a row.
            if c.requests > 0 { groups[key] = c }
        }
        report.groups = groups.keys.sorted().map { Group(key: $0, counts: groups[$0]!) }
        report.refusalsByRule = rules.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        report.accounts = accounts.keys.sorted().map { accounts[$0]! }
        report.tokens = tokens.keys.sorted().map { tokens[$0]! }
        if !report.accounts.isEmpty {
            let remaining = report.accounts.reduce(Int64(0)) { $0 + $1.remaining }
            report.remaining = remaining
            let rate = report.burn7.licenses > 0 ? report.burn7.perDay : report.burn30.perDay
            if remaining == 0 {
                report.projectedExhaustion = ref.dateString
            } else if rate > 0 {
                let days = Int64((Double(remaining) / rate).rounded(.up))
                report.projectedExhaustion = ref.adding(days: days).dateString
            }
        }
        return report
    }

    // MARK: rendering

    private var groupTitle: String { query.groupBy.rawValue }

    /// A fixed-width text table for terminals.
    public func table() -> String {
        let headers = [groupTitle] + UsageCounts.columns.map(\.0)
        var rows = groups.map { g in [g.key] + UsageCounts.columns.map { c in String(g.counts[keyPath: c.1]) } }
        rows.append(["TOTAL"] + UsageCounts.columns.map { String(totals[keyPath: $0.1]) })
        var widths = headers.map(\.count)
        for r in rows { for (i, v) in r.enumerated() { widths[i] = max(widths[i], v.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, v in
                i == 0 ? v.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - v.count) + v
            }.joined(separator: "  ")
        }
        var out = line(headers) + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for (i, r) in rows.enumerated() {
            if i == rows.count - 1 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
            out += line(r) + "\n"
        }
        out += "\nlicenses saved (reused): \(totals.licensesSaved)\n"
        if !refusalsByRule.isEmpty {
            out += "refusals by rule: " + refusalsByRule.map { "\($0.rule)=\($0.count)" }.joined(separator: ", ") + "\n"
        }
        for a in accounts {
            out += "quota \(a.key): used \(a.used) of \(a.total), remaining \(a.remaining) (as of \(a.asOf.rfc3339))\n"
        }
        for t in tokens {
            out += "token \(t.token): requests \(t.counts.requests), new licenses \(t.counts.newLicenses), reused \(t.counts.reused)"
            if let q = t.quota { out += ", quota used \(q.used) of \(q.total), remaining \(q.remaining)" }
            out += "\n"
        }
        out += "burn rate: \(fmt2(burn7.perDay))/day over 7 days (\(burn7.licenses) new), "
            + "\(fmt2(burn30.perDay))/day over 30 days (\(burn30.licenses) new)\n"
        out += "quota runs out: \(projectedExhaustion ?? (remaining == nil ? "unknown (no quota figures)" : "not at the current rate"))\n"
        return out
    }

    /// RFC 4180: a header row, one row per group and a TOTAL row; CRLF line ends, fields quoted when needed.
    public func csv() -> String {
        var out = ([groupTitle] + UsageCounts.columns.map(\.0)).map(csvField).joined(separator: ",") + "\r\n"
        for g in groups {
            out += ([csvField(g.key)] + UsageCounts.columns.map { String(g.counts[keyPath: $0.1]) }).joined(separator: ",") + "\r\n"
        }
        out += (["TOTAL"] + UsageCounts.columns.map { String(totals[keyPath: $0.1]) }).joined(separator: ",") + "\r\n"
        return out
    }

    /// Stable JSON (schema `seedmirror.usage/1`, docs/audit.md §Usage report JSON): fixed key order, one line.
    public func json() -> String {
        func counts(_ c: UsageCounts) -> String {
            "{" + UsageCounts.columns.map { "\"\($0.0)\":\(c[keyPath: $0.1])" }.joined(separator: ",")
                + ",\"licensesSaved\":\(c.licensesSaved)}"
        }
        func str(_ s: String?) -> String { s.map { "\"\(jsonEscaped($0))\"" } ?? "null" }
        func quota(_ q: QuotaSnapshot) -> String {
            "{\"used\":\(q.used),\"total\":\(q.total),\"remaining\":\(q.remaining),\"asOf\":\"\(q.asOf.rfc3339)\"}"
        }
        var s = "{\"schema\":\"seedmirror.usage/1\""
        s += ",\"since\":\(str(query.since?.rfc3339)),\"until\":\(str(query.until?.rfc3339))"
        s += ",\"reference\":\"\(query.reference.rfc3339)\",\"by\":\"\(groupTitle)\""
        s += ",\"totals\":" + counts(totals)
        s += ",\"groups\":[" + groups.map { "{\"key\":\(str($0.key)),\"counts\":\(counts($0.counts))}" }.joined(separator: ",") + "]"
        s += ",\"refusalsByRule\":[" + refusalsByRule.map { "{\"rule\":\(str($0.rule)),\"count\":\($0.count)}" }.joined(separator: ",") + "]"
        s += ",\"accounts\":[" + accounts.map { "{\"account\":\(str($0.key)),\"quota\":\(quota($0))}" }.joined(separator: ",") + "]"
        s += ",\"tokens\":[" + tokens.map {
            "{\"token\":\(str($0.token)),\"counts\":\(counts($0.counts)),\"quota\":\($0.quota.map(quota) ?? "null")}"
        }.joined(separator: ",") + "]"
        func burn(_ b: BurnRate) -> String { "{\"days\":\(b.days),\"licenses\":\(b.licenses),\"perDay\":\(fmt2(b.perDay))}" }
        s += ",\"burn\":{\"last7Days\":\(burn(burn7)),\"last30Days\":\(burn(burn30))"
        s += ",\"remaining\":\(remaining.map(String.init) ?? "null"),\"projectedExhaustion\":\(str(projectedExhaustion))}"
        return s + "}"
    }
}

func fmt2(_ v: Double) -> String { String(format: "%.2f", v) }

/// RFC 4180 field: quoted when it holds a comma, quote, CR or LF; quotes doubled.
func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return s }
    return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
