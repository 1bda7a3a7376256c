import Foundation
import Glibc
import SeedAudit
import SeedLedger
import SeedLicensing
import SeedZip

/// `seed-mirror licenses list|show HOST|revoke HOST|resolve INTENT|import FILE|DIR [--type] [--expires]|pending [--export FILE]`
///
/// Works on the ledger file: `--ledger PATH`, `--cache DIR` (DIR/ledger.sqlite), or `--config PATH`
/// (the configured cache directory and license lifetime); default `cache/ledger.sqlite`.
/// `list`, `show` and `pending` open it read-only, so they work beside a running server; the others
/// need the server stopped (the ledger is locked by its owner).
func runLicenses(_ args: inout Arguments) async throws -> Int32 {
    // Options first: a positional scan would otherwise take an option's value.
    let ledgerOption = try args.option("--ledger")
    let cacheOption = try args.option("--cache")
    let config = try args.option("--config").map { path throws(ConfigError) in try MirrorConfig.load(path: path) }
    let ledgerPath =
        ledgerOption ?? LicensingSection.ledgerPath(cacheDir: cacheOption ?? config?.paths.cacheDir ?? "cache")
    let note = try args.option("--note")
    let typeOption = try args.option("--type")
    let expiresOption = try args.option("--expires")
    let lifetimeOption = try args.option("--lifetime-hours")
    let export = try args.option("--export")
    guard let sub = args.positional() else { throw ConfigError(licensesUsage) }
    // Operator actions go to the audit log (config's `audit`, else `audit/` beside the ledger). It is
    // opened only after the ledger's lock is held, so a running server (the log's writer) excludes it.
    let auditOptions =
        config?.auditLogOptions
        ?? AuditLogOptions(
            directory: ((ledgerPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("audit"))
    func operatorSink() throws -> OperatorSink { try OperatorSink(auditOptions) }
    let now = Date()
    switch sub {
    case "list":
        try args.finish()
        let ledger = try Ledger.open(path: ledgerPath, readOnly: true)
        let licenses = try ledger.licenses(hostKey: nil)
        say(
            "HOST                 TYPE         ACCOUNT      SOURCE    ISSUED                EXPIRES               STATE    PORTAL-HMAC"
        )
        for l in licenses {
            say(
                [
                    pad(l.key.hostKey, 20), pad(l.key.type.rawValue, 12), pad(l.key.account, 12),
                    pad(l.source.rawValue, 9),
                    pad(iso(l.issuedAt), 21), pad(iso(l.expiresAt), 21), pad(state(l, now), 8), l.portalHMAC,
                ].joined(separator: " "))
        }
        let pool = try ledger.poolLicenses()
        if !pool.isEmpty {
            say("\noffline pool:")
            for p in pool {
                say(
                    "  \(pad(p.hostKey, 20)) \(pad(p.type.rawValue, 12)) from \(p.sourceName), expires \(iso(p.expiresAt))"
                )
            }
        }
        let unknown = try ledger.intents(in: [.unknown, .pending])
        if !unknown.isEmpty {
            say("\nissuing calls with an unknown outcome (resolve with `seed-mirror licenses resolve ID`):")
            for i in unknown { say("  intent \(i.id): \(i.key) started \(iso(i.startedAt)) \(i.detail ?? "")") }
        }
        return 0
    case "show":
        guard let host = args.positional() else { throw ConfigError("licenses show needs a HOST") }
        try args.finish()
        let key = try hostKey(host)
        let ledger = try Ledger.open(path: ledgerPath, readOnly: true)
        say("host \(key)  portal HMAC \(PortalHMAC.hash(shortHost: key))")
        if let h = try ledger.hosts().first(where: { $0.key == key }) {
            say(
                "  first seen \(iso(h.firstSeen)) from \(h.firstAddress ?? "-"), last seen \(iso(h.lastSeen)) from \(h.lastAddress ?? "-")"
            )
            if !h.aliases.isEmpty { say("  also asked as: \(h.aliases.joined(separator: ", "))") }
        }
        let licenses = try ledger.licenses(hostKey: key)
        if licenses.isEmpty { say("  no licenses") }
        for l in licenses {
            say(
                "  license \(l.id): \(l.key.type.rawValue) account \(l.key.account) \(l.source.rawValue) \(l.bytes.count) bytes, issued \(iso(l.issuedAt)) to \(l.clientAddress ?? "-"), expires \(iso(l.expiresAt)), \(state(l, now)), ref \(l.reference)"
            )
        }
        for i in try ledger.intents(in: Set(IntentState.allCases)) where i.key.hostKey == key {
            say(
                "  intent \(i.id): \(i.key.type.rawValue) \(i.state.rawValue) started \(iso(i.startedAt)) \(i.detail ?? "")"
            )
        }
        return 0
    case "revoke":
        guard let host = args.positional() else { throw ConfigError("licenses revoke needs a HOST") }
        try args.finish()
        let ledger = try Ledger.open(path: ledgerPath)
        let sink = try operatorSink()
        let n = try LicenseOperations.revoke(
            host: host, ledger: ledger, sink: sink, now: now, operatorName: operatorName())
        try sink.close()
        say("revoked \(n) license(s) of \(try hostKey(host)); its next request issues a new one")
        return n > 0 ? 0 : 1
    case "resolve":
        guard let text = args.positional(), let id = Int64(text) else {
            throw ConfigError("licenses resolve needs an intent number")
        }
        try args.finish()
        let ledger = try Ledger.open(path: ledgerPath)
        let sink = try operatorSink()
        defer { try? sink.close() }
        let r = try LicenseOperations.resolve(
            intent: id, note: note ?? "resolved by operator", ledger: ledger, sink: sink, now: now,
            operatorName: operatorName())
        say("intent \(id) for \(r.key) resolved; the next request for it may issue")
        return 0
    case "import":
        guard let source = args.positional() else { throw ConfigError("licenses import needs a FILE, DIR or ZIP") }
        let typeWord = typeOption ?? "workstation"
        guard let type = LicenseType(word: typeWord) else {
            throw ConfigError("--type \(typeWord): expected server or workstation")
        }
        let expires = try expiresOption.map { text throws(ConfigError) in
            guard let d = parseDate(text) else {
                throw ConfigError("--expires \(text): expected YYYY-MM-DD or an ISO 8601 time")
            }
            return d
        }
        let configuredHours = Int((config?.licensing.desk.lifetimeSeconds ?? 48 * 3600) / 3600)
        guard let lifetimeHours = Int(lifetimeOption ?? "\(configuredHours)"), lifetimeHours > 0 else {
            throw ConfigError("--lifetime-hours: expected a positive number of hours")
        }
        try args.finish()
        let files = try readPoolFiles(source)
        let parent = (ledgerPath as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        let ledger = try Ledger.open(path: ledgerPath)
        let sink = try operatorSink()
        let report = try LicenseOperations.importPool(
            files, type: type, expiresAt: expires, lifetimeSeconds: Double(lifetimeHours) * 3600,
            minimumBytes: config?.licensing.desk.minimumLicenseBytes ?? 800,
            ledger: ledger, sink: sink, now: now, operatorName: operatorName())
        try sink.close()
        say("imported \(report.imported.count) \(type.rawValue) license(s) into the offline pool")
        for (name, why) in report.skipped { say("  skipped \(name): \(why)") }
        return report.imported.isEmpty && !files.isEmpty ? 1 : 0
    case "pending":
        try args.finish()
        let ledger = try Ledger.open(path: ledgerPath, readOnly: true)
        let pending = try ledger.pendingHosts()
        if let export {
            // One name per line: the vendor's bulk license helper reads hostnames.txt this way.
            let names = Array(Set(pending.map(\.hostKey))).sorted()
            let text = names.map { $0 + "\n" }.joined()
            do { try Data(text.utf8).write(to: URL(fileURLWithPath: export), options: .atomic) } catch {
                throw ConfigError("cannot write \(export): \(error.localizedDescription)")
            }
            say("wrote \(names.count) host name(s) to \(export)")
        } else {
            for p in pending {
                say(
                    "\(pad(p.hostKey, 20)) \(pad(p.type.rawValue, 12)) asked \(p.count)x, first \(iso(p.firstAsked)), last \(iso(p.lastAsked))"
                )
            }
        }
        return 0
    case "bench":
        try args.finish()
        try await benchmarkDesk()
        return 0
    default:
        throw ConfigError("unknown licenses subcommand \(sub)\n\(licensesUsage)")
    }
}

let licensesUsage = """
    usage: seed-mirror licenses [--config PATH | --ledger PATH | --cache DIR] SUBCOMMAND
      list                         every license, and issuing calls with an unknown outcome
      show HOST                    one host: aliases, addresses, licenses, intents
      revoke HOST                  forget the host's licenses; its next request issues anew
      resolve INTENT [--note TEXT] settle an issuing call with an unknown outcome
      import FILE|DIR|ZIP [--type server|workstation] [--expires DATE] [--lifetime-hours N]
                                   add HOSTNAME.lic files to the offline pool
      pending [--export FILE]      hosts asked for offline without a pooled license
      bench                        measure dedup-hit decisions per second (scratch ledger in /tmp)
    """

/// Writes each operator event to the audit log and echoes it on standard output.
final class OperatorSink: DecisionSink, @unchecked Sendable {
    private let log: AuditLog

    init(_ options: AuditLogOptions) throws {
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        log = try AuditLog.open(options)
    }

    func record(_ event: DecisionEvent) {
        log.record(event)
        say("event \(event.kind.rawValue): \(event.reason ?? "")")
    }

    /// Flushes the batch to disk; the action is not done until its record is durable.
    func close() throws { try log.close() }
}

private func hostKey(_ host: String) throws(ConfigError) -> String {
    switch HostName.normalize(host) {
    case .success(let k): return k
    case .failure(let e): throw ConfigError("\(host.debugDescription): \(e.reason)")
    }
}

private func operatorName() -> String? { ProcessInfo.processInfo.environment["USER"].map { "operator:" + $0 } }

private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

private func iso(_ d: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: d)
}

private func state(_ l: LicenseRecord, _ now: Date) -> String {
    if l.revokedAt != nil { return "revoked" }
    return l.expiresAt > now ? "active" : "expired"
}

private func parseDate(_ s: String) -> Date? {
    let f = ISO8601DateFormatter()
    if let d = f.date(from: s) { return d }
    f.formatOptions = [.withFullDate]
    return f.date(from: s)
}

/// Reads `HOSTNAME.lic` files from a file, a directory tree or a ZIP (each license at most 1 MiB).
private func readPoolFiles(_ source: String) throws(ConfigError) -> [LicenseOperations.PoolFile] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir) else {
        throw ConfigError("\(source): no such file or directory")
    }
    if !isDir.boolValue && source.lowercased().hasSuffix(".zip") { return try readPoolZip(source) }
    var paths: [String] = []
    if isDir.boolValue {
        let e = FileManager.default.enumerator(atPath: source)
        while let rel = e?.nextObject() as? String, paths.count < 1_000_000 {
            if rel.lowercased().hasSuffix(".lic") { paths.append((source as NSString).appendingPathComponent(rel)) }
        }
        paths.sort()
    } else {
        paths = [source]
    }
    var files: [LicenseOperations.PoolFile] = []
    for p in paths {
        let size = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
        guard size <= 1 << 20 else { throw ConfigError("\(p): \(size) bytes is too large for a license file") }
        guard let data = FileManager.default.contents(atPath: p) else { throw ConfigError("\(p): cannot be read") }
        files.append(.init(name: (p as NSString).lastPathComponent, bytes: Array(data)))
    }
    return files
}

