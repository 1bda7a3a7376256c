import Foundation
import Glibc
import SeedLedger
import SeedLicensing
import SeedTestSupport
import Synchronization
import Testing

/// Each rule: a request it refuses, and the same request answered when the rule is report-only.
@Suite struct PolicyEnforcementTests {
    enum Rule: String, CaseIterable { case network, deny, inventory, binding, firstSeen }

    func config(_ rule: Rule, _ mode: RuleMode) -> DeskConfiguration {
        var c = Fixture.baseConfig
        switch rule {
        case .network:
            c.policy.networks = .init(allowed: [IPNetwork("10.0.0.0/8")!, IPNetwork("fd00::/8")!], mode: mode)
        case .deny: c.policy.deny = .init(patterns: ["sandbox-*", "*-detonate"], mode: mode)
        case .inventory: c.policy.inventory = .init(hosts: ["ws01", "ws02"], mode: mode)
        case .binding: c.policy.binding = .init(v4Prefix: 24, v6Prefix: 64, mode: mode)
        case .firstSeen: c.policy.firstSeenHold = .init(seconds: 30 * 60, mode: mode)
        }
        return c
    }

    var ruleName: [Rule: String] {
        [
            .network: PolicyConfiguration.networkRule, .deny: PolicyConfiguration.denyRule,
            .inventory: PolicyConfiguration.inventoryRule, .binding: PolicyConfiguration.bindingRule,
            .firstSeen: PolicyConfiguration.firstSeenRule,
        ]
    }

    /// Sets the stage (if needed) and returns the request the rule refuses.
    func offending(_ rule: Rule, desk: LicenseDesk, issuer: FakeIssuer) async -> LicenseRequest {
        switch rule {
        case .network: return request("ws01", from: "192.168.7.7")
        case .deny: return request("SANDBOX-4711", from: "10.0.0.5")
        case .inventory: return request("ws99", from: "10.0.0.5")
        case .binding:
            _ = await desk.decide(request("ws01", from: "10.0.0.5"), issuer: issuer)
            return request("ws01", from: "172.16.0.9")
        case .firstSeen: return request("newhost", from: "10.0.0.5")
        }
    }

    @Test(arguments: Rule.allCases)
    func enforcedRuleRefusesWith403NamingIt(_ rule: Rule) async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir, config: config(rule, .enforce))
            let issuer = FakeIssuer()
            let req = await offending(rule, desk: f.desk, issuer: issuer)
            let before = issuer.calls
            let o = await f.desk.decide(req, issuer: issuer)
            #expect(o.status == 403)
            #expect(o.reason.contains(ruleName[rule]!))
            #expect(issuer.calls == before)
            let ev = try #require(f.sink.events.last)
            #expect(ev.kind == .refused && ev.rule == ruleName[rule] && !ev.reportOnly)
        }
    }

    @Test(arguments: Rule.allCases)
    func reportOnlyRuleServesAndRecords(_ rule: Rule) async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir, config: config(rule, .reportOnly))
            let issuer = FakeIssuer()
            let o = await f.desk.decide(await offending(rule, desk: f.desk, issuer: issuer), issuer: issuer)
            #expect(o.status == 200)
            let ev = try #require(f.sink.events.last)
            #expect(ev.reportOnly)
            #expect(ev.rule == ruleName[rule])
            #expect(ev.reason?.contains("would have refused") == true)
        }
    }

    @Test func bindingAllowsTheSameNetworkAndLapsesWithTheLicense() async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir, config: config(.binding, .enforce))
            let issuer = FakeIssuer()
            #expect(await f.desk.decide(request("ws01", from: "10.0.0.5"), issuer: issuer).status == 200)
            #expect(await f.desk.decide(request("ws01", from: "10.0.0.200"), issuer: issuer).status == 200)
            #expect(await f.desk.decide(request("ws01", from: "10.0.1.5"), issuer: issuer).status == 403)
            f.clock.advance(by: 48 * 3600 + 1)
            #expect(await f.desk.decide(request("ws01", from: "10.0.1.5"), issuer: issuer).status == 200)
            #expect(issuer.calls == 2)
        }
    }

    @Test func firstSeenHoldLiftsAfterItsTimeAndSparesInventoryHosts() async throws {
        try await withTemporaryDirectory { dir in
            var c = config(.firstSeen, .enforce)
            c.policy.inventory = .init(hosts: ["known1"], mode: .reportOnly)
            let f = try Fixture(dir: dir, config: c)
            let issuer = FakeIssuer()
            #expect(await f.desk.decide(request("known1"), issuer: issuer).status == 200)
            #expect(await f.desk.decide(request("fresh"), issuer: issuer).status == 403)
            f.clock.advance(by: 29 * 60)
            #expect(await f.desk.decide(request("fresh"), issuer: issuer).status == 403)
            f.clock.advance(by: 61)
            #expect(await f.desk.decide(request("fresh"), issuer: issuer).status == 200)
        }
    }
}

