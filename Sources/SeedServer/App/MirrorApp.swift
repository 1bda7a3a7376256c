import Foundation
public import SeedAudit
public import SeedCore
import SeedHTTP
public import SeedHTTPServer
public import SeedLedger
public import SeedLicensing
public import SeedStore
import SeedTLS

/// The running mirror: every part built from a `MirrorConfig` and wired together. Built once before the
/// event loops start (a bad certificate, key mode or cache directory stops startup with one line);
/// `start` binds the listeners, `reloadTLS` swaps certificates, `shutdown` drains and closes.
public final class MirrorApp: Sendable {
    public let config: MirrorConfig
    public let store: PackageStore
    public let ledger: Ledger
    public let audit: AuditLog
    public let metrics: MetricsRegistry
    public let desk: any LicenseDeciding
    public let packages: PackageService
    public let router: MirrorRouter
    public let server: HTTPSServer
    /// The separate `/metrics` listener (`metrics.listen`), when configured.
    public let metricsServer: HTTPSServer?
    let logger: Logger
    let accessLog: (any AccessLogSink)?
    private let state = Lock(RunState())

    struct RunState {
        var addresses: [ListenAddress] = []
        var listening = false
        var stopping = false
    }

    /// Opens the store, ledger and audit log, builds TLS, upstream and the desk. `listen` overrides the
    /// configured listeners (the `--listen` option, tests with port 0).
    public init(
        config: MirrorConfig, listen: [ListenAddress]? = nil, logger: Logger, accessLog: (any AccessLogSink)?
    ) throws {
        self.config = config
        self.logger = logger
        self.accessLog = accessLog
        try checkPrivateKeyPermissions(config.tls.certificates.map(\.privateKeyPath))
        let tls = try TLSServerContext(configuration: config.tlsServerConfiguration)
        let cache = config.paths.cacheDir
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)

        metrics = MetricsRegistry()
        store = try PackageStore(root: config.store.root(paths: config.paths), options: config.store.options)
        audit = try AuditLog.open(config.auditLogOptions, logger: logger, metrics: metrics)

        let routeMetrics = RegistryRouteMetrics(metrics)
        let upstream: (any MirrorUpstream)? =
            config.upstream.mode == .online
            ? try makeUpstream(config.upstream, logger: logger) : nil
        var settings = PackageServiceSettings()
        settings.online = upstream != nil
        if let r = config.upstream.refreshInterval {
            settings.refreshInterval = r
        } else {
            settings.refreshInterval = .seconds(Int64.max / 4)
        }
        packages = PackageService(
            catalog: try StoreCatalog(store: store), upstream: upstream, settings: settings, logger: logger,
            metrics: routeMetrics)
        let (desk, ledger) = try config.licensing.makeDesk(
            ledgerPath: LicensingSection.ledgerPath(cacheDir: cache), offline: upstream == nil, sink: audit,
            logger: logger)
        self.desk = desk
        self.ledger = ledger

