public import SeedAudit
public import SeedLicensing
import SeedCore
public import SeedHTTP
public import SeedHTTPServer

/// Who may use the admin routes: the bearer token, and optionally only from some networks.
public struct AdminAccess: Sendable {
    /// The admin token; nil disables every admin-protected route (403).
    public var token: String?
    /// Client networks allowed; empty allows any address (the token is still required).
    public var networks: [IPNetwork]

    public init(token: String?, networks: [IPNetwork] = []) {
        self.token = token
        self.networks = networks
    }
}

/// One license as the admin API lists it. The server maps its ledger rows to this.
public struct LicenseSummary: Sendable, Equatable {
    public var hostKey: String
    public var hostAsked: String?
    public var type: String
    public var account: String?
    public var licenseRef: String?
    public var portalHmac: String?
    /// e.g. `active`, `revoked`, `expired`, `pending`.
    public var state: String
    public var issuedAt: AuditTime?
    public var expiresAt: AuditTime?
    public var lastServedAt: AuditTime?
    public var timesServed: Int

    public init(
        hostKey: String, hostAsked: String? = nil, type: String, account: String? = nil, licenseRef: String? = nil,
        portalHmac: String? = nil, state: String, issuedAt: AuditTime? = nil, expiresAt: AuditTime? = nil,
        lastServedAt: AuditTime? = nil, timesServed: Int = 0
    ) {
        self.hostKey = hostKey
        self.hostAsked = hostAsked
        self.type = type
        self.account = account
        self.licenseRef = licenseRef
        self.portalHmac = portalHmac
        self.state = state
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.lastServedAt = lastServedAt
        self.timesServed = timesServed
    }

    /// One JSON object, keys in a fixed order (docs/audit.md §Admin API).
    public var json: String {
        func s(_ v: String?) -> String { v.map { "\"\(jsonEscaped($0))\"" } ?? "null" }
        return "{\"host\":\(s(hostKey)),\"hostAsked\":\(s(hostAsked)),\"type\":\(s(type)),\"account\":\(s(account)),"
            + "\"licenseRef\":\(s(licenseRef)),\"portalHmac\":\(s(portalHmac)),\"state\":\(s(state)),"
            + "\"issuedAt\":\(s(issuedAt?.rfc3339)),\"expiresAt\":\(s(expiresAt?.rfc3339)),"
            + "\"lastServedAt\":\(s(lastServedAt?.rfc3339)),\"timesServed\":\(timesServed)}"
    }
}

/// Provides the license list for `GET /api/mirror/licenses` (the ledger belongs to licensing).
public protocol LicenseListing: Sendable {
    func licenses() async throws -> [LicenseSummary]
}

/// The admin HTTP routes, as a sub-router the main router asks first:
/// `GET /api/mirror/usage`, `/api/mirror/licenses`, `/api/mirror/audit?since=SEQ`, `/metrics`, `/dashboard`.
/// Every route needs `Authorization: Bearer ADMIN_TOKEN` (the dashboard also takes Basic with the token
/// as password, so a browser can ask for it), from an admin network when networks are configured.
public struct AdminRoutes: Sendable {
    public static let paths: Set<String> = [
        "/api/mirror/usage", "/api/mirror/licenses", "/api/mirror/audit", "/metrics", "/dashboard",
    ]

    public let access: AdminAccess
    public let metricsRequireAdmin: Bool
    public let auditDirectory: String
    public let metrics: MetricsRegistry
    public let licenses: (any LicenseListing)?
    public let clock: @Sendable () -> AuditTime
    /// Most audit lines one `/api/mirror/audit` answer carries (a client pages with `since`).
    public var maxAuditLines = 10_000

    public init(
        access: AdminAccess, metricsRequireAdmin: Bool = true, auditDirectory: String, metrics: MetricsRegistry,
        licenses: (any LicenseListing)? = nil, clock: @escaping @Sendable () -> AuditTime = AuditTime.now
    ) {
        self.access = access
        self.metricsRequireAdmin = metricsRequireAdmin
        self.auditDirectory = auditDirectory
        self.metrics = metrics
        self.licenses = licenses
        self.clock = clock
    }