@Suite struct CrashAndOfflineTests {
    @Test func pendingIntentFromACrashBlocksReissueUntilResolved() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let key = LicenseKey(account: "acct", hostKey: "ws01", type: .workstation)
            var intentID: Int64 = 0
            do {
                // The desk commits the intent, then the process dies before any outcome is written.
                let ledger = try Ledger.open(path: dir + "/ledger.sqlite")
                intentID = try ledger.beginIntent(key, at: clock.now())
            }
            let f = try Fixture(dir: dir, clock: clock)
            let reported = f.sink.events(.outcomeUnknown)
            #expect(reported.count == 1)
            #expect(reported.first?.licenseReference == "intent-\(intentID)")
            #expect(try f.ledger.intent(intentID)?.state == .unknown)
            #expect(try f.ledger.integrityCheck() == "ok")

            let issuer = FakeIssuer()
            let blocked = await f.desk.decide(request("WS01"), issuer: issuer)
            #expect(blocked.status == 503)
            #expect(blocked.reason.contains("resolve \(intentID)"))
            #expect(issuer.calls == 0)
            // Other hosts are unaffected.
            #expect(await f.desk.decide(request("ws02"), issuer: issuer).status == 200)

            let r = try await f.desk.resolve(intent: intentID, note: "checked the portal: nothing issued")
            #expect(r.state == .resolved)
            #expect(f.sink.events(.resolve).count == 1)
            #expect(await f.desk.decide(request("WS01"), issuer: issuer).status == 200)
            #expect(issuer.calls == 2)
        }
    }

    @Test func unknownOutcomeFromTheIssuerBlocksUntilTheConfiguredTime() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.unknownOutcomeBlockSeconds = 3600
            let f = try Fixture(dir: dir, config: config)
            let issuer = FakeIssuer { n throws(IssueError) in
                if n == 1 { throw IssueError(.outcomeUnknown, "connection reset after the request was sent") }
                return IssuedLicense(bytes: FakeIssuer.licenseBytes(n, host: "ws01"), source: .upstream)
            }
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).status == 503)
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).status == 503)
            #expect(issuer.calls == 1)
            #expect(f.sink.events(.outcomeUnknown).count == 1)
            #expect(try f.ledger.intents(in: [.unknown]).count == 1)
            f.clock.advance(by: 3601)
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).status == 200)
            #expect(issuer.calls == 2)
        }
    }

    @Test func intentIsDurableBeforeTheIssuerIsCalled() async throws {
        try await withTemporaryDirectory { dir in
            let seen = CollectingSink()
            let path = dir + "/ledger.sqlite"
            let hooks = DeskHooks { id, key in
                // A second read-only connection sees the committed intent: it is on disk, not in a transaction.
                let reader = try? Ledger.open(path: path, readOnly: true)
                var ev = DecisionEvent(kind: .pending)
                ev.licenseReference = "\(id)"
                ev.hostKey = key.hostKey
                ev.reason = (try? reader?.intent(id))??.state.rawValue
                seen.record(ev)
            }
            let f = try Fixture(dir: dir, hooks: hooks)
            let issuer = FakeIssuer()
            #expect(await f.desk.decide(request("ws01"), issuer: issuer).status == 200)
            #expect(seen.events.count == 1)
            #expect(seen.events.first?.reason == "pending")
            #expect(try f.ledger.intents(in: [.issued]).count == 1)
        }
    }

    @Test func environmentHookPausesOnlyWhenAsked() {
        #expect(DeskHooks.fromEnvironment([:]).afterIntentCommit == nil)
        #expect(DeskHooks.fromEnvironment([DeskHooks.pauseVariable: "0"]).afterIntentCommit == nil)
        #expect(DeskHooks.fromEnvironment([DeskHooks.pauseVariable: "x"]).afterIntentCommit == nil)
        #expect(DeskHooks.fromEnvironment([DeskHooks.pauseVariable: "30"]).afterIntentCommit != nil)
    }

    @Test func upstreamErrorBodiesAreNotLicenses() async throws {
        try await withTemporaryDirectory { dir in
            let f = try Fixture(dir: dir)
            let issuer = FakeIssuer { _ throws(IssueError) in
                IssuedLicense(bytes: Array("Error: HTTP-401".utf8), source: .upstream)
            }
            let o = await f.desk.decide(request("ws01"), issuer: issuer)
            #expect(o.status == 502)
            #expect(o.reason.contains("Error: HTTP-401"))
            #expect(try f.ledger.licenses(hostKey: "ws01").isEmpty)
            #expect(try f.ledger.intents(in: [.failed]).count == 1)
        }
    }

    @Test func offlineServesPooledLicensesAndListsTheRest() async throws {
        try await withTemporaryDirectory { dir in
            var config = Fixture.baseConfig
            config.offline = true
            let f = try Fixture(dir: dir, config: config)
            let lic1 = [UInt8](repeating: 7, count: 900)
            let lic2 = [UInt8](repeating: 8, count: 900)
            let report = try LicenseOperations.importPool(
                [
                    .init(name: "pool/WS01.lic", bytes: lic1), .init(name: "ws02.corp.example.lic", bytes: lic2),
                    .init(name: "bad.lic", bytes: Array("Error: HTTP-401".utf8)), .init(name: "readme.txt", bytes: [1]),
                ], type: .workstation, expiresAt: nil, lifetimeSeconds: 48 * 3600, minimumBytes: 800, ledger: f.ledger,
                sink: f.sink, now: f.clock.now())
            #expect(report.imported == ["ws01", "ws02"])
            #expect(report.skipped.count == 2)
            #expect(f.sink.events(.licenseImport).count == 1)

            let issuer = OfflineIssuer()
            let a = await f.desk.decide(request("WS01"), issuer: issuer)
            #expect(a.bytes == lic1 && a.grantKind == .pool)
            #expect(await f.desk.decide(request("ws01.corp"), issuer: issuer).bytes == lic1)
            #expect(await f.desk.decide(request("ws02"), issuer: issuer).bytes == lic2)
            let missing = await f.desk.decide(request("WS99"), issuer: issuer)
            #expect(missing.status == 409)
            #expect(missing.reason.contains("offline"))
            _ = await f.desk.decide(request("ws98", type: .server), issuer: issuer)
            _ = await f.desk.decide(request("ws99"), issuer: issuer)
            #expect(try f.ledger.pendingHosts().map(\.hostKey) == ["ws98", "ws99"])
            #expect(try f.ledger.pendingHosts().first { $0.hostKey == "ws99" }?.count == 2)
            #expect(f.sink.events(.poolServed).count == 2)
            #expect(f.sink.events(.pending).count == 3)
        }
    }
}

