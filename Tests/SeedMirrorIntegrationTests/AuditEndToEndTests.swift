import Foundation
import Glibc
import SeedAudit
import SeedCore
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

// The audit issue's must-shows through the real server: a scripted run with a mix of decisions, then the
// chain verified by `seed-mirror audit verify`, the admin API and metrics checked against the script, and
// every configured secret searched for in everything the mirror wrote or answered.

private let upstreamSecret = "upstream-SECRET-tok-8c1f"
private let portalSecret = "portal-SECRET-key-5e9a"
private let secondClientSecret = "client2-SECRET-tok-3b7d"

/// The decision kinds the script below produces, with their counts.
private let scriptedDecisions: [String: Int] = ["issued": 3, "reused": 2, "refused": 1, "rate-limited": 1]

private func scriptedOptions(_ sink: SimulatorTestLogSink) -> MirrorTestOptions {
    var o = MirrorTestOptions.testDefaults
    o.simulator.tokens = [upstreamSecret]
    o.simulator.apiKeys = [portalSecret]
    o.extraClients = [ClientToken(name: "second", secret: secondClientSecret)]
    o.accessLog = true
    o.unlimitedRates = false
    o.logger = Logger(level: .debug, sink: sink)
    o.configure = { root in
        root["rateLimits"] = rateLimitsOff(["newHostsPerAddress": ["count": 3, "perSeconds": 3600]])
        root["policy"] = ["denyHostPatterns": ["patterns": ["sandbox-*"], "mode": "enforce"]]
    }
    return o
}

/// Issued a1, reused a1 twice (once with the token in the URL), issued a2 (second client), refused
/// sandbox-1 by policy, issued a3, rate-limited a4 (the fourth new host from one address).
private func runScript(_ m: RunningMirror) async throws {
    let p = m.port
    let t = m.clientToken
    let steps: [(UpstreamRequest, Int)] = [
        (SeedCalls.cloud(port: p, host: "A1", token: t), 200),
        (SeedCalls.cloud(port: p, host: "a1.corp.example", token: t), 200),
        (SeedCalls.asgardV1(port: p, host: "a1", token: t), 200),
        (SeedCalls.licenseOnly(port: p, hosts: ["a2"], token: secondClientSecret, bare: true), 200),
        (SeedCalls.cloud(port: p, host: "sandbox-1", token: t), 403),
        (SeedCalls.cloud(port: p, host: "a3", token: t), 200),
        (SeedCalls.cloud(port: p, host: "a4", token: t), 429),
    ]
    for (i, (request, status)) in steps.enumerated() {
        let a = try await m.send(request)
        #expect(a.status == status, "step \(i): \(a.status) \(a.text.prefix(200))")
    }
    #expect(m.simulator.counts.licensesIssued == 3)
    let ok = await eventually {
        let kinds = auditRecords(m).map(\.event)
        return scriptedDecisions.allSatisfy { k, n in kinds.filter { $0 == k }.count == n }
    }
    #expect(ok, "\(auditRecords(m).map(\.event))")
}

private func jsonObject(_ a: SeedAnswer) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(a.body)) as? [String: Any], "\(a.text.prefix(300))")
}

