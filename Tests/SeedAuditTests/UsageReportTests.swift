import Foundation
import SeedAudit
import SeedCore
import SeedLicensing
import SeedTestSupport
import Testing

/// The scripted scenario: 30 hosts, retries, a sandbox refused and rate-limited, a quota running out.
/// Written through the real audit log; returns the records read back and the "now" of the scenario.
func writeScenario(_ dir: String, forwarder: SyslogForwarder? = nil, metrics: MetricsRegistry? = nil) throws
    -> (records: [AuditRecord], now: AuditTime)
{
    let clock = ManualWallClock(day("2026-11-20T09:00:00Z"))
    var options = AuditLogOptions(directory: dir)
    options.batchWindow = .milliseconds(2)
    let log = try AuditLog.open(options, metrics: metrics, forwarder: forwarder, clock: clock.function)
    // Day 1: 30 new hosts.
    for i in 1...30 {
        let server = i > 25
        log.record(event(.issued, host: String(format: "ws%02d", i), client: "10.1.2.\(i)",
            token: i <= 20 ? "deploy-a" : "deploy-b", type: server ? .server : .workstation,
            os: server ? "linux" : "windows", account: "acme", used: 40 + i, total: 75))
        clock.advance(ms: 60_000)
    }
    // Day 2: seeds re-run on ten hosts: the same license again.
    clock.set(day("2026-11-21T09:00:00Z"))
    for i in 1...10 {
        log.record(event(.reused, host: String(format: "ws%02d", i), client: "10.1.2.\(i)", token: "deploy-a"))
        clock.advance(ms: 60_000)
    }
    // Day 3: a sandbox detonates the script: refused by rule, then rate-limited. An operator revokes.
    clock.set(day("2026-11-22T09:00:00Z"))
    for _ in 0..<2 {
        log.record(event(.refused, host: "desktop-sbx1", client: "192.0.2.66", token: "defender-lr",
            rule: "sandbox-networks", reason: "client network is a sandbox"))
        clock.advance(ms: 1000)
    }
    for _ in 0..<3 {
        log.record(event(.rateLimited, host: "desktop-sbx1", client: "192.0.2.66", token: "defender-lr",
            rule: "per-client-ip"))
        clock.advance(ms: 1000)
    }
    log.record(event(.revoke, host: "ws05", client: nil, token: nil, reason: "decommissioned"))
    // Day 4: five more hosts use up the quota; two more are refused; another account issues one.
    clock.set(day("2026-11-23T09:00:00Z"))
    for i in 31...35 {
        log.record(event(.issued, host: "ws\(i)", client: "10.1.3.\(i)", account: "acme", used: 40 + i, total: 75))
        clock.advance(ms: 60_000)
    }
    for i in 36...37 {
        log.record(event(.quotaExhausted, host: "ws\(i)", client: "10.1.3.\(i)", account: "acme", used: 75, total: 75))
        clock.advance(ms: 60_000)
    }
    log.record(event(.issued, host: "srv-b1", client: "10.9.0.1", token: "deploy-c", type: .server, os: "linux",
        account: "beta", used: 10, total: 50))
    try log.close()
    return (try AuditFiles.records(directory: dir), day("2026-11-23T12:00:00Z"))
}

