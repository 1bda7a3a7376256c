public import Foundation
public import SeedCore
public import SeedLedger
public import SeedLicensing

/// Configuration of the licensing part, from the root keys `licenses`, `policy`, `rateLimits` and
/// `quotas` (docs/configuration.md). Whether the mirror is offline comes from `upstream.mode`.
public struct LicensingSection: Sendable {
    /// Everything the LicenseDesk takes; `offline` is left false here (set it from the upstream mode).
    public var desk: DeskConfiguration
    /// Host names from `policy.inventory.file` that were not host names (reported at startup).
    public var inventoryRejected: [String]

    /// The ledger inside the cache directory.
    public static func ledgerPath(cacheDir: String) -> String {
        cacheDir.hasSuffix("/") ? cacheDir + "ledger.sqlite" : cacheDir + "/ledger.sqlite"
    }

    /// Reads this section's keys from the root object; unknown keys inside them are errors.
    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        var d = DeskConfiguration()
        inventoryRejected = []
        if let o = try root.object("licenses") {
            d.lifetimeSeconds = Double(try o.int("lifetimeHours", default: 48, min: 1, max: 24 * 366)) * 3600
            d.renewalMarginSeconds = try o.double("renewalMarginHours", default: 1, min: 0) * 3600
            guard d.renewalMarginSeconds < d.lifetimeSeconds else {
                throw ConfigError("config key licenses.renewalMarginHours: must be shorter than lifetimeHours")
            }
            d.minimumLicenseBytes = try o.int("minimumLicenseBytes", default: 800, min: 1, max: 1 << 20)
            d.followerTimeout = .seconds(try o.int("followerTimeoutSeconds", default: 120, min: 1, max: 3600))
            d.unknownOutcomeBlockSeconds = try o.double("unknownOutcomeBlockHours", default: 6, min: 0) * 3600
            d.maxTrackedKeys = try o.int("maxTrackedKeys", default: 100_000, min: 100, max: 10_000_000)
            d.maxPendingHosts = try o.int("maxPendingHosts", default: 100_000, min: 1, max: 10_000_000)
            try o.finish()
        }
        if let o = try root.object("policy") {
            if let n = try o.object("clientNetworks") {
                var nets: [IPNetwork] = []
                for (i, s) in (try n.stringArray("allow") ?? []).enumerated() {
                    guard let net = IPNetwork(s) else {
                        throw ConfigError(
                            "config key policy.clientNetworks.allow[\(i)]: \"\(s)\" is not an address or CIDR block")
                    }
                    nets.append(net)
                }
                d.policy.networks = .init(allowed: nets, mode: try Self.mode(n))
                try n.finish()
            }
            if let n = try o.object("denyHostPatterns") {
                let patterns = try n.stringArray("patterns") ?? []
                d.policy.deny = .init(patterns: patterns.map { $0.lowercased() }, mode: try Self.mode(n))
                try n.finish()
            }
            if let n = try o.object("inventory") {
                var hosts: Set<String> = []
                for (i, s) in (try n.stringArray("hosts") ?? []).enumerated() {
                    guard let k = try? HostName.normalize(s).get() else {
                        throw ConfigError("config key policy.inventory.hosts[\(i)]: \"\(s)\" is not a host name")
                    }
                    hosts.insert(k)
                }
                if let file = try n.string("file") {
                    let path = resolvePath(file, base: baseDir)
                    guard let data = FileManager.default.contents(atPath: path) else {
                        throw ConfigError("config key policy.inventory.file: cannot read \(path)")
                    }
                    let parsed = PolicyConfiguration.parseInventory(String(decoding: data, as: UTF8.self))
                    hosts.formUnion(parsed.hosts)
                    inventoryRejected = parsed.rejected
                }
                d.policy.inventory = .init(hosts: hosts, mode: try Self.mode(n))
                try n.finish()
            }
            if let n = try o.object("hostBinding") {
                d.policy.binding = .init(
                    v4Prefix: try n.int("v4Prefix", default: 24, min: 0, max: 32),
                    v6Prefix: try n.int("v6Prefix", default: 64, min: 0, max: 128), mode: try Self.mode(n))
                try n.finish()
            }
            if let n = try o.object("firstSeenHold") {
                d.policy.firstSeenHold = .init(
                    seconds: Double(try n.int("minutes", default: 30, min: 1, max: 7 * 24 * 60)) * 60,
                    mode: try Self.mode(n))
                try n.finish()
            }
            try o.finish()
        }
        if let o = try root.object("rateLimits") {
            var r = d.rateLimits
            r.requestsPerHost = try Self.limit(o, "requestsPerHost", default: r.requestsPerHost)
            r.newHostsPerAddress = try Self.limit(o, "newHostsPerAddress", default: r.newHostsPerAddress)
            r.newHostsPerNetwork = try Self.limit(o, "newHostsPerNetwork", default: r.newHostsPerNetwork)
            r.issuancesPerToken = try Self.limit(o, "issuancesPerToken", default: r.issuancesPerToken)
            r.networkV4Prefix = try o.int("networkV4Prefix", default: 24, min: 0, max: 32)
            r.networkV6Prefix = try o.int("networkV6Prefix", default: 64, min: 0, max: 128)
            var jump: [IPNetwork] = []
            for (i, s) in (try o.stringArray("jumpHosts") ?? []).enumerated() {
                guard let net = IPNetwork(s) else {
                    throw ConfigError("config key rateLimits.jumpHosts[\(i)]: \"\(s)\" is not an address or CIDR block")
                }
                jump.append(net)
            }
            r.jumpHosts = jump
            let hour = try o.int("breakerPerHour", default: r.breakerPerHour ?? 0, min: 0)
            let day = try o.int("breakerPerDay", default: r.breakerPerDay ?? 0, min: 0)
            r.breakerPerHour = hour == 0 ? nil : hour
            r.breakerPerDay = day == 0 ? nil : day
            d.rateLimits = r
            try o.finish()
        }
        if let o = try root.object("quotas") {
            for a in try o.objectArray("accounts") ?? [] {
                guard let name = try a.string("account"), !name.isEmpty else {
                    throw ConfigError("config key \(a.path).account: required")
                }
                d.quotas.accountTotals[name] = try a.int("total", default: 0, min: 0)
                try a.finish()
            }
            for t in try o.objectArray("tokens") ?? [] {
                guard let name = try t.string("name"), !name.isEmpty else {
                    throw ConfigError("config key \(t.path).name: required")
                }
                d.quotas.tokenCaps[name] = try t.int("cap", default: 0, min: 0)
                try t.finish()
            }
            d.quotas.upstream409MemorySeconds =
                Double(try o.int("upstream409MemoryMinutes", default: 15, min: 0, max: 7 * 24 * 60)) * 60
            try o.finish()
        }
        desk = d
    }

    private static func mode(_ o: ConfigObject) throws(ConfigError) -> RuleMode {
        let s = try o.string("mode", default: "enforce")
        guard let m = RuleMode(rawValue: s) else {
            throw ConfigError("config key \(o.path).mode: \"\(s)\" is neither \"enforce\" nor \"report-only\"")
        }
        return m
    }

    /// `{"count": N, "perSeconds": S}`; `{"count": 0}` turns the limit off.
    private static func limit(_ o: ConfigObject, _ key: String, default d: RateLimit?) throws(ConfigError) -> RateLimit?
    {
        guard let l = try o.object(key) else { return d }
        let count = try l.int("count", default: d?.count ?? 0, min: 0)
        let per = try l.double("perSeconds", default: d?.seconds ?? 3600, min: 0.001)
        try l.finish()
        return count == 0 ? nil : RateLimit(count: count, per: per)
    }
}

extension LicensingSection {
    /// Opens the ledger (creating its folder) and builds the desk over it, as `serve` does before the
    /// loops start. `offline` comes from `upstream.mode`. Pending intents left by a crash are reported
    /// to `sink` here. Test pauses come from `DeskHooks.pauseVariable` in `environment`.
    public func makeDesk(
        ledgerPath: String, offline: Bool, sink: any DecisionSink, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (desk: LicenseDesk, ledger: Ledger) {
        let parent = (ledgerPath as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        let ledger = try Ledger.open(path: ledgerPath)
        var config = desk
        config.offline = offline
        let desk = try LicenseDesk(
            configuration: config, ledger: ledger, clock: SystemDeskClock(), sink: sink, logger: logger,
            hooks: DeskHooks.fromEnvironment(environment))
        return (desk, ledger)
    }
}