@Suite struct LedgerOpenTests {
    @Test func secondOpenerIsToldItIsLocked() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            let first = try Ledger.open(path: path)
            #expect {
                _ = try Ledger.open(path: path)
            } throws: { e in
                "\(e)".contains("locked by another process")
            }
            #expect(try Ledger.open(path: path, readOnly: true).integrityCheck() == "ok")
            _ = first
        }
    }

    @Test func garbageFileIsReportedCorrupt() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(to: URL(fileURLWithPath: path))
            #expect {
                _ = try Ledger.open(path: path)
            } throws: { e in
                "\(e)".contains("not a SeedMirror ledger or corrupt: ")
            }
        }
    }

    @Test func foreignSQLiteFileIsNotALedger() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/other.sqlite"
            do {
                let l = try Ledger.open(path: path)
                try l.executeForTestsDropSchemaVersion()
            }
            #expect {
                _ = try Ledger.open(path: path)
            } throws: { e in
                "\(e)".contains("not a SeedMirror ledger or corrupt: ")
            }
        }
    }

    @Test func anUnreadableFileNamesTheSystemsReason() throws {
        try withTemporaryDirectorySync { dir in
            // A directory where the ledger should be: SQLite says only "disk I/O error"; the error adds why.
            let path = dir + "/ledger.sqlite"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            #expect {
                _ = try Ledger.open(path: path, readOnly: true)
            } throws: { e in
                print("read-only open of a directory: \(e)")
                return "\(e)".contains("Is a directory")
            }
        }
    }

    @Test func newerSchemaIsRefused() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            do {
                let l = try Ledger.open(path: path)
                #expect(try l.storedSchemaVersion() == Ledger.schemaVersion)
                try l.executeForTestsSetVersion(99)
            }
            #expect {
                _ = try Ledger.open(path: path)
            } throws: { e in
                "\(e)".contains("written by a newer SeedMirror (schema 99 > \(Ledger.schemaVersion))")
            }
        }
    }

    @Test func aRefusedOpenClosesNoDescriptorItDoesNotOwn() throws {
        // A refused open (here: a newer schema) used to close its lock file twice: once in the Ledger's
        // deinit and once more in `open`'s error path. A file another thread opened in between, under the
        // same number, was closed under it (seen as a parallel test's "disk I/O error" from SQLite). One
        // thread opens ledgers that are refused while another keeps opening a file and checking that its
        // descriptor still refers to it.
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            do {
                let l = try Ledger.open(path: path)
                try l.executeForTestsSetVersion(99)
            }
            let canaryPath = dir + "/canary"
            FileManager.default.createFile(atPath: canaryPath, contents: Data("x".utf8))
            var canaryStat = stat()
            #expect(stat(canaryPath, &canaryStat) == 0)
            let canaryInode = canaryStat.st_ino
            let stop = Atomic<Bool>(false)
            let stolen = Atomic<Int>(0)
            let checker = Thread {
                while !stop.load(ordering: .relaxed) {
                    let fd = open(canaryPath, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { continue }
                    for _ in 0..<20 {
                        var st = stat()
                        if fstat(fd, &st) != 0 || st.st_ino != canaryInode { stolen.add(1, ordering: .relaxed) }
                    }
                    // EBADF here means someone else closed our descriptor.
                    if close(fd) != 0 { stolen.add(1, ordering: .relaxed) }
                }
            }
            checker.start()
            for _ in 0..<3000 { _ = try? Ledger.open(path: path) }
            stop.store(true, ordering: .relaxed)
            while !checker.isFinished { usleep(1000) }
            #expect(stolen.load(ordering: .relaxed) == 0, "another thread's descriptor was closed under it")
        }
    }

    @Test func metaRoundTripsAndSurvivesReopen() throws {
        try withTemporaryDirectorySync { dir in
            let path = dir + "/ledger.sqlite"
            do {
                let l = try Ledger.open(path: path)
                #expect(l.meta("audit.head") == nil)
                #expect(l.setMeta("audit.head", "abc"))
                #expect(l.setMeta("audit.head", "def"))
            }
            let l = try Ledger.open(path: path)
            #expect(l.meta("audit.head") == "def")
            #expect(try l.integrityCheck() == "ok")
        }
    }
}

func withTemporaryDirectorySync<T>(_ body: (String) throws -> T) throws -> T {
    let path = NSTemporaryDirectory() + "seedmirror-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}
