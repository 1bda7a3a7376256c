import Foundation
import SeedLedger
import SeedLicensing
import SeedTestSupport
import Testing

/// `decideWithoutWaiting` (the event loop's path) against `decide` (the async path): same rules, same
/// outcomes, same audit events, and nothing changed when it declines.
@Suite struct ImmediateDeskTests {
    /// Rules that the first step decides: per-host request limit, a report-only rule, a deny rule, the
    /// first-seen hold, a short lifetime with a renewal margin.
    static var config: DeskConfiguration {
        var c = Fixture.baseConfig
        c.rateLimits.requestsPerHost = RateLimit(count: 5, per: 3600)
        c.policy.deny = .init(patterns: ["sandbox-*"], mode: .enforce)
        c.policy.binding = .init(v4Prefix: 24, v6Prefix: 64, mode: .reportOnly)
        c.policy.firstSeenHold = .init(seconds: 60, mode: .enforce)
        c.lifetimeSeconds = 3600
        c.renewalMarginSeconds = 600
        return c
    }

    enum Step {
        case ask(LicenseRequest)
        case advance(TimeInterval)
    }

    /// A sequence touching every immediate outcome and every way of declining.
    static var steps: [Step] {
        [
            .ask(request("WS-0001-LONGNAME1")),  // new host: held (first seen)
            .advance(61),
            .ask(request("WS-0001-LONGNAME1")),  // issued
            .ask(request("WS-0001-LONGNAME1")),  // reused
            .ask(request("ws-0001-longnam")),  // NetBIOS cut → reused, alias flag
            .ask(request("WS-0001-LONGNAME1", from: "192.168.9.9")),  // reused, binding report-only
            .ask(request("SANDBOX-7")),  // denied
            .ask(request("bad host!")),  // invalid name
            .ask(request("WS-0001-LONGNAME1")),  // 6th in the hour: rate limited
            .advance(3600 - 61 - 500),  // inside the renewal margin, bucket refilled partly
            .ask(request("WS-0001-LONGNAME1")),  // renewed (async only)
            .ask(request("WS-0001-LONGNAME1")),  // reused: the renewed license
            .ask(request("OTHER-HOST")),  // new host: held
        ]
    }

    /// Runs the steps on a fresh desk; with `immediateFirst`, every request tries the synchronous path first.
    func run(dir: String, immediateFirst: Bool) async throws -> (
        outcomes: [LicenseOutcome], immediate: [Bool], events: [DecisionEvent], issued: Int
    ) {
        let f = try Fixture(dir: dir, config: Self.config)
        let issuer = FakeIssuer()
        var outcomes: [LicenseOutcome] = []
        var immediate: [Bool] = []
        for step in Self.steps {
            switch step {
            case .advance(let s): f.clock.advance(by: s)
            case .ask(let r):
                if immediateFirst, let o = f.desk.decideWithoutWaiting(r) {
                    outcomes.append(o)
                    immediate.append(true)
                } else {
                    outcomes.append(await f.desk.decide(r, issuer: issuer))
                    immediate.append(false)
                }
            }
        }
        return (outcomes, immediate, f.sink.events, issuer.calls)
    }

    @Test func immediatePathGivesTheAsyncPathsOutcomesAndEvents() async throws {
        try await withTemporaryDirectory { dirA in
            try await withTemporaryDirectory { dirB in
                let a = try await run(dir: dirA, immediateFirst: true)
                let b = try await run(dir: dirB, immediateFirst: false)
                #expect(a.outcomes == b.outcomes)
                #expect(a.events == b.events)
                #expect(a.issued == b.issued && a.issued == 2)
                // What went which way: the first sighting, the issue and the renewal needed the async path.
                #expect(
                    a.immediate == [true, false, true, true, true, true, true, true, false, true, true])
                let kinds = b.events.map(\.kind)
                #expect(
                    kinds == [
                        .refused, .issued, .reused, .reused, .reused, .refused, .refused, .rateLimited, .renewed,
                        .reused, .refused,
                    ])
                #expect(b.events[3].aliasFlag && b.events[4].reportOnly)
            }
        }
    }

    @Test func declinedRequestsChangeNothing() async throws {
        try await withTemporaryDirectory { dir in
            var c = Fixture.baseConfig
            c.rateLimits.requestsPerHost = RateLimit(count: 1, per: 3600)
            let f = try Fixture(dir: dir, config: c)
            let issuer = FakeIssuer()
            // A new host needs issuing: declined, and its one request of the hour is not spent.
            #expect(f.desk.decideWithoutWaiting(request("ws01")) == nil)
            #expect(f.desk.decideWithoutWaiting(request("ws01")) == nil)
            #expect(f.sink.events.isEmpty)
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).grantKind == .issued)
            // Now the hour's request is spent: refused at once, and recorded.
            let o = try #require(f.desk.decideWithoutWaiting(request("ws01")))
            #expect(o.status == 429)
            #expect(f.sink.events.map(\.kind) == [.issued, .rateLimited])
        }
    }

    @Test func renewedLicenseIsWhatTheImmediatePathServesNext() async throws {
        try await withTemporaryDirectory { dir in
            var c = Fixture.baseConfig
            c.lifetimeSeconds = 1000
            c.renewalMarginSeconds = 100
            let f = try Fixture(dir: dir, config: c)
            let issuer = FakeIssuer()
            let first = await f.desk.decide(request("ws01"), issuer: issuer)
            #expect(f.desk.decideWithoutWaiting(request("ws01"))?.bytes == first.bytes)
            f.clock.advance(by: 950)
            #expect(f.desk.decideWithoutWaiting(request("ws01")) == nil)
            let renewed = await f.desk.decide(request("ws01"), issuer: issuer)
            #expect(renewed.grantKind == .renewed && renewed.bytes != first.bytes)
            let again = try #require(f.desk.decideWithoutWaiting(request("ws01")))
            #expect(again.bytes == renewed.bytes && again.grantKind == .reused)
            // Revoked: the next request must issue again, so the immediate path declines.
            _ = try await f.desk.revoke(host: "ws01")
            #expect(f.desk.decideWithoutWaiting(request("ws01")) == nil)
        }
    }
}
