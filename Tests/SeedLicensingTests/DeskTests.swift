import Foundation
import SeedLedger
import SeedLicensing
import SeedTestSupport
import Testing

@Suite struct DeskDedupTests {
    @Test func fiftyConcurrentRequestsAndRetriesCostOneIssuance() async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir)
            let gate = Gate()
            let issuer = FakeIssuer(gate: gate)
            let key = LicenseKey(account: "acct", hostKey: "ws01", type: .workstation)
            let results = try await withThrowingTaskGroup(of: [LicenseOutcome].self) { group in
                for i in 0..<50 {
                    group.addTask {
                        var out = [
                            await f.desk.decide(request(i % 2 == 0 ? "WS01" : "ws01.corp.example"), issuer: issuer)
                        ]
                        for _ in 0..<3 { out.append(await f.desk.decide(request("ws01"), issuer: issuer)) }
                        return out
                    }
                }
                // Hold the one upstream call until every other first request waits behind it.
                var spins = 0
                while await f.desk.waiting(for: key) < 49 {
                    spins += 1
                    if spins > 1_000_000 { break }
                    await Task.yield()
                }
                #expect(await f.desk.waiting(for: key) == 49)
                await gate.open()
                var all: [LicenseOutcome] = []
                for try await r in group { all += r }
                return all
            }
            #expect(results.count == 200)
            #expect(issuer.calls == 1)
            let first = try #require(results.first?.bytes)
            #expect(results.allSatisfy { $0.bytes == first })
            #expect(f.sink.events(.issued).count == 1)
            #expect(f.sink.events(.reused).count == 199)
            #expect(try f.ledger.licenses(hostKey: "ws01").count == 1)
            #expect(try f.ledger.intents(in: [.issued]).count == 1)
        }
    }

    @Test func nameVariantsAndNetBIOSCutShareOneLicense() async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir)
            let issuer = FakeIssuer()
            let a = await f.desk.decide(request("WS01"), issuer: issuer)
            let b = await f.desk.decide(request("ws01"), issuer: issuer)
            let c = await f.desk.decide(request("WS01.corp.example"), issuer: issuer)
            #expect(a.bytes != nil && a.bytes == b.bytes && b.bytes == c.bytes)
            #expect(issuer.calls == 1)

            let long = await f.desk.decide(request("FINANCE-LAPTOP-07"), issuer: issuer)  // 17 characters
            let cut = await f.desk.decide(request("FINANCE-LAPTOP-"), issuer: issuer)  // %COMPUTERNAME%
            #expect(issuer.calls == 2)
            #expect(long.bytes != nil && cut.bytes == long.bytes)
            if case .granted(_, let hostKey, let kind) = cut {
                #expect(hostKey == "finance-laptop-07")
                #expect(kind == .reused)
            }
            let flagged = f.sink.events.last
            #expect(flagged?.aliasFlag == true)
            #expect(flagged?.hostKey == "finance-laptop-07")
            #expect(flagged?.hostAsked == "FINANCE-LAPTOP-")
            #expect(f.sink.events.filter(\.aliasFlag).count == 1)
        }
    }

    @Test func fifteenCharacterHostWithItsOwnLicenseIsNotAnAlias() async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir)
            let issuer = FakeIssuer()
            let own = await f.desk.decide(request("ABCDEFGHIJKLMNO"), issuer: issuer)
            let long = await f.desk.decide(request("abcdefghijklmnopq"), issuer: issuer)
            #expect(own.bytes != long.bytes)
            #expect(await f.desk.decide(request("abcdefghijklmno"), issuer: issuer).bytes == own.bytes)
            #expect(issuer.calls == 2)
            #expect(!f.sink.events.contains { $0.aliasFlag })
        }
    }

    @Test func invalidHostNamesAre400WithTheReason() async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir)
            let issuer = FakeIssuer()
            for bad in ["", "ws..01", "ws%2f01", String(repeating: "x", count: 300), "wѕ01"] {
                let o = await f.desk.decide(request(bad), issuer: issuer)
                #expect(o.status == 400)
                #expect(o.reason.hasPrefix("invalid host name: "))
            }
            #expect(issuer.calls == 0)
            #expect(f.sink.events(.refused).allSatisfy { $0.rule == "host-name" })
        }
    }

    @Test func renewalAfterTheMarginAndRevokeIssueAnew() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.lifetimeSeconds = 48 * 3600
            config.renewalMarginSeconds = 3600
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer()
            let first = await f.desk.decide(request("ws01"), issuer: issuer)
            f.clock.advance(by: 46 * 3600)
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).bytes == first.bytes)
            f.clock.advance(by: 1.5 * 3600)  // inside the renewal margin
            let renewed = await f.desk.decide(request("ws01"), issuer: issuer)
            #expect(renewed.grantKind == .renewed)
            #expect(renewed.bytes != first.bytes)
            #expect(issuer.calls == 2)
            #expect(try await f.desk.revoke(host: "WS01.corp") == 2)
            #expect(f.sink.events(.revoke).count == 1)
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).grantKind == .issued)
            #expect(issuer.calls == 3)
        }
    }

    @Test func reopenedDeskServesStoredLicensesWithoutUpstream() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let issuer = FakeIssuer()
            var bytes: [UInt8]?
            do {
                let f = try Fixture(dir: dir, clock: clock)
                bytes = await f.desk.decide(request("ws01"), issuer: issuer).bytes
            }
            let f2 = try Fixture(dir: dir, clock: clock)
            #expect(await f2.desk.decide(request("WS01"), issuer: issuer).bytes == bytes)
            #expect(issuer.calls == 1)
        }
    }
}