@Suite(.serialized) struct AuditEndToEndTests {
    @Test func auditVerifyReportsTheRunIntactAndNamesATamperedRecord() async throws {
        let sink = SimulatorTestLogSink()
        try await withRunningMirror(scriptedOptions(sink)) { (m: RunningMirror) async throws in
            try await runScript(m)
            await m.stop()
            let dir = m.lab.app.config.auditDirectory
            let records = try AuditFiles.records(directory: dir)
            let decisions = records.filter { scriptedDecisions[$0.event] != nil }
            #expect(decisions.count == 7)
            #expect(await SeedMirrorCLI.main(["audit", "verify", "--config", m.lab.configPath]) == 0)
            let head = try FileAuditHeadStore(directory: dir).load()
            let intact = try AuditVerifier.verify(directory: dir, head: head)
            #expect(intact.isIntact, "\(intact.summary)")
            #expect(intact.records == records.count, "\(intact.summary)")
            #expect(intact.lastSeq == records.last?.seq)

            // One byte of the record that issued a2: the host key's digit.
            let target = try #require(records.first { $0.event == "issued" && $0.host == "a2" })
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jsonl") }
            var edited = false
            for f in files where !edited {
                let path = dir + "/" + f
                var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                var offset = 0
                for line in lines {
                    let text = String(decoding: line, as: UTF8.self)
                    if text.contains("\"seq\":\(target.seq),"), let r = text.range(of: "\"host\":\"a2\"") {
                        let at = offset + text.utf8.distance(from: text.startIndex, to: r.upperBound) - 2
                        #expect(bytes[at] == UInt8(ascii: "2"))
                        bytes[at] = UInt8(ascii: "7")
                        try Data(bytes).write(to: URL(fileURLWithPath: path))
                        edited = true
                        break
                    }
                    offset += line.count + 1
                }
            }
            #expect(edited)
            #expect(await SeedMirrorCLI.main(["audit", "verify", "--config", m.lab.configPath]) == 1)
            let broken = try AuditVerifier.verify(directory: dir, head: head)
            #expect(!broken.isIntact)
            #expect(broken.problem?.seq == target.seq, "\(broken.summary)")
            #expect(broken.summary.contains(String(target.seq)), "\(broken.summary)")
        }
    }

    @Test func adminAPIMetricsAndDashboardAnswerTheScriptedRunAndLeakNoSecret() async throws {
        let sink = SimulatorTestLogSink()
        try await withRunningMirror(scriptedOptions(sink)) { (m: RunningMirror) async throws in
            try await runScript(m)
            let admin = m.adminToken
            #expect(!admin.isEmpty)
            var answers: [String] = []

            // Usage: exact counts of the script.
            let usage = try await m.admin("/api/mirror/usage?format=json", token: admin)
            #expect(usage.status == 200, "\(usage.text.prefix(200))")
            answers.append(usage.text)
            let totals = try #require(try jsonObject(usage)["totals"] as? [String: Any])
            #expect(totals["issued"] as? Int == 3, "\(totals)")
            #expect(totals["reused"] as? Int == 2, "\(totals)")
            #expect(totals["refusedByRule"] as? Int == 1, "\(totals)")
            #expect(totals["rateLimited"] as? Int == 1, "\(totals)")
            #expect(totals["requests"] as? Int == 7, "\(totals)")

            // Licenses: the three hosts that hold one.
            let list = try await m.admin("/api/mirror/licenses", token: admin)
            #expect(list.status == 200)
            answers.append(list.text)
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(list.body)) as? [[String: Any]])
            #expect(Set(entries.compactMap { $0["host"] as? String }) == ["a1", "a2", "a3"], "\(list.text)")
            #expect(entries.count == 3)

            // Audit since SEQ: exactly the records after it, in order.
            let records = auditRecords(m)
            let since = try #require(records.first { $0.event == "refused" }).seq
            let tail = try await m.admin("/api/mirror/audit?since=\(since)", token: admin)
            #expect(tail.status == 200)
            answers.append(tail.text)
            let seqs = tail.text.split(separator: "\n").compactMap { line -> UInt64? in
                let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return (o?["seq"] as? NSNumber)?.uint64Value
            }
            #expect(seqs == records.filter { $0.seq > since }.map(\.seq), "\(tail.text)")
            #expect(seqs.count >= 2)  // a3 issued, a4 rate-limited

            // Without a token, and with a client token: 401.
            let adminPaths = [
                "/api/mirror/usage", "/api/mirror/licenses", "/api/mirror/audit?since=0", "/metrics", "/dashboard",
            ]
            for path in adminPaths {
                let none = try await m.admin(path, token: nil)
                #expect(none.status == 401, "\(path) without token: \(none.status)")
                let client = try await m.admin(path, token: m.clientToken)
                #expect(client.status == 401, "\(path) with a client token: \(client.status)")
            }