    /// Answers a request for one of `paths`, or returns nil so the main router goes on.
    /// Runs on an event loop: checks and `/metrics` answer at once; file reads are deferred.
    public func handle(_ request: HTTPRequest, context: RequestContext) -> HandlerResult? {
        guard AdminRoutes.paths.contains(request.path) else { return nil }
        guard request.method == "GET" || request.method == "HEAD" else {
            var h = HTTPHeaders()
            h.add("Allow", "GET, HEAD")
            return .response(.text(405, "method \(request.method) not allowed on \(request.path)", headers: h))
        }
        if !(request.path == "/metrics" && !metricsRequireAdmin) {
            if let refusal = authorize(request, context: context) { return .response(refusal) }
        }
        let query = QueryParameters(request.query ?? "")
        switch request.path {
        case "/metrics":
            return .response(ok(metrics.exposition(), type: "text/plain; version=0.0.4; charset=utf-8"))
        case "/api/mirror/usage":
            return usage(query)
        case "/api/mirror/audit":
            return audit(query)
        case "/api/mirror/licenses":
            return listLicenses()
        default:
            return dashboard()
        }
    }

    /// Nil when the request may proceed, else the 401/403 answer.
    func authorize(_ request: HTTPRequest, context: RequestContext) -> Response? {
        if !access.networks.isEmpty {
            guard let addr = IPAddress(context.clientAddress), access.networks.contains(where: { $0.contains(addr) })
            else { return .text(403, "the admin API is not reachable from this address") }
        }
        guard let token = access.token else {
            return .text(403, "the admin API is disabled: no admin.token is configured")
        }
        var challenge = HTTPHeaders()
        challenge.add("WWW-Authenticate", "Bearer realm=\"seed-mirror admin\"")
        if request.path == "/dashboard" { challenge.add("WWW-Authenticate", "Basic realm=\"seed-mirror admin\", charset=\"UTF-8\"") }
        guard let presented = AdminRoutes.credential(request.headers["Authorization"]) else {
            return .text(401, "admin token required (Authorization: Bearer TOKEN)", headers: challenge)
        }
        guard constantTimeEquals(Array(presented.utf8), Array(token.utf8)) else {
            var h = HTTPHeaders()
            h.add("WWW-Authenticate", "Bearer realm=\"seed-mirror admin\", error=\"invalid_token\"")
            if request.path == "/dashboard" { h.add("WWW-Authenticate", "Basic realm=\"seed-mirror admin\", charset=\"UTF-8\"") }
            return .text(401, "the admin token is not valid", headers: h)
        }
        return nil
    }

