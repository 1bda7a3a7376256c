import Foundation
import SeedCore
import SeedLicensing
import SeedServer
import Testing

@Suite struct LicensingSectionTests {
    func section(_ json: String, baseDir: String = "/nonexistent") throws -> LicensingSection {
        let root = try ConfigObject.parse(Data(json.utf8), source: "test.json")
        let s = try LicensingSection(root: root, baseDir: baseDir)
        try root.finish()
        return s
    }

    @Test func defaultsWhenAbsent() throws {
        let s = try section("{}")
        #expect(s.desk.lifetimeSeconds == 48 * 3600)
        #expect(s.desk.rateLimits.newHostsPerAddress == RateLimit(count: 5, per: 3600))
        #expect(s.desk.policy.networks == nil)
    }

    @Test func readsEverySection() throws {
        let s = try section(
            """
            {"licenses": {"lifetimeHours": 24, "renewalMarginHours": 2, "unknownOutcomeBlockHours": 1},
             "policy": {"clientNetworks": {"allow": ["10.0.0.0/8", "fd00::/8"]},
                        "denyHostPatterns": {"patterns": ["SANDBOX-*"], "mode": "report-only"},
                        "inventory": {"hosts": ["WS01.corp"]},
                        "hostBinding": {"v4Prefix": 16},
                        "firstSeenHold": {"minutes": 10}},
             "rateLimits": {"newHostsPerAddress": {"count": 2, "perSeconds": 60}, "requestsPerHost": {"count": 0},
                            "jumpHosts": ["10.9.9.9"], "breakerPerHour": 0, "breakerPerDay": 100},
             "quotas": {"accounts": [{"account": "main", "total": 500}], "tokens": [{"name": "lab", "cap": 5}],
                        "upstream409MemoryMinutes": 5}}
            """)
        #expect(s.desk.lifetimeSeconds == 24 * 3600)
        #expect(s.desk.renewalMarginSeconds == 2 * 3600)
        #expect(s.desk.policy.networks?.allowed.count == 2)
        #expect(s.desk.policy.deny == .init(patterns: ["sandbox-*"], mode: .reportOnly))
        #expect(s.desk.policy.inventory?.hosts == ["ws01"])
        #expect(s.desk.policy.binding?.v4Prefix == 16)
        #expect(s.desk.policy.firstSeenHold?.seconds == 600)
        #expect(s.desk.rateLimits.newHostsPerAddress == RateLimit(count: 2, per: 60))
        #expect(s.desk.rateLimits.requestsPerHost == nil)
        #expect(s.desk.rateLimits.breakerPerHour == nil && s.desk.rateLimits.breakerPerDay == 100)
        #expect(s.desk.quotas.accountTotals == ["main": 500] && s.desk.quotas.tokenCaps == ["lab": 5])
        #expect(s.desk.quotas.upstream409MemorySeconds == 300)
    }

    @Test(arguments: [
        (#"{"licenses": {"lifetimeHour": 24}}"#, "licenses.lifetimeHour"),
        (#"{"policy": {"clientNetworks": {"allow": ["10.0.0.0/40"]}}}"#, "policy.clientNetworks.allow[0]"),
        (#"{"policy": {"hostBinding": {"mode": "warn"}}}"#, "policy.hostBinding.mode"),
        (#"{"policy": {"inventory": {"file": "missing.csv"}}}"#, "policy.inventory.file"),
        (#"{"rateLimits": {"jumpHosts": ["jump"]}}"#, "rateLimits.jumpHosts[0]"),
        (#"{"licenses": {"lifetimeHours": 1, "renewalMarginHours": 2}}"#, "licenses.renewalMarginHours"),
    ])
    func badValuesNameTheirKey(json: String, key: String) {
        #expect {
            _ = try section(json)
        } throws: { e in
            "\(e)".contains(key)
        }
    }

    @Test func inventoryFileIsReadRelativeToTheBaseDirectory() throws {
        let dir = NSTemporaryDirectory() + "seedmirror-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("hostname,owner\nWS01,a\nws02.corp,b\nbad name,c\n".utf8).write(
            to: URL(fileURLWithPath: dir + "/inv.csv"))
        let s = try section(#"{"policy": {"inventory": {"file": "inv.csv", "mode": "report-only"}}}"#, baseDir: dir)
        #expect(s.desk.policy.inventory?.hosts == ["ws01", "ws02"])
        #expect(s.desk.policy.inventory?.mode == .reportOnly)
        #expect(s.inventoryRejected == ["bad name"])
    }

    @Test func makeDeskOpensTheLedgerAndHonoursOffline() async throws {
        let dir = NSTemporaryDirectory() + "seedmirror-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try section("{}")
        let sink = CollectingSink()
        let (desk, ledger) = try s.makeDesk(
            ledgerPath: dir + "/cache/ledger.sqlite", offline: true, sink: sink, logger: .discard, environment: [:])
        let o = await desk.decide(request("ws01"), issuer: FakeIssuer())
        #expect(o.status == 409)
        #expect(try ledger.pendingHosts().map(\.hostKey) == ["ws01"])
        #expect(FileManager.default.fileExists(atPath: dir + "/cache/ledger.sqlite"))
    }
}
