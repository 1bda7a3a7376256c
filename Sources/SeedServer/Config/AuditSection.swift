public import SeedAudit
public import SeedLicensing
public import SeedHTTPServer

/// Configuration of the audit trail, the admin API and metrics: root keys `audit`, `admin` and
/// `metrics` (docs/audit.md §Configuration). The admin token is a `SecretSource`, resolved at startup.
public struct AuditSection: Sendable {
    /// `audit.dir`; nil means `<cache>/audit`, resolved by whoever knows the cache directory.
    public var directory: String?
    /// `audit.rotation.maxBytes` (default 64 MiB).
    public var maxFileBytes: Int = 64 << 20
    /// `audit.rotation.daily` (default true).
    public var rotateDaily: Bool = true
    /// `audit.batchWindowMs` (default 50).
    public var batchWindowMilliseconds: Int = 50
    /// `audit.batchMaxRecords` (default 4096: under load the time bound, `batchWindowMs`, decides the batch).
    public var batchMaxRecords: Int = 4096
    /// `audit.syslog`; nil when records are not forwarded.
    public var syslog: SyslogOptions?
    /// `admin.networks`: CIDRs the admin API answers from; empty means any address.
    public var adminNetworks: [IPNetwork] = []
    /// `metrics.listen`: a separate listener for /metrics; nil serves it on the main listeners only.
    public var metricsListen: ListenAddress?
    /// `metrics.requireAdmin` (default true): /metrics needs the admin token like the other admin routes.
    public var metricsRequireAdmin: Bool = true

    /// Reads this section's keys from the root object; unknown keys are left for the root to reject.
    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        if let audit = try root.object("audit") {
            directory = try audit.string("dir").map { resolvePath($0, base: baseDir) }
            if let rotation = try audit.object("rotation") {
                maxFileBytes = try rotation.int("maxBytes", default: maxFileBytes, min: 4096)
                rotateDaily = try rotation.bool("daily", default: rotateDaily)
                try rotation.finish()
            }
            batchWindowMilliseconds = try audit.int("batchWindowMs", default: batchWindowMilliseconds, min: 0, max: 10_000)
            batchMaxRecords = try audit.int("batchMaxRecords", default: batchMaxRecords, min: 1, max: 1_000_000)
            if let s = try audit.object("syslog") {
                let proto = try s.string("protocol", default: "udp")
                guard let transport = SyslogOptions.Transport(rawValue: proto) else {
                    throw ConfigError("config key audit.syslog.protocol: expected \"udp\" or \"tcp\", got \"\(proto)\"")
                }
                guard let host = try s.string("host"), !host.isEmpty else {
                    throw ConfigError("config key audit.syslog.host: the collector's host name or address is required")
                }
                let port = try s.int("port", default: 514, min: 1, max: 65535)
                var options = SyslogOptions(
                    transport: transport, host: host, port: UInt16(port),
                    appName: try s.string("appName", default: "seed-mirror"))
                options.facility = try s.int("facility", default: 13, min: 0, max: 23)
                options.queueCapacity = try s.int("queue", default: 10_000, min: 1, max: 10_000_000)
                try s.finish()
                syslog = options
            }
            try audit.finish()
        }
        if let admin = try root.object("admin") {
            // `admin.token` belongs to AdminSection (resolved into MirrorConfig.admin.token); this section
            // reads only `admin.networks`, and AdminSection rejects any other unknown key.
            for (i, text) in (try admin.stringArray("networks") ?? []).enumerated() {
                guard let n = IPNetwork(text) else {
                    throw ConfigError("config key admin.networks[\(i)]: \"\(text)\" is not an address or CIDR network")
                }
                adminNetworks.append(n)
            }
        }
        if let metrics = try root.object("metrics") {
            if let listen = try metrics.string("listen") {
                guard let a = ListenAddress(parsing: listen) else {
                    throw ConfigError("config key metrics.listen: \"\(listen)\" is not HOST:PORT")
                }
                metricsListen = a
            }
            metricsRequireAdmin = try metrics.bool("requireAdmin", default: true)
            try metrics.finish()
        }
    }

    /// The audit log directory: `audit.dir`, else `<cacheDirectory>/audit`.
    public func auditDirectory(cacheDirectory: String) -> String {
        directory ?? (cacheDirectory.hasSuffix("/") ? cacheDirectory + "audit" : cacheDirectory + "/audit")
    }

    /// Writer options for `AuditLog.open`.
    public func auditLogOptions(cacheDirectory: String) -> AuditLogOptions {
        var o = AuditLogOptions(directory: auditDirectory(cacheDirectory: cacheDirectory))
        o.maxFileBytes = maxFileBytes
        o.rotateDaily = rotateDaily
        o.batchWindow = .milliseconds(batchWindowMilliseconds)
        o.batchMaxRecords = batchMaxRecords
        return o
    }

    /// The access rule of the admin routes, given the resolved `admin.token` (MirrorConfig.admin.token).
    public func adminAccess(token: String?) -> AdminAccess {
        AdminAccess(token: token, networks: adminNetworks)
    }
}

extension MirrorConfig {
    /// Who may use the admin routes: `admin.token` from `admin.networks`.
    public var adminAccess: AdminAccess { audit.adminAccess(token: admin.token?.value) }

    /// The audit log directory: `audit.dir`, else `<paths.cacheDir>/audit`.
    public var auditDirectory: String { audit.auditDirectory(cacheDirectory: paths.cacheDir) }

    /// Writer options for `AuditLog.open`.
    public var auditLogOptions: AuditLogOptions { audit.auditLogOptions(cacheDirectory: paths.cacheDir) }
}