@Test func scenarioReportNumbers() async throws {
    try await withTemporaryDirectory { dir in
        let (records, now) = try writeScenario(dir)
        #expect(records.count == 54)
        let report = UsageReport.compute(records: records, query: UsageQuery(groupBy: .day, now: now))
        let t = report.totals
        #expect(t.requests == 53 && t.issued == 36 && t.renewed == 0 && t.reused == 10 && t.licensesSaved == 10)
        #expect(t.refusedByRule == 2 && t.rateLimited == 3 && t.quotaExhausted == 2)
        #expect(report.refusalsByRule.map { "\($0.rule)=\($0.count)" } == ["sandbox-networks=2"])
        #expect(report.accounts.map { "\($0.key):\($0.used)/\($0.total)/\($0.remaining)" } == ["acme:75/75/0", "beta:10/50/40"])
        #expect(report.remaining == 40)
        #expect(report.burn7 == BurnRate(days: 7, licenses: 36))
        #expect(report.burn30 == BurnRate(days: 30, licenses: 36))
        // 40 left at 36/7 a day: 7.8 days, so the eighth day from 2026-11-23.
        #expect(report.projectedExhaustion == "2026-12-01")

        // CSV (RFC 4180, CRLF).
        #expect(report.csv() == """
            day,requests,issued,renewed,reused,poolServed,refusedByRule,rateLimited,quotaExhausted,upstreamErrors,outcomeUnknown,reportOnly\r
            2026-11-20,30,30,0,0,0,0,0,0,0,0,0\r
            2026-11-21,10,0,0,10,0,0,0,0,0,0,0\r
            2026-11-22,5,0,0,0,0,2,3,0,0,0,0\r
            2026-11-23,8,6,0,0,0,0,0,2,0,0,0\r
            TOTAL,53,36,0,10,0,2,3,2,0,0,0\r

            """)

        // Table.
        let table = report.table()
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            == ["2026-11-22", "5", "0", "0", "0", "0", "2", "3", "0", "0", "0", "0"] })
        #expect(lines.contains { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            == ["TOTAL", "53", "36", "0", "10", "0", "2", "3", "2", "0", "0", "0"] })
        #expect(table.contains("licenses saved (reused): 10"))
        #expect(table.contains("quota acme: used 75 of 75, remaining 0"))
        #expect(table.contains("quota beta: used 10 of 50, remaining 40"))
        #expect(table.contains("token deploy-a: requests 37, new licenses 25, reused 10, quota used 75 of 75, remaining 0"))
        #expect(table.contains("token deploy-b: requests 10, new licenses 10, reused 0, quota used 70 of 75, remaining 5"))
        #expect(table.contains("burn rate: 5.14/day over 7 days (36 new), 1.20/day over 30 days (36 new)"))
        #expect(table.contains("quota runs out: 2026-12-01"))

        // JSON: valid, and the numbers are the same.
        let json = report.json()
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(obj["schema"] as? String == "seedmirror.usage/1")
        let totals = try #require(obj["totals"] as? [String: Int])
        #expect(totals["requests"] == 53 && totals["issued"] == 36 && totals["reused"] == 10)
        #expect(totals["licensesSaved"] == 10 && totals["refusedByRule"] == 2 && totals["rateLimited"] == 3)
        #expect(totals["quotaExhausted"] == 2)
        let groups = try #require(obj["groups"] as? [[String: Any]])
        #expect(groups.map { $0["key"] as? String } == ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"])
        #expect(groups.map { ($0["counts"] as? [String: Int])?["requests"] } == [30, 10, 5, 8])
        let burn = try #require(obj["burn"] as? [String: Any])
        #expect(burn["remaining"] as? Int == 40 && burn["projectedExhaustion"] as? String == "2026-12-01")
        #expect((burn["last7Days"] as? [String: Any])?["perDay"] as? Double == 5.14)
        let tokens = try #require(obj["tokens"] as? [[String: Any]])
        #expect(tokens.map { $0["token"] as? String } == ["defender-lr", "deploy-a", "deploy-b", "deploy-c"])
        #expect(json.hasPrefix("{\"schema\":\"seedmirror.usage/1\",\"since\":null,\"until\":null,\"reference\":\"2026-11-23T12:00:00.000Z\",\"by\":\"day\",\"totals\":{\"requests\":53,\"issued\":36,"))
        // Stable: the same input gives the same bytes.
        #expect(UsageReport.compute(records: records, query: UsageQuery(groupBy: .day, now: now)).json() == json)
    }
}

@Test func scenarioReportFiltersAndGroupings() async throws {
    try await withTemporaryDirectory { dir in
        let (records, now) = try writeScenario(dir)
        let window = UsageReport.compute(records: records, query: UsageQuery(
            since: day("2026-11-21"), until: day("2026-11-23"), groupBy: .token, now: now))
        #expect(window.totals.requests == 15)
        #expect(window.groups.map { "\($0.key)=\($0.counts.requests)" } == ["defender-lr=5", "deploy-a=10"])
        // Burn and quota are as of the end of the window.
        #expect(window.burn7.licenses == 30 && window.remaining == 5)
        let byType = UsageReport.compute(records: records, query: UsageQuery(groupBy: .type, now: now))
        #expect(byType.groups.map { "\($0.key)=\($0.counts.issued)" } == ["server=6", "workstation=30"])
        let byWeek = UsageReport.compute(records: records, query: UsageQuery(groupBy: .week, now: now))
        #expect(byWeek.groups.map { "\($0.key)=\($0.counts.requests)" } == ["2026-W47=45", "2026-W48=8"])
        let byHost = UsageReport.compute(records: records, query: UsageQuery(groupBy: .host, now: now))
        #expect(byHost.groups.first { $0.key == "ws01" }?.counts.requests == 2)
        #expect(byHost.groups.first { $0.key == "desktop-sbx1" }?.counts.requests == 5)
    }
}

@Test func csvQuotesFieldsPerRFC4180() {
    var r = AuditRecord(seq: 1, time: day("2026-11-20T09:00:00Z"), event: "issued", prev: auditGenesisHash)
    r.os = "Windows 10, \"Pro\""
    var r2 = r
    r2.seq = 2
    r2.os = "line\nbreak"
    let csv = UsageReport.compute(records: [r, r2], query: UsageQuery(groupBy: .os, now: day("2026-11-21"))).csv()
    let rows = csv.components(separatedBy: "\r\n")
    #expect(rows[1].hasPrefix("\"Windows 10, \"\"Pro\"\"\",1,1,"))
    #expect(rows[2].hasPrefix("\"line\nbreak\",1,1,"))
    #expect(rows.last == "")
}
