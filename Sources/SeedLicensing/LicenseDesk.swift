import Dispatch
import Foundation
public import SeedCore

/// A desk that can answer some requests at once, without suspending: the common case of a host whose
/// license is still valid (a dedup hit), or a refusal decided before anything is issued. Callers on an
/// event loop ask `decideWithoutWaiting` first and fall back to `decide` when it answers nil.
public protocol ImmediateLicenseDeciding: LicenseDeciding {
    /// The outcome when it needs neither the ledger nor upstream nor another request's issuance; nil (and
    /// nothing changed) otherwise. Runs the same rules as `decide`, records the same audit event, never blocks
    /// on I/O.
    func decideWithoutWaiting(_ request: LicenseRequest) -> LicenseOutcome?
}

/// Decides, durably and explainably, what each license request costs (PROTOCOL.md §3a, §4, §5).
///
/// An actor: requests may come from any task. Dedup hits are answered from memory (no ledger write);
/// issuing goes intent → issuer → outcome through the ledger, one flight per key. The actor runs on its
/// own serial dispatch queue, so the ledger's blocking SQLite calls (synchronous=FULL fsyncs) stall
/// neither an event loop nor Swift's cooperative thread pool.
///
/// What the first step of every decision reads (live licenses, licensed hosts and their NetBIOS cuts,
/// first sightings, per-host request buckets) sits behind a lock, `hosts`, so that step (`admit`) can
/// also run synchronously on an event loop (`decideWithoutWaiting`). Everything issuing touches (blocked
/// keys, flights, quotas, issuance limits) stays actor-isolated.
public actor LicenseDesk: ImmediateLicenseDeciding {
    private nonisolated let executor = QueueExecutor(label: "seedmirror.license-desk")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<LicenseOutcome, Never>?
    }

    /// The state `admit` reads and writes.
    struct HostState {
        /// Latest unrevoked license per key (possibly expired: that makes the next issue a renewal).
        var live: [LicenseKey: LicenseRecord] = [:]
        /// Host keys that ever held a license: anything else is a *new* host for the issuance limits.
        var licensedHosts: Set<String> = []
        var aliases = NetBIOSAliasIndex()
        /// When a never-licensed host was first asked for (first-seen hold). Client-controlled: bounded.
        var firstSeen: BoundedTable<String, Date>
        var hostBuckets: BoundedTable<String, TokenBucket>
        /// Host keys an operator is revoking right now: the immediate path leaves them to the actor, so no
        /// `reused` record lands after the `revoke` record.
        var revoking: Set<String> = []

        mutating func remember(_ record: LicenseRecord) {
            live[record.key] = record
            if licensedHosts.insert(record.key.hostKey).inserted {
                aliases.add(record.key.hostKey)
                firstSeen[record.key.hostKey] = nil
            }
        }
    }

    /// What `admit` concluded: an answer, or the facts the rest of `decide` continues from.
    enum Admission {
        case decided(LicenseOutcome, DecisionEvent)
        case proceed(Admitted)
        /// Only without `keepIfProceeding`: the host is being revoked; nothing was changed.
        case declined
    }

    struct Admitted {
        var event: DecisionEvent
        var key: LicenseKey
        var client: IPAddress?
        var existing: LicenseRecord?
    }

    public nonisolated let configuration: DeskConfiguration
    private nonisolated let ledger: any LicenseLedger
    private nonisolated let clock: any DeskClock
    private nonisolated let sink: any DecisionSink
    private nonisolated let logger: Logger
    private let hooks: DeskHooks

    private nonisolated let hosts: Lock<HostState>
    private var tokenBuckets: BoundedTable<String, TokenBucket>
    private var addressBuckets: BoundedTable<String, TokenBucket>
    private var networkBuckets: BoundedTable<String, TokenBucket>
    private var breakerHour: TokenBucket?
    private var breakerDay: TokenBucket?
    private var breakerTripped = false
    private var counters: QuotaCounters
    /// Account → until when an upstream 409 is trusted without asking.
    private var upstream409: [String: Date] = [:]
    /// Keys whose last issuing call has an unknown outcome: no blind re-issue.
    private var blocked: [LicenseKey: (intent: Int64, since: Date)] = [:]
    private var inflight: InflightTable<LicenseKey, Waiter>
    private var timeouts: [UInt64: Task<Void, Never>] = [:]
    private var nextWaiterID: UInt64 = 1

    /// Loads the ledger's state. Pending intents left by a crash become `unknown`, are reported as
    /// `outcome-unknown` events and block their keys. Throws what the ledger throws.
    public init(
        configuration: DeskConfiguration, ledger: any LicenseLedger, clock: any DeskClock, sink: any DecisionSink,
        logger: Logger = .discard, hooks: DeskHooks = DeskHooks()
    ) throws {
        self.configuration = configuration
        self.ledger = ledger
        self.clock = clock
        self.sink = sink
        self.logger = logger
        self.hooks = hooks
        let bound = configuration.maxTrackedKeys
        var state = HostState(firstSeen: BoundedTable(capacity: bound), hostBuckets: BoundedTable(capacity: bound))
        addressBuckets = BoundedTable(capacity: bound)
        networkBuckets = BoundedTable(capacity: bound)
        tokenBuckets = BoundedTable(capacity: bound)
        inflight = InflightTable(maxKeys: configuration.maxInflight, maxWaitersPerKey: configuration.maxWaitersPerKey)
        let now = clock.now()
        if let n = configuration.rateLimits.breakerPerHour {
            breakerHour = TokenBucket(RateLimit(count: n, per: 3600), now: now)
        }
        if let n = configuration.rateLimits.breakerPerDay {
            breakerDay = TokenBucket(RateLimit(count: n, per: 86400), now: now)
        }

        let crashed = try ledger.markPendingIntentsUnknown(at: now)
        for i in crashed {
            var ev = DecisionEvent(kind: .outcomeUnknown)
            ev.hostKey = i.key.hostKey
            ev.type = i.key.type
            ev.licenseReference = "intent-\(i.id)"
            ev.reason =
                "issuing call for \(i.key) (intent \(i.id)) was in flight when the mirror stopped; a license may have been spent. Resolve with `seed-mirror licenses resolve \(i.id)`"
            sink.record(ev)
            logger.warning(
                "issuing call with unknown outcome found at start",
                [("intent.id", "\(i.id)"), ("host.id", i.key.hostKey)])
        }
        for i in try ledger.intents(in: [.unknown]) {
            blocked[i.key] = (i.id, i.startedAt)
        }
        for k in try ledger.licensedHostKeys() {
            state.licensedHosts.insert(k)
            state.aliases.add(k)
        }
        for l in try ledger.activeLicenses(now: now) { state.live[l.key] = l }
        for h in try ledger.hosts() where !state.licensedHosts.contains(h.key) { state.firstSeen[h.key] = h.firstSeen }
        counters = try ledger.quotaCounters()
        hosts = Lock(state)
    }

    // MARK: - Deciding

    public nonisolated func decideWithoutWaiting(_ request: LicenseRequest) -> LicenseOutcome? {
        let now = clock.now()
        // Recorded under the lock: an operator's revoke (which takes it to mark the host) cannot slip its
        // record between this decision and its record. The sink only queues; it never calls the desk.
        return hosts.withLock { state -> LicenseOutcome? in
            guard case .decided(let outcome, let ev) = admit(request, now: now, state: &state, keepIfProceeding: false)
            else { return nil }
            sink.record(ev)
            return outcome
        }
    }

    /// The first step of every decision, atomic under `hosts`: host name, NetBIOS cut, the per-host request
    /// limit, policy, and the dedup hit. Decides (a refusal or a reused license, whose event the caller
    /// records) or hands over what issuing continues from. With `keepIfProceeding` false, a request that
    /// must proceed leaves the state untouched (a bucket token or a first sighting is not kept), so the
    /// caller can start over with `decide`.
    private nonisolated func admit(
        _ request: LicenseRequest, now: Date, state: inout HostState, keepIfProceeding: Bool
    ) -> Admission {
        var ev = DecisionEvent(kind: .refused)
        ev.clientAddress = request.clientAddress
        ev.clientTokenName = request.clientTokenName
        ev.hostAsked = request.hostAsked
        ev.type = request.type
        ev.os = request.os
        ev.arch = request.arch
        ev.comment = request.comment
        ev.route = request.route
        ev.account = request.account

        var hostKey: String
        switch HostName.normalize(request.hostAsked) {
        case .failure(let e):
            return .decided(refusal(&ev, .refused, 400, "invalid host name: \(e.reason)", rule: "host-name"), ev)
        case .success(let k): hostKey = k
        }
        // A 15-character name that holds licenses of its own is its own host, not a cut.
        if !state.licensedHosts.contains(hostKey), let full = state.aliases.fullName(forCut: hostKey) {
            ev.aliasFlag = true
            ev.reason = "\(hostKey) is the NetBIOS cut of known host \(full)"
            hostKey = full
        }
        ev.hostKey = hostKey
        if !keepIfProceeding && !state.revoking.isEmpty && state.revoking.contains(hostKey) { return .declined }
        let key = LicenseKey(account: request.account, hostKey: hostKey, type: request.type)
        let client = IPAddress(request.clientAddress)

        var takenBucket: TokenBucket?
        if let limit = configuration.rateLimits.requestsPerHost {
            var bucket = state.hostBuckets[hostKey] ?? TokenBucket(limit, now: now)
            let d = bucket.take(now: now)
            if let after = d.retryAfterSeconds {
                state.hostBuckets[hostKey] = bucket
                let o = refusal(
                    &ev, .rateLimited, 429, "too many requests for host \(hostKey); retry after \(after) s",
                    rule: RateLimitConfiguration.hostRule, retryAfter: after)
                return .decided(o, ev)
            }
            takenBucket = bucket
        }

        // First sighting of a never-licensed host. Kept in memory only (bounded): a client inventing names
        // cannot grow the ledger, and a restart or an eviction only restarts a hold (the safe direction).
        var sighted = false
        let firstSeen: Date?
        if state.licensedHosts.contains(hostKey) {
            firstSeen = .distantPast
        } else if let d = state.firstSeen[hostKey] {
            firstSeen = d
        } else {
            firstSeen = now
            sighted = true
        }
        func keep() {
            if let b = takenBucket { state.hostBuckets[hostKey] = b }
            if sighted { state.firstSeen[hostKey] = now }
        }

        let existing = state.live[key]
        let valid = existing.flatMap { $0.expiresAt > now ? $0 : nil }
        let reusable = valid.flatMap { now < $0.expiresAt - configuration.renewalMarginSeconds ? $0 : nil }
        let bound = valid.flatMap { $0.clientAddress }.flatMap(IPAddress.init)
        let facts = PolicyFacts(
            hostKey: hostKey, clientAddress: client, boundAddress: bound, firstSeen: firstSeen, now: now,
            issuing: reusable == nil)
        let violations = configuration.policy.evaluate(facts)
        if let v = violations.first(where: { $0.mode == .enforce }) {
            keep()
            return .decided(
                refusal(&ev, .refused, 403, "refused by policy rule \(v.rule): \(v.reason)", rule: v.rule), ev)
        }
        let reported = violations.isEmpty ? [] : violations.filter { $0.mode == .reportOnly }
        if !reported.isEmpty {
            ev.reportOnly = true
            ev.rule = reported.map(\.rule).joined(separator: ",")
            let note =
                "report-only: would have refused ("
                + reported.map { "\($0.rule): \($0.reason)" }.joined(separator: "; ") + ")"
            ev.reason = ev.reason.map { $0 + "; " + note } ?? note
        }

        if let hit = reusable {
            keep()
            ev.kind = .reused
            ev.licenseReference = hit.reference
            ev.portalHMAC = hit.portalHMAC
            return .decided(.granted(license: hit.bytes, hostKey: hostKey, kind: .reused), ev)
        }
        if keepIfProceeding { keep() }
        return .proceed(Admitted(event: ev, key: key, client: client, existing: existing))
    }

    public func decide(_ request: LicenseRequest, issuer: any LicenseIssuer) async -> LicenseOutcome {
        let now = clock.now()
        let admission = hosts.withLock { admit(request, now: now, state: &$0, keepIfProceeding: true) }
        let admitted: Admitted
        switch admission {
        case .decided(let outcome, let ev):
            sink.record(ev)
            return outcome
        case .proceed(let a): admitted = a
        case .declined: preconditionFailure("admit declines only for the immediate path")
        }
        var ev = admitted.event
        let key = admitted.key
        let hostKey = key.hostKey
        let client = admitted.client
        let existing = admitted.existing

        if let b = blocked[key] {
            if now < b.since + configuration.unknownOutcomeBlockSeconds {
                ev.licenseReference = "intent-\(b.intent)"
                return refuse(
                    &ev, .refused, 503,
                    "an earlier issuing call for \(hostKey) (intent \(b.intent)) has an unknown outcome; an operator must resolve it (`seed-mirror licenses resolve \(b.intent)`) before a new license is requested",
                    rule: "outcome-unknown", retryAfter: 300)
            }
            blocked[key] = nil
        }

        if inflight.isInflight(key) { return await follow(key, now: now, event: ev) }
        let joined = inflight.join(key, Waiter(id: 0, continuation: nil), deadline: now)
        guard joined == .lead else {
            return refuse(
                &ev, .refused, 503, "too many licenses being issued at once; retry later", rule: "inflight-bound",
                retryAfter: 30)
        }
        let outcome = await lead(
            request, key: key, client: client, previous: existing, now: now, event: ev, issuer: issuer)
        for w in inflight.finish(key) {
            timeouts.removeValue(forKey: w.id)?.cancel()
            w.continuation?.resume(returning: outcome)
        }
        return outcome
    }

    private func follow(_ key: LicenseKey, now: Date, event: DecisionEvent) async -> LicenseOutcome {
        var ev = event
        let id = nextWaiterID
        nextWaiterID += 1
        let deadline = now + Double(configuration.followerTimeout.components.seconds)
        let timeout = configuration.followerTimeout
        let outcome: LicenseOutcome = await withCheckedContinuation { c in
            let joined = inflight.join(key, Waiter(id: id, continuation: c), deadline: deadline)
            switch joined {
            case .follow:
                timeouts[id] = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    if Task.isCancelled { return }
                    await self?.timeOut(key, id)
                }
            case .overloaded, .lead:
                // `.lead` should not happen (checked just before, no suspension since). Should it, give the
                // slot back at once rather than hold a flight nobody leads, and ask the client to retry.
                if joined == .lead { _ = inflight.finish(key) }
                c.resume(
                    returning: .refused(
                        status: 503, reason: "too many requests waiting for this license; retry later",
                        retryAfterSeconds: 30))
            }
        }
        switch outcome {
        case .granted(let bytes, let hostKey, _):
            ev.kind = .reused
            if let l = hosts.withLock({ $0.live[key] }) {
                ev.licenseReference = l.reference
                ev.portalHMAC = l.portalHMAC
            }
            ev.reason = ev.reason.map { $0 + "; joined an in-flight issuance" } ?? "joined an in-flight issuance"
            sink.record(ev)
            return .granted(license: bytes, hostKey: hostKey, kind: .reused)
        case .refused(let status, let reason, let after):
            ev.kind = Self.kind(forStatus: status)
            ev.reason = reason
            sink.record(ev)
            return .refused(status: status, reason: reason, retryAfterSeconds: after)
        }
    }

    private func timeOut(_ key: LicenseKey, _ id: UInt64) {
        timeouts[id] = nil
        guard let w = inflight.remove(key, where: { $0.id == id }) else { return }
        w.continuation?.resume(
            returning: .refused(
                status: 503, reason: "the license for this host is still being obtained upstream; retry later",
                retryAfterSeconds: 30))
    }

    private static func kind(forStatus s: Int) -> DecisionEvent.Kind {
        switch s {
        case 409: .quotaExhausted
        case 429: .rateLimited
        case 502, 503, 504: .upstreamError
        default: .refused
        }
    }

    private func refuse(
        _ ev: inout DecisionEvent, _ kind: DecisionEvent.Kind, _ status: Int, _ reason: String, rule: String?,
        retryAfter: Int? = nil
    ) -> LicenseOutcome {
        let o = refusal(&ev, kind, status, reason, rule: rule, retryAfter: retryAfter)
        sink.record(ev)
        return o
    }

    /// A refusal and its event, not yet recorded.
    private nonisolated func refusal(
        _ ev: inout DecisionEvent, _ kind: DecisionEvent.Kind, _ status: Int, _ reason: String, rule: String?,
        retryAfter: Int? = nil
    ) -> LicenseOutcome {
        ev.kind = kind
        ev.rule = ev.reportOnly ? [ev.rule, rule].compactMap { $0 }.joined(separator: ",") : rule
        ev.reason = ev.reason.map { reason + " (" + $0 + ")" } ?? reason
        return .refused(status: status, reason: reason, retryAfterSeconds: retryAfter)
    }

    // MARK: - Issuing (leader only)

    private func lead(
        _ request: LicenseRequest, key: LicenseKey, client: IPAddress?, previous: LicenseRecord?, now: Date,
        event: DecisionEvent, issuer: any LicenseIssuer
    ) async -> LicenseOutcome {
        var ev = event
        let hostKey = key.hostKey
        ev.portalHMAC = PortalHMAC.hash(shortHost: hostKey)

        // Pooled licenses were paid for already: serve before anything counts against limits.
        do {
            if let pooled = try ledger.poolLicense(hostKey: hostKey, type: key.type), pooled.expiresAt > now {
                let record = LicenseRecord(
                    key: key, source: .pool, bytes: pooled.bytes, issuedAt: pooled.importedAt,
                    expiresAt: pooled.expiresAt,
                    upstreamReference: "pool:\(pooled.sourceName)", portalHMAC: ev.portalHMAC ?? "",
                    clientAddress: request.clientAddress)
                let stored = try ledger.storeLicense(record)
                try ledger.markPoolLicenseUsed(hostKey: hostKey, type: key.type, at: now)
                ev.kind = .poolServed
                ev.licenseReference = stored.reference
                sink.record(ev)
                // After the event: a request answered on the loop (`decideWithoutWaiting`) may reuse this
                // license from now on, and its `reused` record must follow this one in the trail.
                remember(stored)
                return .granted(license: stored.bytes, hostKey: hostKey, kind: .pool)
            }
        } catch {
            logger.error("ledger read or write failed", [("error", "\(error)")])
            return refuse(
                &ev, .upstreamError, 503, "the license ledger is unavailable; retry later", rule: nil, retryAfter: 60)
        }

        if configuration.offline || issuer is OfflineIssuer {
            var listed = false
            do {
                listed = try ledger.addPendingHost(
                    key: hostKey, type: key.type, at: now, limit: configuration.maxPendingHosts)
            } catch { logger.error("ledger write failed", [("error", "\(error)")]) }
            ev.kind = .pending
            let reason =
                listed
                ? "offline: no pooled \(key.type.rawValue) license for host \(hostKey); it is listed for the next bulk request (`seed-mirror licenses pending --export`)"
                : "offline: no pooled \(key.type.rawValue) license for host \(hostKey), and the pending list is full"
            ev.reason = ev.reason.map { reason + " (" + $0 + ")" } ?? reason
            sink.record(ev)
            return .refused(status: 409, reason: reason, retryAfterSeconds: nil)
        }

        // Quotas.
        let account = key.account
        let used = counters.perAccount[account] ?? 0
        let configured = configuration.quotas.accountTotals[account]
        let learned = counters.learnedTotals[account]
        // The total learned from a 409 is shown, not enforced: asking again after the 409 memory is how a
        // raised contract is noticed. Only a configured total refuses locally.
        let total = configured
        ev.quotaUsed = used
        ev.quotaTotal = configured ?? learned
        if let until = upstream409[account], now < until {
            return refuse(
                &ev, .quotaExhausted, 409,
                "license pool exhausted: upstream answered 409 for account \(account); not asked again for \(Int(until.timeIntervalSince(now))) s",
                rule: QuotaConfiguration.upstreamRule)
        }
        if let total, used >= total {
            return refuse(
                &ev, .quotaExhausted, 409,
                "license pool exhausted: account \(account) has used \(used) of \(total) licenses",
                rule: QuotaConfiguration.accountRule)
        }
        if let cap = configuration.quotas.tokenCaps[request.clientTokenName],
            (counters.perToken[request.clientTokenName] ?? 0) >= cap
        {
            return refuse(
                &ev, .quotaExhausted, 409, "license cap of client token \(request.clientTokenName) reached (\(cap))",
                rule: QuotaConfiguration.tokenRule)
        }

        // Issuance rate limits: check all, then take from all, so one refusal spends nothing elsewhere.
        let limits = configuration.rateLimits
        let newHost = !hosts.withLock { $0.licensedHosts.contains(hostKey) }
        let exempt = client.map { a in limits.jumpHosts.contains { $0.contains(a) } } ?? false
        var checks: [(rule: String, table: Int, key: String, limit: RateLimit)] = []
        if newHost && !exempt, let a = client {
            if let l = limits.newHostsPerAddress {
                checks.append((RateLimitConfiguration.addressRule, 0, a.description, l))
            }
            if let l = limits.newHostsPerNetwork {
                checks.append(
                    (
                        RateLimitConfiguration.networkRule, 1,
                        a.network(v4Prefix: limits.networkV4Prefix, v6Prefix: limits.networkV6Prefix).key, l
                    ))
            }
        }
        if let l = limits.issuancesPerToken {
            checks.append((RateLimitConfiguration.tokenRule, 2, request.clientTokenName, l))
        }
        for c in checks {
            var b = bucket(c.table, c.key, c.limit, now)
            if let after = b.check(now: now).retryAfterSeconds {
                return refuse(
                    &ev, .rateLimited, 429,
                    "too many new licenses for \(c.key) (rule \(c.rule)); retry after \(after) s",
                    rule: c.rule, retryAfter: after)
            }
        }
        for (rule, bucket) in [
            (RateLimitConfiguration.breakerHourRule, breakerHour), (RateLimitConfiguration.breakerDayRule, breakerDay),
        ] {
            guard var b = bucket, let after = b.check(now: now).retryAfterSeconds else { continue }
            if !breakerTripped {
                breakerTripped = true
                var alert = DecisionEvent(kind: .breakerTripped)
                alert.rule = rule
                alert.reason = "global issuance breaker tripped (\(rule)); no new licenses for \(after) s"
                sink.record(alert)
                logger.error("global issuance breaker tripped", [("rule", rule)])
            }
            return refuse(
                &ev, .rateLimited, 429, "global issuance limit reached (\(rule)); retry after \(after) s", rule: rule,
                retryAfter: after)
        }
        breakerTripped = false
        for c in checks {
            var b = bucket(c.table, c.key, c.limit, now)
            _ = b.take(now: now)
            store(c.table, c.key, b)
        }
        _ = breakerHour?.take(now: now)
        _ = breakerDay?.take(now: now)

        // Intent before the call, outcome after: a crash in between leaves a visible `pending` intent.
        let intentID: Int64
        do { intentID = try ledger.beginIntent(key, at: now) } catch {
            logger.error("ledger write failed", [("error", "\(error)")])
            return refuse(
                &ev, .upstreamError, 503, "the license ledger is unavailable; retry later", rule: nil, retryAfter: 60)
        }
        ev.licenseReference = "intent-\(intentID)"
        if let hook = hooks.afterIntentCommit { await hook(intentID, key) }

        let issued: IssuedLicense
        do {
            issued = try await issuer.issue(request, hostKey: hostKey)
        } catch {
            let after = clock.now()
            switch error.kind {
            case .rejected(let status) where status == 409:
                upstream409[account] = after + configuration.quotas.upstream409MemorySeconds
                counters.learnedTotals[account] = used
                settle(intentID, .failed, "upstream 409: \(error.message)", after)
                do { try ledger.setLearnedQuota(account: account, total: used, at: after) } catch {
                    logger.error("ledger write failed", [("error", "\(error)")])
                }
                ev.upstreamStatus = 409
                return refuse(
                    &ev, .quotaExhausted, 409, "license pool exhausted (upstream 409): \(error.message)",
                    rule: QuotaConfiguration.upstreamRule)
            case .rejected(let status):
                settle(intentID, .failed, "upstream \(status): \(error.message)", after)
                ev.upstreamStatus = status
                return refuse(
                    &ev, .upstreamError, 502, "upstream refused the license request (\(status)): \(error.message)",
                    rule: nil)
            case .notSent:
                settle(intentID, .failed, "not sent: \(error.message)", after)
                return refuse(
                    &ev, .upstreamError, 503, "upstream unreachable: \(error.message)", rule: nil, retryAfter: 30)
            case .outcomeUnknown:
                settle(intentID, .unknown, error.message, after)
                blocked[key] = (intentID, now)
                ev.kind = .outcomeUnknown
                let reason =
                    "issuing call for \(hostKey) has an unknown outcome (\(error.message)); a license may have been spent. Resolve with `seed-mirror licenses resolve \(intentID)`"
                ev.reason = reason
                sink.record(ev)
                return .refused(status: 503, reason: reason, retryAfterSeconds: 300)
            }
        }

        let after = clock.now()
        if issued.bytes.count < configuration.minimumLicenseBytes || issued.bytes.starts(with: Array("Error:".utf8)) {
            let head = String(decoding: issued.bytes.prefix(60), as: UTF8.self).filter { !$0.isNewline }
            settle(intentID, .failed, "not a license (\(issued.bytes.count) bytes): \(head)", after)
            return refuse(
                &ev, .upstreamError, 502,
                "upstream answered with \(issued.bytes.count) bytes that are not a license: \(head)", rule: nil)
        }
        var record = LicenseRecord(
            key: key, source: issued.source, bytes: issued.bytes, issuedAt: after,
            expiresAt: after + configuration.lifetimeSeconds, upstreamReference: issued.upstreamReference,
            portalHMAC: ev.portalHMAC ?? PortalHMAC.hash(shortHost: hostKey), clientAddress: request.clientAddress)
        do {
            record = try ledger.completeIntent(intentID, license: record, tokenName: request.clientTokenName, at: after)
            try ledger.noteHostSeen(
                key: hostKey, alias: request.hostAsked == hostKey ? nil : request.hostAsked,
                address: request.clientAddress,
                at: after)
        } catch {
            // The license exists and was paid for: serve it. The intent stays pending, so the next start
            // reports it as outcome-unknown for an operator to reconcile.
            logger.error("ledger write failed after issuing", [("error", "\(error)"), ("intent.id", "\(intentID)")])
            ev.reason = (ev.reason.map { $0 + "; " } ?? "") + "ledger write failed after issuing: \(error)"
        }
        if issued.source == .upstream {
            counters.perAccount[account, default: 0] += 1
            counters.perToken[request.clientTokenName, default: 0] += 1
            ev.quotaUsed = counters.perAccount[account]
        }
        let kind: LicenseOutcome.GrantKind = previous != nil ? .renewed : .issued
        ev.kind = kind == .renewed ? .renewed : .issued
        ev.licenseReference = record.reference
        sink.record(ev)
        // After the event, as for pooled licenses above.
        remember(record)
        return .granted(license: record.bytes, hostKey: hostKey, kind: kind)
    }

    private func remember(_ record: LicenseRecord) {
        hosts.withLock { $0.remember(record) }
    }

    private func settle(_ id: Int64, _ state: IntentState, _ detail: String, _ at: Date) {
        do { try ledger.settleIntent(id, state: state, detail: detail, at: at) } catch {
            logger.error("ledger write failed", [("error", "\(error)"), ("intent.id", "\(id)")])
        }
    }

    private func bucket(_ table: Int, _ key: String, _ limit: RateLimit, _ now: Date) -> TokenBucket {
        let make = { TokenBucket(limit, now: now) }
        switch table {
        case 0: return addressBuckets.value(key, orInsert: make)
        case 1: return networkBuckets.value(key, orInsert: make)
        default: return tokenBuckets.value(key, orInsert: make)
        }
    }

    private func store(_ table: Int, _ key: String, _ b: TokenBucket) {
        switch table {
        case 0: addressBuckets[key] = b
        case 1: networkBuckets[key] = b
        default: tokenBuckets[key] = b
        }
    }

    // MARK: - Operators

    /// Forgets the host's stored licenses (every account and type) so the next request issues anew.
    /// Emits a `revoke` event. Returns how many licenses were revoked.
    public func revoke(host: String, operatorName: String? = nil) throws -> Int {
        let key = try? HostName.normalize(host).get()
        if let key { hosts.withLock { _ = $0.revoking.insert(key) } }
        defer { if let key { hosts.withLock { _ = $0.revoking.remove(key) } } }
        let n = try LicenseOperations.revoke(
            host: host, ledger: ledger, sink: sink, now: clock.now(), operatorName: operatorName)
        hosts.withLock { s in
            for k in s.live.keys where k.hostKey == key { s.live[k] = nil }
        }
        return n
    }

    /// Marks an intent with an unknown outcome resolved, unblocking its key. Emits a `resolve` event.
    public func resolve(intent id: Int64, note: String, operatorName: String? = nil) throws -> IntentRecord {
        let r = try LicenseOperations.resolve(
            intent: id, note: note, ledger: ledger, sink: sink, now: clock.now(), operatorName: operatorName)
        if blocked[r.key]?.intent == id { blocked[r.key] = nil }
        return r
    }

    /// Requests currently waiting behind an in-flight issuance of `key` (status pages, tests).
    public func waiting(for key: LicenseKey) -> Int { inflight.waiterCount(key) }

    /// For tests and status pages: keys currently blocked by an unknown outcome.
    public var blockedKeys: [LicenseKey] { Array(blocked.keys) }
}

/// A serial executor over a private dispatch queue (its own thread when busy), for an actor whose work
/// may block on disk.
final class QueueExecutor: SerialExecutor, @unchecked Sendable {
    private let queue: DispatchQueue
    init(label: String) { queue = DispatchQueue(label: label) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
