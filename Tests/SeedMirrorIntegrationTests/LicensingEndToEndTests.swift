import Foundation
import SeedAudit
import SeedCore
import SeedHTTPServer
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

// The licensing issue's must-shows through the real server: real TLS, the real desk, ledger and audit log,
// against the in-process cloud simulator, which counts every issuance.

/// Every audit record the mirror has written so far (the log may still be flushing: poll with `eventually`).
func auditRecords(_ m: RunningMirror) -> [AuditRecord] {
    (try? AuditFiles.records(directory: m.lab.app.config.auditDirectory)) ?? []
}

/// The rate-limit keys with every limit off, to be overridden one at a time.
func rateLimitsOff(_ overrides: [String: Any] = [:]) -> [String: Any] {
    var r: [String: Any] = [
        "requestsPerHost": ["count": 0], "newHostsPerAddress": ["count": 0], "newHostsPerNetwork": ["count": 0],
        "breakerPerHour": 0, "breakerPerDay": 0,
    ]
    for (k, v) in overrides { r[k] = v }
    return r
}

func licenseInZip(_ a: SeedAnswer) -> [UInt8]? { (try? readPackage(a.body))?.licenses.first?.bytes }

@Suite(.serialized) struct LicensingEndToEndTests {
    @Test func fiftyConcurrentSeedsWithRetriesCostOneIssuanceAndGetTheSameBytes() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            // Each seed asks once (all 50 at once), then re-asks three times after its answer came.
            let answers = try await concurrently(50) { _ in
                var got: [(Int, [UInt8]?)] = []
                for _ in 0..<4 {
                    let a = try await m.send(SeedCalls.cloud(port: m.port, host: "SAME-SEED", token: m.clientToken))
                    got.append((a.status, licenseInZip(a)))
                }
                return got
            }
            let all = answers.flatMap { $0 }
            #expect(all.count == 200)
            #expect(all.allSatisfy { $0.0 == 200 })
            let expected = try #require(m.simulator.license(host: "same-seed"))
            #expect(all.allSatisfy { $0.1 == expected })
            let c = m.simulator.counts
            #expect(c.licensesIssued == 1, "\(c.json())")
            #expect(c.issuedByHost["same-seed"] == 1, "\(c.json())")
        }
    }

    @Test func spellingsOfOneHostAndItsNetBIOSCutShareOneLicense() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            var bodies: [[UInt8]] = []
            for name in ["WS01", "ws01", "WS01.corp.example"] {
                let a = try await m.send(SeedCalls.cloud(port: m.port, host: name, token: m.clientToken))
                #expect(a.status == 200, "\(name): \(a.text.prefix(200))")
                bodies.append(try #require(licenseInZip(a)))
            }
            #expect(Set(bodies).count == 1)
            #expect(m.simulator.counts.licensesIssued == 1)

            let long = "finance-laptop-007"  // 18 characters
            let cut = String(long.prefix(15))  // what NetBIOS reports: "finance-laptop-"
            #expect(long.count == 18 && cut.count == 15)
            let first = try await m.send(SeedCalls.cloud(port: m.port, host: long, token: m.clientToken))
            #expect(first.status == 200)
            let second = try await m.send(SeedCalls.cloud(port: m.port, host: cut, token: m.clientToken))
            #expect(second.status == 200, "\(second.text.prefix(200))")
            #expect(licenseInZip(second) == licenseInZip(first))
            #expect(licenseInZip(second) == m.simulator.license(host: long))
            #expect(m.simulator.counts.licensesIssued == 2, "\(m.simulator.counts.json())")
            #expect(
                await eventually {
                    auditRecords(m).contains { $0.hostAsked == cut && $0.alias && $0.host == long }
                }, "\(auditRecords(m).map { ($0.event, $0.hostAsked, $0.host, $0.alias) })")
            // The long name's own record is not an alias.
            #expect(!auditRecords(m).contains { $0.hostAsked == long && $0.alias })
        }
    }

    @Test func newHostsPerAddressAreLimitedAndAJumpHostIsExempt() async throws {
        for jump in [false, true] {
            var o = MirrorTestOptions.testDefaults
            o.unlimitedRates = false
            o.configure = { root in
                var r = rateLimitsOff(["newHostsPerAddress": ["count": 3, "perSeconds": 3600]])
                if jump { r["jumpHosts"] = ["127.0.0.1/32"] }
                root["rateLimits"] = r
            }
            try await withRunningMirror(o) { (m: RunningMirror) async throws in
                var statuses: [Int] = []
                for i in 0..<10 {
                    let a = try await m.send(
                        SeedCalls.licenseOnly(port: m.port, hosts: ["NEWHOST\(i)"], token: m.clientToken, bare: true))
                    statuses.append(a.status)
                    if a.status == 429 {
                        let after = try #require(a.header("Retry-After"), "429 without Retry-After")
                        #expect((Int(after) ?? 0) > 0, "Retry-After: \(after)")
                    }
                }
                if jump {
                    #expect(statuses == Array(repeating: 200, count: 10))
                    #expect(m.simulator.counts.licensesIssued == 10)
                } else {
                    #expect(statuses == Array(repeating: 200, count: 3) + Array(repeating: 429, count: 7))
                    #expect(m.simulator.counts.licensesIssued == 3)
                    // A host that already holds a license is not a new host: still served.
                    let again = try await m.send(
                        SeedCalls.licenseOnly(port: m.port, hosts: ["newhost0"], token: m.clientToken, bare: true))
                    #expect(again.status == 200)
                    #expect(m.simulator.counts.licensesIssued == 3)
                }
            }
        }
    }

    @Test func policyRulesRefuseWith403InEnforceMode() async throws {
        // Deny pattern and inventory together (the deny rule comes first for a listed sandbox host).
        var o = MirrorTestOptions.testDefaults
        o.configure = { root in
            root["policy"] = [
                "denyHostPatterns": ["patterns": ["sandbox-*"], "mode": "enforce"],
                "inventory": ["hosts": ["ws-inv", "sandbox-1"], "mode": "enforce"],
            ]
        }
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            for (host, rule) in [("SANDBOX-1", "host-deny"), ("stranger", "inventory")] {
                let a = try await m.send(SeedCalls.cloud(port: m.port, host: host, token: m.clientToken))
                #expect(a.status == 403, "\(host): \(a.status) \(a.text.prefix(200))")
                #expect(a.text.contains(rule), "\(host): \(a.text.prefix(200))")
            }
            #expect(try await m.send(SeedCalls.cloud(port: m.port, host: "ws-inv", token: m.clientToken)).status == 200)
            #expect(m.simulator.counts.licensesIssued == 1)
            #expect(
                await eventually {
                    let r = auditRecords(m)
                    return r.contains { $0.event == "refused" && $0.rule == "host-deny" && !$0.reportOnly }
                        && r.contains { $0.event == "refused" && $0.rule == "inventory" && !$0.reportOnly }
                })
        }
        var n = MirrorTestOptions.testDefaults
        n.configure = { root in root["policy"] = ["clientNetworks": ["allow": ["10.0.0.0/8"], "mode": "enforce"]] }
        try await withRunningMirror(n) { (m: RunningMirror) async throws in
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "ws-net", token: m.clientToken))
            #expect(a.status == 403 && a.text.contains("client-network"), "\(a.status) \(a.text.prefix(200))")
            #expect(m.simulator.counts.licensesIssued == 0)
        }
    }

    @Test func policyRulesInReportOnlyModeServeAndRecordWhatTheyWouldHaveRefused() async throws {
        var o = MirrorTestOptions.testDefaults
        o.configure = { root in
            root["policy"] = [
                "clientNetworks": ["allow": ["10.0.0.0/8"], "mode": "report-only"],
                "denyHostPatterns": ["patterns": ["sandbox-*"], "mode": "report-only"],
                "inventory": ["hosts": ["ws-inv"], "mode": "report-only"],
            ]
        }
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "sandbox-9", token: m.clientToken))
            #expect(a.status == 200, "\(a.text.prefix(200))")
            #expect(licenseInZip(a) == m.simulator.license(host: "sandbox-9"))
            let b = try await m.send(SeedCalls.cloud(port: m.port, host: "ws-inv", token: m.clientToken))
            #expect(b.status == 200)
            #expect(m.simulator.counts.licensesIssued == 2)
            #expect(
                await eventually {
                    let r = auditRecords(m)
                    return r.contains {
                        $0.event == "issued" && $0.host == "sandbox-9" && $0.reportOnly
                            && $0.rule == "client-network,host-deny,inventory"
                    } && r.contains { $0.event == "issued" && $0.host == "ws-inv" && $0.reportOnly && $0.rule == "client-network" }
                },
                "\(auditRecords(m).map { ($0.event, $0.host, $0.reportOnly, $0.rule) })")
        }
    }

    @Test func globalBreakerTripsAtItsThresholdAndIsAudited() async throws {
        var o = MirrorTestOptions.testDefaults
        o.unlimitedRates = false
        o.configure = { root in root["rateLimits"] = rateLimitsOff(["breakerPerHour": 4]) }
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            var statuses: [Int] = []
            for i in 0..<7 {
                let a = try await m.send(
                    SeedCalls.licenseOnly(port: m.port, hosts: ["BRK\(i)"], token: m.clientToken, bare: true))
                statuses.append(a.status)
                if i >= 4 { #expect(a.header("Retry-After") != nil) }
            }
            #expect(Array(statuses.prefix(4)) == [200, 200, 200, 200])
            #expect(statuses.dropFirst(4).allSatisfy { $0 == 429 || $0 == 503 }, "\(statuses)")
            #expect(m.simulator.counts.licensesIssued == 4)
            // One alert per trip, not one per refused request.
            #expect(await eventually { auditRecords(m).filter { $0.event == "rate-limited" }.count == 3 })
            #expect(auditRecords(m).filter { $0.event == "breaker-tripped" }.count == 1)
        }
    }

    @Test func upstreamQuotaExhaustionIs409AndRemembered() async throws {
        var o = MirrorTestOptions.testDefaults
        o.simulator.quota = 2
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            for h in ["q1", "q2"] {
                #expect(
                    try await m.send(SeedCalls.licenseOnly(port: m.port, hosts: [h], token: m.clientToken, bare: true))
                        .status == 200)
            }
            let third = try await m.send(
                SeedCalls.licenseOnly(port: m.port, hosts: ["q3"], token: m.clientToken, bare: true))
            #expect(third.status == 409, "\(third.text.prefix(200))")
            let asked = m.simulator.counts.requests.values.reduce(0, +)
            let fourth = try await m.send(SeedCalls.cloud(port: m.port, host: "q4", token: m.clientToken))
            #expect(fourth.status == 409, "\(fourth.text.prefix(200))")
            // Remembered: the second refused host did not reach the simulator.
            #expect(m.simulator.counts.requests.values.reduce(0, +) == asked, "\(m.simulator.counts.json())")
            #expect(m.simulator.counts.licensesIssued == 2)
            #expect(
                await eventually { auditRecords(m).filter { $0.event == "quota-exhausted" }.count == 2 },
                "\(auditRecords(m).map { ($0.event, $0.host, $0.rule) })")
        }
    }

    @Test func offlineMirrorServesPooledLicensesAndListsTheRestAsPending() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let r = try InitCommand.run(dir: dir + "/m", names: ["localhost", "127.0.0.1"], force: false)
            let config = r.configPath
            #expect(try MirrorConfig.load(path: config).upstream.mode == .offline)
            // The package, imported into the store with the `import` command.
            let pkg = SimulatedPackage(seed: 7, totalBytes: 256 * 1024, version: 1)
            let zip = dir + "/thor10-win.zip"
            try Data(pkg.zip(licenseName: "vendor.lic", license: Array(repeating: 9, count: 900)))
                .write(to: URL(fileURLWithPath: zip))
            #expect(
                await SeedMirrorCLI.main(["import", zip, "--os", "windows", "--arch", "amd64", "--config", config])
                    == 0)
            // Licenses bought by hand, imported into the pool with `licenses import`.
            try FileManager.default.createDirectory(atPath: dir + "/pool", withIntermediateDirectories: true)
            let pooled = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            try Data(pooled).write(to: URL(fileURLWithPath: dir + "/pool/POOLED1.lic"))
            #expect(
                await SeedMirrorCLI.main([
                    "licenses", "--config", config, "import", dir + "/pool", "--type", "workstation",
                ]) == 0)

            let app = try MirrorApp(
                config: try MirrorConfig.load(path: config), listen: [ListenAddress(host: "127.0.0.1", port: 0)],
                logger: .discard, accessLog: nil)
            let port = try app.start()[0].port
            let token = try String(contentsOfFile: r.clientTokenPath, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            var cc = UpstreamConfiguration(caFile: r.pki.caCertificatePath)
            cc.maxBodyBytes = 64 * 1024 * 1024
            let client = try UpstreamClient(configuration: cc, logger: .discard)
            do {
                let served = try await client.send(SeedCalls.cloud(port: port, host: "pooled1", token: token))
                #expect(served.status == 200, "\(String(decoding: served.body.prefix(200), as: UTF8.self))")
                let p = try readPackage(served.body)
                #expect(p.hasThor64)
                #expect(p.licenses.map(\.bytes) == [pooled])
                let other = try await client.send(SeedCalls.cloud(port: port, host: "OTHER9.corp", token: token))
                #expect(other.status == 409)
                // Listed beside the running server (the ledger is opened read-only).
                let export = dir + "/hostnames.txt"
                #expect(await SeedMirrorCLI.main(["licenses", "--config", config, "pending", "--export", export]) == 0)
                #expect(try String(contentsOfFile: export, encoding: .utf8) == "other9\n")
            } catch {
                await app.shutdown(grace: .seconds(1))
                throw error
            }
            await app.shutdown(grace: .seconds(1))
            let records = try AuditFiles.records(directory: app.config.auditDirectory)
            #expect(records.contains { $0.event == "pool-served" && $0.host == "pooled1" })
            #expect(records.contains { $0.event == "pending" && $0.host == "other9" })
        }
    }
}
