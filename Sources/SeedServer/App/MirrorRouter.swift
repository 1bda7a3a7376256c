public import SeedCore
public import SeedHTTP
public import SeedHTTPServer
public import SeedLicensing
import SeedStore

/// A router consulted before the seed routes (the admin API, `/metrics`, the dashboard). It answers nil
/// for paths it does not own.
public protocol MirrorSubRouter: Sendable {
    func route(_ request: HTTPRequest, context: RequestContext) -> HandlerResult?
}

/// Whether the mirror can serve: the store and ledger are open and the listeners are up.
public struct Readiness: Sendable, Equatable {
    public var ready: Bool
    /// What is not ready, one short phrase each (empty when ready).
    public var problems: [String]
    public init(ready: Bool, problems: [String] = []) {
        self.ready = ready
        self.problems = problems
    }
}

/// Counters the routes report; the audit part's MetricsRegistry sits behind this.
public protocol RouteMetrics: Sendable {
    /// One answered request on a seed route (or 404/405), by route label and status.
    func answered(route: String, status: Int)
    /// A package answer served from the cache (`hit`) or after an upstream download (`miss`).
    func packageServed(hit: Bool)
    /// An upstream call completed (`operation` is `package` or `license`), successfully or not.
    func upstreamCompleted(operation: String, seconds: Double)
    /// Requests waiting for another request's package download went up (+1) or down (-1).
    func flightWaiters(delta: Int)
}

/// Everything the router needs, built by `MirrorApp` from the configuration (or by tests directly).
public struct MirrorRouterParts: Sendable {
    public var tokens: ClientTokenTable
    /// The upstream account (contract) licenses are spent on, from the configuration.
    public var account: String
    public var desk: any LicenseDeciding
    public var packages: PackageService
    public var admin: (any MirrorSubRouter)?
    public var decisions: (any DecisionSink)?
    public var metrics: (any RouteMetrics)?
    public var readiness: @Sendable () -> Readiness
    public var limits: SeedCallLimits
    /// How many hosts of one bulk license request are decided at once.
    public var bulkConcurrency: Int
    public var logger: Logger

    public init(
        tokens: ClientTokenTable, account: String, desk: any LicenseDeciding, packages: PackageService,
        admin: (any MirrorSubRouter)? = nil, decisions: (any DecisionSink)? = nil, metrics: (any RouteMetrics)? = nil,
        readiness: @escaping @Sendable () -> Readiness = { Readiness(ready: true) },
        limits: SeedCallLimits = SeedCallLimits(), bulkConcurrency: Int = 8, logger: Logger
    ) {
        self.tokens = tokens
        self.account = account
        self.desk = desk
        self.packages = packages
        self.admin = admin
        self.decisions = decisions
        self.metrics = metrics
        self.readiness = readiness
        self.limits = limits
        self.bulkConcurrency = max(1, bulkConcurrency)
        self.logger = logger
    }
}

/// The mirror's HTTP handler: the admin sub-router first, then `/healthz`, `/readyz` and the four seed
/// routes of PROTOCOL.md §1–3. Cheap checks (path, method, parameters, client token) answer on the loop;
/// the desk, the store and upstream run in `.deferred` work.
public struct MirrorRouter: HTTPHandler {
    public let parts: MirrorRouterParts
    /// The desk, when it can answer some requests without waiting (looked up once, not per request).
    private let immediateDesk: (any ImmediateLicenseDeciding)?

    public init(_ parts: MirrorRouterParts) {
        self.parts = parts
        immediateDesk = parts.desk as? any ImmediateLicenseDeciding
    }

    public func handle(_ request: HTTPRequest, context: RequestContext) -> HandlerResult {
        if let admin = parts.admin, let r = admin.route(request, context: context) { return r }
        guard let endpoint = MirrorEndpoint.match(path: request.path) else {
            parts.metrics?.answered(route: "unknown", status: 404)
            return .response(errorResponse(404, "no such endpoint"))
        }
        let label = endpoint.label
        guard endpoint.allowedMethods.contains(request.method) else {
            parts.metrics?.answered(route: label, status: 405)
            return .response(
                errorResponse(
                    405, "method \(request.method) is not allowed here",
                    extra: [("Allow", endpoint.allowedMethods.joined(separator: ", "))]))
        }
        switch endpoint {
        case .healthz:
            return .response(Response.text(200, "ok"))
        case .readyz:
            let r = parts.readiness()
            if r.ready { return .response(Response.text(200, "ready")) }
            return .response(errorResponse(503, "not ready: " + r.problems.joined(separator: "; ")))
        case .seed(let route):
            switch admit(request, route: route, context: context) {
            case .failure(let e):
                parts.metrics?.answered(route: label, status: e.status)
                return .response(errorResponse(e))
            case .success(let (call, tokenName)):
                if route == .licenseOnly, call.hosts.count == 1, let r = immediateLicenseAnswer(call, tokenName, context) {
                    parts.metrics?.answered(route: label, status: r.status)
                    return .response(r)
                }
                let parts = self.parts
                return .deferred {
                    let r: Response
                    if route == .licenseOnly {
                        r = await licenseOnlyAnswer(call, tokenName: tokenName, context: context, parts: parts)
                    } else {
                        r = await packageAnswer(call, tokenName: tokenName, context: context, parts: parts)
                    }
                    parts.metrics?.answered(route: label, status: r.status)
                    return r
                }
            }
        }
    }