            // Metrics: requests and decisions as scripted.
            let metrics = try await m.admin("/metrics", token: admin)
            #expect(metrics.status == 200)
            answers.append(metrics.text)
            let lines = metrics.text.split(separator: "\n").map(String.init)
            func value(_ name: String, _ labels: [String]) -> Double? {
                lines.first { l in
                    (l.hasPrefix(name + "{") || l.hasPrefix(name + " ")) && labels.allSatisfy { l.contains($0) }
                }
                    .flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            for (kind, n) in scriptedDecisions {
                #expect(
                    value("seedmirror_license_decisions_total", ["kind=\"\(kind)\""]) == Double(n),
                    "\(kind): \(lines.filter { $0.contains("decisions") })")
            }
            #expect(value("seedmirror_licenses_issued_total", []) == 3)
            #expect(value("seedmirror_licenses_reused_total", []) == 2)
            #expect(
                value("seedmirror_requests_total", ["route=\"cloud\"", "status=\"200\""]) == 3,
                "\(lines.filter { $0.contains("requests_total") })")
            #expect(value("seedmirror_requests_total", ["status=\"403\""]) == 1)
            #expect(value("seedmirror_requests_total", ["status=\"429\""]) == 1)
            try promtoolCheck(metrics.text)

            // Dashboard: an HTML page with a chart.
            let dash = try await m.admin("/dashboard", token: admin)
            #expect(dash.status == 200 && dash.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(dash.text.contains("<svg"))
            answers.append(dash.text)

            // No configured secret anywhere: access log, audit files, log sink, answers.
            await m.stop()
            let auditDir = m.lab.app.config.auditDirectory
            var written: [(String, String)] = [("log sink", sink.text)]
            written.append(("access log", try String(contentsOfFile: m.directory + "/access.log", encoding: .utf8)))
            for f in try FileManager.default.contentsOfDirectory(atPath: auditDir) {
                let data = try Data(contentsOf: URL(fileURLWithPath: auditDir + "/" + f))
                written.append((f, String(decoding: data, as: UTF8.self)))
            }
            written += answers.enumerated().map { ("answer \($0.offset)", $0.element) }
            #expect(written[1].1.split(separator: "\n").count >= 7)
            let secrets = [m.clientToken, secondClientSecret, admin, upstreamSecret, portalSecret]
            for (what, text) in written {
                for s in secrets { #expect(!text.contains(s), "a secret (\(s.prefix(4))…) appears in \(what)") }
            }
        }
    }
}

/// `promtool check metrics` on the exposition; skipped with a printed reason when promtool is missing.
private func promtoolCheck(_ exposition: String) throws {
    let candidates = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
    guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        print("promtool check skipped: promtool is not installed")
        return
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = ["check", "metrics"]
    let input = Pipe()
    let output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = output
    try p.run()
    input.fileHandleForWriting.write(Data(exposition.utf8))
    try input.fileHandleForWriting.close()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "promtool: \(String(decoding: out, as: UTF8.self))")
}

/// `metrics.listen` opens a second listener that serves `/metrics` and nothing else.
@Test func metricsListenerServesOnlyMetrics() async throws {
    let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &len) }
    }
    let metricsPort = UInt16(bigEndian: addr.sin_port)
    close(probe)
    var o = MirrorTestOptions.testDefaults
    o.configure = { root in root["metrics"] = ["listen": "127.0.0.1:\(metricsPort)", "requireAdmin": false] }
    try await withRunningMirror(o) { m in
        _ = try await m.send(SeedCalls.cloud(port: m.port, host: "m1", token: m.clientToken))
        let url = { (t: String) in UpstreamURL(host: "127.0.0.1", port: metricsPort, target: t) }
        let metrics = try await m.send(UpstreamRequest(method: "GET", url: url("/metrics")))
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("seedmirror_"))
        let other = try await m.send(UpstreamRequest(method: "GET", url: url("/dashboard")))
        #expect(other.status == 404)
    }
}
