import Foundation
import SeedLedger
import SeedLicensing

/// Collects every DecisionEvent.
final class CollectingSink: DecisionSink, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [DecisionEvent] = []
    func record(_ event: DecisionEvent) { lock.withLock { stored.append(event) } }
    var events: [DecisionEvent] { lock.withLock { stored } }
    func events(_ kind: DecisionEvent.Kind) -> [DecisionEvent] { events.filter { $0.kind == kind } }
}

/// Opens once, so a waiting issuer can be released by the test.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func open() {
        isOpen = true
        for w in waiters { w.resume() }
        waiters = []
    }
}

/// A fake upstream that counts calls; each call returns distinct license bytes (≥ 800).
final class FakeIssuer: LicenseIssuer, @unchecked Sendable {
    typealias Behaviour = @Sendable (Int) async throws(IssueError) -> IssuedLicense
    private let lock = NSLock()
    private var count = 0
    private var hosts: [String] = []
    let gate: Gate?
    var behaviour: Behaviour?

    init(gate: Gate? = nil, behaviour: Behaviour? = nil) {
        self.gate = gate
        self.behaviour = behaviour
    }

    var calls: Int { lock.withLock { count } }
    var hostsAsked: [String] { lock.withLock { hosts } }

    static func licenseBytes(_ n: Int, host: String) -> [UInt8] {
        Array("LICENSE \(n) for \(host) ".utf8) + [UInt8](repeating: UInt8(n % 251), count: 900)
    }

    func issue(_ request: LicenseRequest, hostKey: String) async throws(IssueError) -> IssuedLicense {
        let n: Int = lock.withLock {
            count += 1
            hosts.append(hostKey)
            return count
        }
        if let gate { await gate.wait() }
        if let behaviour { return try await behaviour(n) }
        return IssuedLicense(
            bytes: FakeIssuer.licenseBytes(n, host: hostKey), source: .upstream, upstreamReference: "up-\(n)")
    }
}

func request(
    _ host: String, from address: String = "10.0.0.5", type: LicenseType = .workstation, account: String = "acct",
    token: String = "seeds"
) -> LicenseRequest {
    LicenseRequest(
        account: account, hostAsked: host, type: type, os: "windows", arch: "amd64", comment: nil,
        clientAddress: address, clientTokenName: token, route: .cloud)
}

/// A desk over a real SQLite ledger in a temp directory.
struct Fixture {
    let dir: String
    let ledger: Ledger
    let clock: ManualClock
    let sink: CollectingSink
    let desk: LicenseDesk

    init(
        dir: String, config: DeskConfiguration = Fixture.baseConfig, hooks: DeskHooks = DeskHooks(),
        clock: ManualClock = ManualClock()
    )
        throws
    {
        self.dir = dir
        ledger = try Ledger.open(path: dir + "/ledger.sqlite")
        self.clock = clock
        sink = CollectingSink()
        desk = try LicenseDesk(configuration: config, ledger: ledger, clock: clock, sink: sink, hooks: hooks)
    }

    static var baseConfig: DeskConfiguration {
        var c = DeskConfiguration()
        c.rateLimits = .unlimited
        return c
    }
}

extension LicenseOutcome {
    var bytes: [UInt8]? {
        if case .granted(let b, _, _) = self { return b }
        return nil
    }
    var status: Int {
        if case .refused(let s, _, _) = self { return s }
        return 200
    }
    var reason: String {
        if case .refused(_, let r, _) = self { return r }
        return ""
    }
    var retryAfter: Int? {
        if case .refused(_, _, let r) = self { return r }
        return nil
    }
    var grantKind: GrantKind? {
        if case .granted(_, _, let k) = self { return k }
        return nil
    }
}