    /// The license-only answer for one host when the desk can decide without waiting (a dedup hit, or a
    /// refusal decided before issuing): answered on the loop, no task, no thread hop. Nil when the request
    /// needs the desk's async path (a new host, a renewal, anything upstream).
    func immediateLicenseAnswer(_ call: SeedCall, _ tokenName: String, _ context: RequestContext) -> Response? {
        guard let desk = immediateDesk else { return nil }
        let request = call.licenseRequest(
            host: call.hosts[0], account: parts.account, clientAddress: context.clientAddress, tokenName: tokenName)
        guard let outcome = desk.decideWithoutWaiting(request) else { return nil }
        return licenseOnlyResponse(call, outcomes: [outcome])
    }

    /// Token first (an unauthenticated client learns nothing about parameters), then the parameters.
    func admit(_ request: HTTPRequest, route: SeedRoute, context: RequestContext)
        -> Result<(SeedCall, String), RouteError>
    {
        let query: SeedQuery
        do { query = try decodeSeedQuery(request.query) } catch { return .failure(error) }
        let queryToken = query.token
        switch parts.tokens.check(headers: request.headers, queryToken: queryToken) {
        case .missing:
            // The cloud answers a missing token with 400 (PROTOCOL.md §1); ASGARD routes use 401.
            if route == .cloud { return .failure(RouteError(400, "client token missing (X-Token or Authorization)")) }
            return .failure(
                RouteError(
                    401, "client token missing (token parameter or Authorization)",
                    headers: [("WWW-Authenticate", "Bearer realm=\"seed-mirror\"")]))
        case .conflicting:
            return .failure(RouteError(400, "the request carries two different client tokens"))
        case .unknown:
            recordTokenRefusal(route: route, context: context, tokenName: nil, reason: "unknown client token")
            return .failure(RouteError(403, "client token not accepted"))
        case .revoked(let name):
            recordTokenRefusal(route: route, context: context, tokenName: name, reason: "client token revoked")
            return .failure(RouteError(403, "client token revoked"))
        case .accepted(let name):
            do {
                return .success((try parseSeedCall(request, route: route, limits: parts.limits, query: query), name))
            } catch {
                return .failure(error)
            }
        }
    }

    private func recordTokenRefusal(route: SeedRoute, context: RequestContext, tokenName: String?, reason: String) {
        parts.logger.notice(
            "client token refused",
            [("client.address", context.clientAddress), ("route", route.rawValue), ("token.name", tokenName ?? "-")])
        guard let sink = parts.decisions else { return }
        var e = DecisionEvent(kind: .refused)
        e.clientAddress = context.clientAddress
        e.clientTokenName = tokenName
        e.route = route
        e.rule = "client-token"
        e.reason = reason
        sink.record(e)
    }
}

extension MirrorEndpoint {
    /// The label used in metrics and logs.
    var label: String {
        switch self {
        case .seed(let r): r.rawValue
        case .healthz: "healthz"
        case .readyz: "readyz"
        }
    }
}

// MARK: - Package routes

/// One download request: the desk decides; a cold miss led by this request streams upstream's ZIP as it
/// arrives, anything else is assembled from the store with `<hostKey>.lic` added.
func packageAnswer(_ call: SeedCall, tokenName: String, context: RequestContext, parts: MirrorRouterParts) async
    -> Response
{
    let request = call.licenseRequest(
        host: call.hosts[0], account: parts.account, clientAddress: context.clientAddress, tokenName: tokenName)
    let handoff = ServeHandoff()
    let issuer = RequestIssuer(service: parts.packages, handoff: handoff)
    let desk = parts.desk
    let logger = parts.logger
    Task {
        let outcome = await desk.decide(request, issuer: issuer)
        if !handoff.offer(.decided(outcome)), case .refused(let s, let reason, _) = outcome {
            // The relay already started; the seed sees the cut connection, the operator this line.
            logger.warning("desk refused after the relay started", [("status", String(s)), ("reason", reason)])
        }
    }
    switch await handoff.first() {
    case .relay(let relay):
        parts.metrics?.packageServed(hit: false)
        var h = HTTPHeaders()
        h.add("Content-Type", "application/zip")
        h.add("Content-Disposition", "attachment; filename=\"thor-package.zip\"")
        h.add("Cache-Control", "private, no-store")
        return Response(status: 200, headers: h, body: ResponseBody([.stream(relay, length: relay.length)]))
    case .decided(.refused(let status, let reason, let retryAfter)):
        return refusalResponse(status: status, reason: reason, retryAfterSeconds: retryAfter)
    case .decided(.granted(let license, let hostKey, let kind)):
        let plan: PackagePlan
        do {
            let (p, fromCache) = try await parts.packages.packageAnswer(request, hostKey: hostKey, license: license)
            plan = p
            parts.metrics?.packageServed(hit: fromCache)
        } catch {
            return errorResponse(error.status, error.reason)
        }
        var h = HTTPHeaders()
        h.add("Content-Type", "application/zip")
        h.add("Content-Disposition", "attachment; filename=\"thor-package.zip\"")
        h.add("ETag", plan.etag)
        h.add("Cache-Control", "private, no-cache")
        h.add("X-SeedMirror-License", kind.rawValue)
        return Response(status: 200, headers: h, body: ResponseBody(plan.segments), acceptsRanges: true)
    }
}