/// Counts events the way a real sink would receive them, without I/O.
private final class CountingSink: DecisionSink, @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func record(_ event: DecisionEvent) { lock.withLock { n += 1 } }
    var count: Int { lock.withLock { n } }
}

private struct BenchIssuer: LicenseIssuer {
    func issue(_ request: LicenseRequest, hostKey: String) async throws(IssueError) -> IssuedLicense {
        IssuedLicense(
            bytes: Array("bench license for \(hostKey)".utf8) + [UInt8](repeating: 0x42, count: 1200), source: .upstream
        )
    }
}

/// Dedup hits (known hosts, mixed spellings) against a real SQLite ledger with default policy and limits
/// (the per-host request limit off, since one host is asked thousands of times a second here).
private func benchmarkDesk() async throws {
    let dir = NSTemporaryDirectory() + "seedmirror-bench-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ledger = try Ledger.open(path: dir + "/ledger.sqlite")
    var config = DeskConfiguration()
    config.rateLimits = .unlimited
    config.policy.binding = .init()
    let sink = CountingSink()
    let desk = try LicenseDesk(configuration: config, ledger: ledger, clock: SystemDeskClock(), sink: sink)
    let hosts = 1000
    let issuer = BenchIssuer()
    let warm = Date()
    for i in 0..<hosts {
        _ = await desk.decide(benchRequest(i, 0), issuer: issuer)
    }
    let issueSeconds = Date().timeIntervalSince(warm)
    say(
        "issued \(hosts) licenses (intent + outcome, synchronous=FULL) in \(String(format: "%.2f", issueSeconds)) s: \(Int(Double(hosts) / issueSeconds))/s"
    )
    for tasks in [1, 8] {
        let perTask = 200_000 / tasks
        let start = Date()
        let cpuStart = processCPUSeconds()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in 0..<perTask { _ = await desk.decide(benchRequest(i &* 7 &+ t, i), issuer: issuer) }
                }
            }
        }
        let s = Date().timeIntervalSince(start)
        let cpu = processCPUSeconds() - cpuStart
        say(
            "dedup hits, \(tasks) task(s): \(perTask * tasks) decisions in \(String(format: "%.2f", s)) s: \(Int(Double(perTask * tasks) / s)) decisions/s, \(Int(Double(perTask * tasks) / cpu)) per CPU-second"
        )
    }
    say("events recorded: \(sink.count)")
}