        var tokens: [ClientToken] = []
        for c in config.clients.clients {
            tokens.append(ClientToken(name: c.name, secret: c.token.value, revoked: c.revoked))
        }
        let readinessBox = ReadinessBox()
        let admin = AdminRoutes(
            access: config.adminAccess, metricsRequireAdmin: config.audit.metricsRequireAdmin,
            auditDirectory: config.auditDirectory, metrics: metrics, licenses: LedgerLicenseListing(ledger: ledger))
        router = MirrorRouter(
            MirrorRouterParts(
                tokens: ClientTokenTable(tokens), account: config.upstream.account, desk: desk, packages: packages,
                admin: admin,
                decisions: audit, metrics: routeMetrics, readiness: { readinessBox.check() },
                logger: logger))
        var serverConfig = config.httpServerConfiguration
        if let listen { serverConfig.listeners = listen }
        server = HTTPSServer(
            configuration: serverConfig, tls: tls, handler: router, logger: logger, accessLog: accessLog)
        if let metricsListen = config.audit.metricsListen {
            var metricsConfig = config.httpServerConfiguration
            metricsConfig.listeners = [metricsListen]
            metricsConfig.eventLoops = 1
            metricsServer = HTTPSServer(
                configuration: metricsConfig, tls: tls, handler: MetricsOnlyHandler(routes: admin), logger: logger,
                accessLog: accessLog)
        } else {
            metricsServer = nil
        }
        readinessBox.app.withLock { $0 = WeakApp(self) }
    }

    /// Binds every listener; returns the bound addresses (port 0 resolved).
    public func start() throws -> [ListenAddress] {
        let addresses = try server.start()
        if let metricsServer {
            let bound = try metricsServer.start()
            logger.notice("metrics listening", [("addresses", bound.map(\.description).joined(separator: " "))])
        }
        state.withLock {
            $0.addresses = addresses
            $0.listening = true
        }
        logger.notice("listening", [("addresses", addresses.map(\.description).joined(separator: " "))])
        return addresses
    }

    public var addresses: [ListenAddress] { state.withLock { $0.addresses } }

    /// Ready when listening, not stopping, and the store and ledger answer.
    public var readiness: Readiness {
        var problems: [String] = []
        let s = state.withLock { $0 }
        if !s.listening { problems.append("listeners not up") }
        if s.stopping { problems.append("shutting down") }
        if (try? ledger.storedSchemaVersion()) == nil { problems.append("ledger not readable") }
        if !FileManager.default.isWritableFile(atPath: store.root) { problems.append("store not writable") }
        return Readiness(ready: problems.isEmpty, problems: problems)
    }

    /// Re-reads the certificates and keys named in the configuration and uses them for new handshakes.
    /// Open connections keep theirs. Audited as `config-reload`.
    public func reloadTLS() throws {
        try checkPrivateKeyPermissions(config.tls.certificates.map(\.privateKeyPath))
        let tls = try TLSServerContext(configuration: config.tlsServerConfiguration)
        server.replaceTLSContext(tls)
        metricsServer?.replaceTLSContext(tls)
        var e = DecisionEvent(kind: .configReload)
        e.reason = "TLS certificates and keys reloaded"
        audit.record(e)
        logger.notice("tls certificates reloaded", [])
    }

    /// Stops accepting, lets running responses finish within `grace`, then flushes the audit log.
    public func shutdown(grace: Duration) async {
        state.withLock { $0.stopping = true }
        await server.shutdown(grace: grace)
        await metricsServer?.shutdown(grace: grace)
        state.withLock { $0.listening = false }
        // The access log writes in batches; the last requests' lines go out before shutdown returns.
        accessLog?.flush()
        do { try audit.close() } catch { logger.error("closing the audit log failed", [("error", "\(error)")]) }
        // Last: the audit log keeps its chain head in the ledger. Closing checkpoints the WAL into the file.
        do { try ledger.close() } catch { logger.error("closing the ledger failed", [("error", "\(error)")]) }
    }
}

private struct WeakApp: @unchecked Sendable {
    weak var app: MirrorApp?
    init(_ a: MirrorApp) { app = a }
}

/// Breaks the cycle app → router → readiness closure → app.
private final class ReadinessBox: Sendable {
    let app = Lock<WeakApp?>(nil)
    func check() -> Readiness {
        guard let a = app.withLock({ $0?.app }) else { return Readiness(ready: false, problems: ["starting"]) }
        return a.readiness
    }
}

/// The routes' counters in the audit part's registry.
final class RegistryRouteMetrics: RouteMetrics {
    struct RouteStatus: Hashable, Sendable {
        var route: String
        var status: Int
    }
    let registry: MetricsRegistry
    let waiters: Gauge
    /// Counter handles by route and status, in a dictionary of concrete types (the generic `CounterHandles`
    /// paid for generic metadata and witness calls on every request).
    let requests = Lock<[RouteStatus: Counter]>([:])
    init(_ r: MetricsRegistry) {
        registry = r
        waiters = r.gauge(MetricNames.singleFlightWaiters)
    }
    func answered(route: String, status: Int) {
        let key = RouteStatus(route: route, status: status)
        if let c = requests.withLock({ $0[key] }) {
            c.increment()
            return
        }
        let c = registry.counter(MetricNames.requests, labels: [("route", route), ("status", String(status))])
        requests.withLock { $0[key] = c }
        c.increment()
    }
    func packageServed(hit: Bool) {
        registry.counter(hit ? MetricNames.cacheHits : MetricNames.cacheMisses).increment()
    }
    func upstreamCompleted(operation: String, seconds: Double) {
        registry.histogram(MetricNames.upstreamLatency, labels: [("operation", operation)]).observe(seconds)
    }
    func flightWaiters(delta: Int) { waiters.increment(by: Double(delta)) }
}