// MARK: - License-only route

/// Decides every host of a (possibly bulk) license request, a few at a time, and answers with a ZIP of
/// `hostKey.lic` files, or the bare license for one host asked with `Accept: application/octet-stream`.
/// Hosts refused while others were granted are left out and counted in `X-SeedMirror-Refused`; each
/// refusal is in the audit trail. When every host is refused, the first refusal is the answer.
func licenseOnlyAnswer(_ call: SeedCall, tokenName: String, context: RequestContext, parts: MirrorRouterParts)
    async -> Response
{
    let issuer = RequestIssuer(service: parts.packages, handoff: nil)
    let requests = call.hosts.map {
        call.licenseRequest(
            host: $0, account: parts.account, clientAddress: context.clientAddress, tokenName: tokenName)
    }
    var outcomes = [LicenseOutcome?](repeating: nil, count: requests.count)
    await withTaskGroup(of: (Int, LicenseOutcome).self) { group in
        var next = 0
        func launch() {
            let i = next
            next += 1
            let r = requests[i]
            group.addTask { (i, await parts.desk.decide(r, issuer: issuer)) }
        }
        while next < requests.count && next < parts.bulkConcurrency { launch() }
        for await (i, o) in group {
            outcomes[i] = o
            if next < requests.count { launch() }
        }
    }
    return licenseOnlyResponse(call, outcomes: outcomes.map { $0! })
}

/// The license-only answer for the desk's outcomes, one per host of the call, in order.
func licenseOnlyResponse(_ call: SeedCall, outcomes: [LicenseOutcome]) -> Response {
    if call.wantsBareLicense, outcomes.count == 1, case .granted(let license, let hostKey, _) = outcomes[0] {
        // One array of three fields, built at once (no growth on each add).
        let h = HTTPHeaders([
            ("Cache-Control", "private, no-store"), ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", "attachment; filename=\"\(hostKey).lic\""),
        ])
        return Response(status: 200, headers: h, body: .bytes(license))
    }
    var members: [(name: String, bytes: [UInt8])] = []
    var seenKeys: Set<String> = []
    var firstRefusal: (Int, String, Int?)?
    var refused = 0
    for o in outcomes {
        switch o {
        case .granted(let license, let hostKey, _):
            // Two spellings of one host map to one key; a ZIP with duplicate names fails to extract.
            if seenKeys.insert(hostKey).inserted { members.append((hostKey + ".lic", license)) }
        case .refused(let s, let reason, let ra):
            refused += 1
            if firstRefusal == nil { firstRefusal = (s, reason, ra) }
        }
    }
    guard !members.isEmpty else {
        let (s, reason, ra) = firstRefusal!
        return refusalResponse(status: s, reason: reason, retryAfterSeconds: ra)
    }
    var h = HTTPHeaders()
    h.add("Cache-Control", "private, no-store")
    if refused > 0 { h.add("X-SeedMirror-Refused", String(refused)) }
    if call.wantsBareLicense && members.count == 1 {
        h.add("Content-Type", "application/octet-stream")
        h.add("Content-Disposition", "attachment; filename=\"\(members[0].name)\"")
        return Response(status: 200, headers: h, body: .bytes(members[0].bytes))
    }
    h.add("Content-Type", "application/zip")
    h.add("Content-Disposition", "attachment; filename=\"licenses.zip\"")
    let zip: [UInt8]
    do {
        zip = try members.count == 1 ? LicenseZipCache.shared.zip(members[0]) : licenseZip(members)
    } catch {
        let reason = "could not assemble the license ZIP: \(error)"
        return refusalResponse(status: 500, reason: reason, retryAfterSeconds: nil)
    }
    return Response(status: 200, headers: h, body: .bytes(zip))
}

extension AdminRoutes: MirrorSubRouter {
    public func route(_ request: HTTPRequest, context: RequestContext) -> HandlerResult? {
        handle(request, context: context)
    }
}
