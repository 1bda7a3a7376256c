public import Foundation

/// Rate limits (token buckets, each with Retry-After). A nil limit is off.
public struct RateLimitConfiguration: Sendable, Equatable {
    public static let hostRule = "rate-host-requests"
    public static let addressRule = "rate-new-hosts-per-address"
    public static let networkRule = "rate-new-hosts-per-network"
    public static let tokenRule = "rate-token-issuances"
    public static let breakerHourRule = "breaker-per-hour"
    public static let breakerDayRule = "breaker-per-day"

    /// Requests per host name (any outcome).
    public var requestsPerHost: RateLimit?
    /// New host names issued per client address.
    public var newHostsPerAddress: RateLimit?
    /// New host names issued per client network (`networkV4Prefix` / `networkV6Prefix`).
    public var newHostsPerNetwork: RateLimit?
    public var networkV4Prefix: Int
    public var networkV6Prefix: Int
    /// Addresses or networks exempt from the per-address and per-network limits (jump hosts).
    public var jumpHosts: [IPNetwork]
    /// Issuances (new or renewed) per client token name.
    public var issuancesPerToken: RateLimit?
    /// Global issuance breaker: new licenses per hour and per day.
    public var breakerPerHour: Int?
    public var breakerPerDay: Int?

    public init(
        requestsPerHost: RateLimit? = RateLimit(count: 30, per: 60),
        newHostsPerAddress: RateLimit? = RateLimit(count: 5, per: 3600),
        newHostsPerNetwork: RateLimit? = RateLimit(count: 100, per: 3600),
        networkV4Prefix: Int = 24, networkV6Prefix: Int = 64, jumpHosts: [IPNetwork] = [],
        issuancesPerToken: RateLimit? = nil, breakerPerHour: Int? = 500, breakerPerDay: Int? = 2000
    ) {
        self.requestsPerHost = requestsPerHost
        self.newHostsPerAddress = newHostsPerAddress
        self.newHostsPerNetwork = newHostsPerNetwork
        self.networkV4Prefix = networkV4Prefix
        self.networkV6Prefix = networkV6Prefix
        self.jumpHosts = jumpHosts
        self.issuancesPerToken = issuancesPerToken
        self.breakerPerHour = breakerPerHour
        self.breakerPerDay = breakerPerDay
    }

    /// No limits at all (tests, benchmarks).
    public static let unlimited = RateLimitConfiguration(
        requestsPerHost: nil, newHostsPerAddress: nil, newHostsPerNetwork: nil, breakerPerHour: nil, breakerPerDay: nil)
}

/// Quotas: contract totals per upstream account, caps per client token, memory of upstream 409s.
public struct QuotaConfiguration: Sendable, Equatable {
    public static let accountRule = "quota-account"
    public static let tokenRule = "quota-token"
    public static let upstreamRule = "quota-upstream-409"

    /// Licenses the contract allows per account (nil entry: unknown, only upstream decides).
    public var accountTotals: [String: Int]
    /// Licenses each client token name may obtain.
    public var tokenCaps: [String: Int]
    /// How long an upstream 409 is remembered (the desk answers 409 without asking meanwhile).
    public var upstream409MemorySeconds: TimeInterval

    public init(
        accountTotals: [String: Int] = [:], tokenCaps: [String: Int] = [:], upstream409MemorySeconds: TimeInterval = 900
    ) {
        self.accountTotals = accountTotals
        self.tokenCaps = tokenCaps
        self.upstream409MemorySeconds = upstream409MemorySeconds
    }
}

/// Everything the desk is told by the configuration (`licenses`, `policy`, `rateLimits`, `quotas`).
public struct DeskConfiguration: Sendable, Equatable {
    /// How long a license is valid (the mirror cannot read it from the opaque file).
    public var lifetimeSeconds: TimeInterval
    /// Within this much of expiry, a request renews instead of reusing.
    public var renewalMarginSeconds: TimeInterval
    /// A body shorter than this, or starting with `Error:`, is an upstream error, not a license.
    public var minimumLicenseBytes: Int
    /// How long a request waits behind an in-flight issuance of the same key before a 503.
    public var followerTimeout: Duration
    /// A key whose issuing call has an unknown outcome is blocked this long unless an operator resolves it.
    public var unknownOutcomeBlockSeconds: TimeInterval
    /// No upstream: serve pooled licenses, list the rest as pending.
    public var offline: Bool
    /// Bounds of the in-memory tables keyed by client data.
    public var maxTrackedKeys: Int
    public var maxInflight: Int
    public var maxWaitersPerKey: Int
    public var maxPendingHosts: Int
    public var policy: PolicyConfiguration
    public var rateLimits: RateLimitConfiguration
    public var quotas: QuotaConfiguration

    public init(
        lifetimeSeconds: TimeInterval = 48 * 3600, renewalMarginSeconds: TimeInterval = 3600,
        minimumLicenseBytes: Int = 800, followerTimeout: Duration = .seconds(120),
        unknownOutcomeBlockSeconds: TimeInterval = 6 * 3600, offline: Bool = false, maxTrackedKeys: Int = 100_000,
        maxInflight: Int = 10_000, maxWaitersPerKey: Int = 1_000, maxPendingHosts: Int = 100_000,
        policy: PolicyConfiguration = .init(), rateLimits: RateLimitConfiguration = .init(),
        quotas: QuotaConfiguration = .init()
    ) {
        self.lifetimeSeconds = lifetimeSeconds
        self.renewalMarginSeconds = renewalMarginSeconds
        self.minimumLicenseBytes = minimumLicenseBytes
        self.followerTimeout = followerTimeout
        self.unknownOutcomeBlockSeconds = unknownOutcomeBlockSeconds
        self.offline = offline
        self.maxTrackedKeys = maxTrackedKeys
        self.maxInflight = maxInflight
        self.maxWaitersPerKey = maxWaitersPerKey
        self.maxPendingHosts = maxPendingHosts
        self.policy = policy
        self.rateLimits = rateLimits
        self.quotas = quotas
    }
}

/// The issuer to pass in offline mode: it never sends anything. The desk serves pooled licenses and
/// lists other hosts as pending instead of calling it.
public struct OfflineIssuer: LicenseIssuer {
    public init() {}
    public func issue(_ request: LicenseRequest, hostKey: String) async throws(IssueError) -> IssuedLicense {
        throw IssueError(.notSent, "offline mode: no upstream")
    }
}

/// Test seams of the desk.
public struct DeskHooks: Sendable {
    /// Runs after an intent is durably committed and before the issuer is called (an integration test
    /// pauses here and SIGKILLs the server to prove the intent survives).
    public var afterIntentCommit: (@Sendable (Int64, LicenseKey) async -> Void)?
    public init(afterIntentCommit: (@Sendable (Int64, LicenseKey) async -> Void)? = nil) {
        self.afterIntentCommit = afterIntentCommit
    }

    /// The environment variable an integration test sets to make the server wait this many seconds
    /// between committing an intent and calling the issuer (then SIGKILL it there).
    public static let pauseVariable = "SEEDMIRROR_TEST_PAUSE_AFTER_INTENT_SECONDS"

    /// Hooks from the process environment (the server passes `ProcessInfo.processInfo.environment`);
    /// none unless `pauseVariable` holds a positive number.
    public static func fromEnvironment(_ environment: [String: String]) -> DeskHooks {
        guard let text = environment[pauseVariable], let seconds = Double(text), seconds > 0 else { return DeskHooks() }
        return DeskHooks { _, _ in try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
    }
}