/// User + system CPU time of this process (getrusage), so the rate per core is visible on a busy machine.
private func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

private func benchRequest(_ i: Int, _ variant: Int) -> LicenseRequest {
    let host = "BENCH-HOST-\(i % 1000)" + (variant % 3 == 1 ? ".corp.example" : "")
    return LicenseRequest(
        account: "default", hostAsked: variant % 2 == 0 ? host : host.lowercased(), type: .workstation, os: "windows",
        arch: "amd64", comment: nil, clientAddress: "10.20.\(i % 1000 / 250).\(i % 250 + 1)", clientTokenName: "seeds",
        route: .cloud)
}

/// The `.lic` members of a ZIP (what the license-only API and the vendor's bulk helper produce), read
/// with SeedZip's checked reader: unsafe names, duplicates and oversized members are refused.
private func readPoolZip(_ path: String) throws(ConfigError) -> [LicenseOperations.PoolFile] {
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    guard size <= 256 << 20 else { throw ConfigError("\(path): \(size) bytes is too large for a ZIP of licenses") }
    guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError("\(path): cannot be read") }
    let source = ZipBytes(Array(data))
    do {
        let archive = try ZipArchive(
            source: source, limits: ZipLimits(maxMembers: 1_000_000, maxTotalUncompressedBytes: 1 << 30))
        var files: [LicenseOperations.PoolFile] = []
        for entry in archive.entries where !entry.isDirectory && entry.name.lowercased().hasSuffix(".lic") {
            guard entry.uncompressedSize <= 1 << 20 else {
                throw ConfigError(
                    "\(path): member \(entry.name) is \(entry.uncompressedSize) bytes, too large for a license")
            }
            files.append(.init(name: entry.name, bytes: try archive.contents(of: entry, from: source)))
        }
        return files
    } catch let error as ZipError {
        throw ConfigError("\(path): not a usable ZIP of licenses: \(error)")
    } catch let error as ConfigError {
        throw error
    } catch {
        throw ConfigError("\(path): \(error)")
    }
}