@Suite struct DeskRateLimitTests {
    @Test func oneAddressAskingForTenNewHostsGetsOnlyTheConfiguredNumber() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.rateLimits.newHostsPerAddress = RateLimit(count: 3, per: 3600)
            config.rateLimits.jumpHosts = [IPNetwork("10.9.9.9")!]
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer()
            var outcomes: [LicenseOutcome] = []
            for i in 0..<10 {
                outcomes.append(await f.desk.decide(request("host\(i)", from: "10.0.0.5"), issuer: issuer))
            }
            #expect(outcomes.filter { $0.status == 200 }.count == 3)
            let limited = outcomes.filter { $0.status == 429 }
            #expect(limited.count == 7)
            #expect(limited.allSatisfy { ($0.retryAfter ?? 0) > 0 })
            #expect(issuer.calls == 3)
            #expect(f.sink.events(.rateLimited).allSatisfy { $0.rule == RateLimitConfiguration.addressRule })
            // Hosts already licensed are not new: asking again from the same address is fine.
            #expect(await f.desk.decide(request("host0", from: "10.0.0.5"), issuer: issuer).status == 200)
            // A listed jump host is exempt.
            for i in 0..<10 {
                #expect(await f.desk.decide(request("jump\(i)", from: "10.9.9.9"), issuer: issuer).status == 200)
            }
            #expect(issuer.calls == 13)
        }
    }

    @Test func perNetworkAndPerHostLimits() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.rateLimits.newHostsPerNetwork = RateLimit(count: 2, per: 3600)
            config.rateLimits.requestsPerHost = RateLimit(count: 5, per: 60)
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer()
            #expect(await f.desk.decide(request("a1", from: "10.0.0.1"), issuer: issuer).status == 200)
            #expect(await f.desk.decide(request("a2", from: "10.0.0.2"), issuer: issuer).status == 200)
            let third = await f.desk.decide(request("a3", from: "10.0.0.3"), issuer: issuer)
            #expect(third.status == 429)
            #expect(await f.desk.decide(request("a4", from: "10.0.1.3"), issuer: issuer).status == 200)
            var statuses: [Int] = []
            for _ in 0..<5 {
                statuses.append(await f.desk.decide(request("a1", from: "10.0.0.1"), issuer: issuer).status)
            }
            #expect(statuses == [200, 200, 200, 200, 429], "the sixth request for a1 in a minute")
        }
    }

    @Test func globalBreakerTripsAtItsThreshold() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.rateLimits.breakerPerHour = 4
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer()
            var statuses: [Int] = []
            for i in 0..<7 {
                statuses.append(await f.desk.decide(request("b\(i)", from: "10.0.\(i).1"), issuer: issuer).status)
            }
            #expect(statuses == [200, 200, 200, 200, 429, 429, 429])
            #expect(issuer.calls == 4)
            let trips = f.sink.events(.breakerTripped)
            #expect(trips.count == 1)
            #expect(trips.first?.rule == RateLimitConfiguration.breakerHourRule)
            // Reuse is not an issuance: licensed hosts are still served.
            #expect(await f.desk.decide(request("b0", from: "10.0.0.1"), issuer: issuer).status == 200)
            f.clock.advance(by: 901)  // a quarter of the hour refills one license
            #expect(await f.desk.decide(request("b9", from: "10.0.9.1"), issuer: issuer).status == 200)
        }
    }

    @Test func upstream409IsRememberedAndNotAskedAgain() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.quotas.upstream409MemorySeconds = 600
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer { n throws(IssueError) in
                if n == 1 { throw IssueError(.rejected(status: 409), "license pool exhausted") }
                return IssuedLicense(bytes: FakeIssuer.licenseBytes(n, host: "x"), source: .upstream)
            }
            #expect(await f.desk.decide(request("q1"), issuer: issuer).status == 409)
            let again = await f.desk.decide(request("q2"), issuer: issuer)
            #expect(again.status == 409)
            #expect(again.reason.contains("not asked again"))
            #expect(issuer.calls == 1)
            #expect(f.sink.events(.quotaExhausted).count == 2)
            #expect(try f.ledger.intents(in: [.failed]).count == 1)
            f.clock.advance(by: 601)
            #expect(await f.desk.decide(request("q2"), issuer: issuer).status == 200)
            #expect(issuer.calls == 2)
        }
    }

    @Test func accountQuotaAndTokenCap() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.quotas.accountTotals = ["acct": 3]
            config.quotas.tokenCaps = ["lab": 1]
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer()
            #expect(await f.desk.decide(request("t1", token: "lab"), issuer: issuer).status == 200)
            let capped = await f.desk.decide(request("t2", token: "lab"), issuer: issuer)
            #expect(capped.status == 409)
            #expect(f.sink.events.last?.rule == QuotaConfiguration.tokenRule)
            #expect(await f.desk.decide(request("t2"), issuer: issuer).status == 200)
            #expect(await f.desk.decide(request("t3"), issuer: issuer).status == 200)
            let over = await f.desk.decide(request("t4"), issuer: issuer)
            #expect(over.status == 409)
            #expect(over.reason.contains("3 of 3"))
            #expect(issuer.calls == 3)
            #expect(try f.ledger.quotaCounters().perAccount["acct"] == 3)
        }
    }
}

@Suite struct DeskFollowerTests {
    @Test func followersOfAStuckLeaderGiveUpWithoutCallingUpstream() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.followerTimeout = .milliseconds(50)
            let f = try Fixture(dir: dir, config: config)
            let gate = Gate()
            let issuer = FakeIssuer(gate: gate)
            let leader = Task { await f.desk.decide(request("ws01"), issuer: issuer) }
            let key = LicenseKey(account: "acct", hostKey: "ws01", type: .workstation)
            while issuer.calls == 0 { await Task.yield() }
            let followers = await withTaskGroup(of: LicenseOutcome.self) { group in
                for _ in 0..<5 { group.addTask { await f.desk.decide(request("WS01"), issuer: issuer) } }
                var out: [LicenseOutcome] = []
                for await o in group { out.append(o) }
                return out
            }
            #expect(followers.allSatisfy { $0.status == 503 && $0.retryAfter != nil })
            #expect(issuer.calls == 1)
            #expect(await f.desk.waiting(for: key) == 0)
            await gate.open()
            #expect(await leader.value.status == 200)
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).status == 200)
            #expect(issuer.calls == 1)
        }
    }
}