    /// The token from `Bearer TOKEN`, or the password of `Basic base64(user:password)`.
    static func credential(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return nil }
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch parts[0].lowercased() {
        case "bearer": return value
        case "basic":
            guard let decoded = base64Decode(value), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            return String(decoding: decoded[(colon + 1)...], as: UTF8.self)
        default: return nil
        }
    }

    private func ok(_ body: String, type: String) -> Response {
        var h = HTTPHeaders()
        h.add("Content-Type", type)
        h.add("Cache-Control", "no-store")
        h.add("X-Content-Type-Options", "nosniff")
        return Response(status: 200, headers: h, body: .text(body))
    }

    private func usage(_ q: QueryParameters) -> HandlerResult {
        let parsed: (UsageQuery, String)
        switch AdminRoutes.usageQuery(since: q["since"], until: q["until"], by: q["by"], format: q["format"], now: clock()) {
        case .success(let p): parsed = p
        case .failure(let e): return .response(.text(400, e.message))
        }
        let dir = auditDirectory
        return .deferred {
            do {
                let records = try AuditFiles.records(directory: dir)
                let report = UsageReport.compute(records: records, query: parsed.0)
                switch parsed.1 {
                case "csv": return ok(report.csv(), type: "text/csv; charset=utf-8; header=present")
                case "table": return ok(report.table(), type: "text/plain; charset=utf-8")
                default: return ok(report.json() + "\n", type: "application/json")
                }
            } catch {
                return .text(500, "the audit log could not be read")
            }
        }
    }

    private func audit(_ q: QueryParameters) -> HandlerResult {
        let since: UInt64
        if let s = q["since"] {
            guard let v = UInt64(s) else { return .response(.text(400, "since must be a record sequence number")) }
            since = v
        } else {
            since = 0
        }
        var limit = maxAuditLines
        if let l = q["limit"] {
            guard let v = Int(l), v > 0 else { return .response(.text(400, "limit must be a positive integer")) }
            limit = min(v, maxAuditLines)
        }
        let dir = auditDirectory
        let max = limit
        return .deferred {
            do {
                let lines = try AuditFiles.lines(directory: dir, since: since, limit: max)
                return ok(lines.map { $0.1 + "\n" }.joined(), type: "application/x-ndjson")
            } catch {
                return .text(500, "the audit log could not be read")
            }
        }
    }

    private func listLicenses() -> HandlerResult {
        guard let licenses else { return .response(.text(503, "the license list is not available in this server")) }
        return .deferred {
            do {
                let list = try await licenses.licenses()
                return ok("[" + list.map(\.json).joined(separator: ",") + "]\n", type: "application/json")
            } catch {
                return .text(500, "the license list could not be read")
            }
        }
    }

    private func dashboard() -> HandlerResult {
        let dir = auditDirectory
        let now = clock()
        return .deferred {
            do {
                let html = Dashboard.render(records: try AuditFiles.records(directory: dir), now: now)
                var r = ok(html, type: "text/html; charset=utf-8")
                // The page needs nothing from anywhere: inline styles only.
                r.headers.add("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
                return r
            } catch {
                return .text(500, "the audit log could not be read")
            }
        }
    }

    struct QueryError: Error {
        var message: String
    }

    /// Parses the usage filters shared by the CLI and the API. A date-only `until` includes that whole day.
    public static func usageQuery(since: String?, until: String?, by: String?, format: String?, now: AuditTime)
        -> Result<(UsageQuery, String), ConfigError>
    {
        var q = UsageQuery(now: now)
        if let since {
            guard let t = AuditTime(parsing: since) else {
                return .failure(ConfigError("since: \"\(since)\" is not a date (YYYY-MM-DD) or RFC 3339 time"))
            }
            q.since = t
        }
        if let until {
            guard let t = AuditTime(parsing: until) else {
                return .failure(ConfigError("until: \"\(until)\" is not a date (YYYY-MM-DD) or RFC 3339 time"))
            }
            q.until = until.count == 10 ? t.adding(days: 1) : t
        }
        if let by {
            guard let g = UsageGrouping(rawValue: by) else {
                return .failure(ConfigError("by: expected one of \(UsageGrouping.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            q.groupBy = g
        }
        let f = format ?? "json"
        guard ["json", "csv", "table"].contains(f) else { return .failure(ConfigError("format: expected json, csv or table")) }
        return .success((q, f))
    }
}

/// Serves only `/metrics`, for the separate metrics listener (`metrics.listen`).
public struct MetricsOnlyHandler: HTTPHandler {
    public let routes: AdminRoutes
    public init(routes: AdminRoutes) { self.routes = routes }
    public func handle(_ request: HTTPRequest, context: RequestContext) -> HandlerResult {
        guard request.path == "/metrics" else { return .response(.text(404, "only /metrics is served here")) }
        return routes.handle(request, context: context) ?? .response(.text(404, "not found"))
    }
}

/// `application/x-www-form-urlencoded` query parameters; the first value of a name wins.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ query: String) {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = percentDecode(String(kv[0]))
            if values[k] == nil { values[k] = kv.count > 1 ? percentDecode(String(kv[1])) : "" }
        }
    }

    subscript(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }
}

func percentDecode(_ s: String) -> String {
    var out = [UInt8]()
    let b = Array(s.utf8)
    var i = 0
    while i < b.count {
        if b[i] == UInt8(ascii: "+") {
            out.append(0x20)
        } else if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
            out.append(v)
            i += 2
        } else {
            out.append(b[i])
        }
        i += 1
    }
    return String(decoding: out, as: UTF8.self)
}

func base64Decode(_ s: String) -> [UInt8]? {
    var table = [UInt8](repeating: 255, count: 256)
    for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = UInt8(i) }
    var out = [UInt8]()
    var acc: UInt32 = 0
    var bits = 0
    for c in s.utf8 {
        if c == UInt8(ascii: "=") { break }
        let v = table[Int(c)]
        if v == 255 { return nil }
        acc = acc << 6 | UInt32(v)
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
        }
    }
    return out
}
