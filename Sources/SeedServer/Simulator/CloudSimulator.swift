import Foundation
public import SeedCore
public import SeedHTTP
public import SeedHTTPServer
import SeedUpstream

/// Settings of the vendor cloud and portal simulator.
public struct SimulatorConfiguration: Sendable {
    /// Download tokens accepted on `GET /api/public/thor10` (`X-Token` or raw `Authorization`).
    public var tokens: Set<String> = ["sim-token"]
    /// Portal API keys accepted on the license-only route (`Authorization`).
    public var apiKeys: Set<String> = ["sim-api-key"]
    /// Licenses that may be issued in total; nil means unlimited. Exhausted: 409.
    public var quota: Int?
    /// A host re-asking within this time gets the same license bytes and costs no quota.
    public var licenseLifetime: Duration = .seconds(365 * 86_400)
    /// Uncompressed size of the program folder (default about 70 MB).
    public var packageBytes: Int = 70 * 1024 * 1024
    /// Seed for the deterministic package content.
    public var packageSeed: UInt64 = 1
    /// The package version served at start.
    public var packageVersion: Int = 1
    /// Time to first byte of every answer.
    public var latency: Duration = .zero
    /// Body throttle; nil means as fast as possible.
    public var bandwidthBytesPerSecond: Int?
    /// Size of each license file.
    public var licenseBytes: Int = 1024
    /// Send bodies with chunked transfer coding instead of `Content-Length` (honoured by `SimulatorServer`).
    public var chunkedTransfer: Bool = false
    /// Key of the host-name HMAC as hex (PROTOCOL.md §5).
    public var hostKeyHex: String = VendorAPI.portalHostKey

    public init() {}
}

/// Which simulator route a request hit.
public enum SimulatorRoute: String, Sendable, Codable, CaseIterable {
    case download, portal, control, other
}

/// A misbehaviour the simulator applies to upcoming requests.
public enum SimulatorFault: Sendable, Equatable {
    /// Answer with this status (a plain-text body) before anything is issued.
    case status(Int)
    /// Issue, then send half the body and reset the connection.
    case resetMidBody
    /// Issue, then send half the body and go silent for this long before closing.
    case stall(Duration)
    /// Issue, then answer 200 with random bytes that are not a ZIP or a license.
    case garbage
    /// Issue, then declare a longer `Content-Length` than the bytes sent and close early.
    case shortBody
    /// Answer 200 with the body `Error: HTTP-401` (the portal's in-body error), nothing issued.
    case errorBody401
    /// Issue, then hold the whole answer back this long (a client that times out first cannot know).
    case delayHead(Duration)
}

/// What the simulator has done since start or the last reset.
public struct SimulatorCounts: Sendable, Equatable, Codable {
    public var requests: [String: Int] = [:]
    /// Package ZIP answers started (one per 200 on the download route).
    public var packageTransfers: Int = 0
    /// Licenses newly issued (re-deliveries within the lifetime are not counted).
    public var licensesIssued: Int = 0
    /// Newly issued licenses per host: lowercase short name when the simulator has seen it (download route),
    /// else `hash:HASH` (portal route only). One host is one key whichever route it came by.
    public var issuedByHost: [String: Int] = [:]
    /// Licenses delivered again within their lifetime.
    public var licensesRedelivered: Int = 0
    public var quotaRemaining: Int?
    public var faultsApplied: Int = 0

    public init() {}

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}

/// The vendor cloud (`GET /api/public/thor10`) and portal (`POST /api/public/contracts/issue/...`) on the wire,
/// as an `HTTPHandler`, with quotas, per-host license lifetime, counts and fault injection.
///
/// Control routes: `GET /_sim/counts` (JSON), `POST /_sim/reset`, `POST /_sim/faults` (JSON, see
/// `injectFaults(json:)`), `POST /_sim/version?n=N` (publish package version N). Thread-safe.
public final class CloudSimulator: HTTPHandler, Sendable {
    struct License {
        var bytes: [UInt8]
        var issuedAt: ContinuousClock.Instant
        var comment: String?
    }

    struct PendingFault {
        var fault: SimulatorFault
        var route: SimulatorRoute?
    }

    struct State {
        var counts = SimulatorCounts()
        var issuedByHash: [String: Int] = [:]
        var licenses: [String: License] = [:]  // by host hash
        var names: [String: String] = [:]  // hash -> lowercase short name
        var serial = 0
        var quotaUsed = 0
        var faults: [PendingFault] = []
        var clockOffset: Duration = .zero
        var version: Int
        var packages: [Int: SimulatedPackage] = [:]
    }

    public let configuration: SimulatorConfiguration
    private let logger: Logger
    private let state: Lock<State>

    /// Builds the first package version at once (a few seconds for 70 MB in a debug build).
    public init(configuration: SimulatorConfiguration = SimulatorConfiguration(), logger: Logger = .discard) {
        self.configuration = configuration
        self.logger = logger
        var s = State(version: configuration.packageVersion)
        s.packages[configuration.packageVersion] = SimulatedPackage(
            seed: configuration.packageSeed, totalBytes: configuration.packageBytes,
            version: configuration.packageVersion)
        s.counts.quotaRemaining = configuration.quota
        state = Lock(s)
    }

    // MARK: Test and control API

    public var counts: SimulatorCounts {
        state.withLock { s in
            var c = s.counts
            for (hash, n) in s.issuedByHash { c.issuedByHost[s.names[hash] ?? "hash:\(hash)"] = n }
            return c
        }
    }

    /// Newly issued licenses for `host` (short name, any case; domain part ignored).
    public func issued(host: String) -> Int {
        let key = hostHash(shortName(host))
        return state.withLock { $0.issuedByHash[key] ?? 0 }
    }

    /// The live license of `host`, if one was issued.
    public func license(host: String) -> [UInt8]? {
        let key = hostHash(shortName(host))
        return state.withLock { $0.licenses[key]?.bytes }
    }

    /// The `X-Comment` sent with the request that issued `host`'s live license.
    public func comment(host: String) -> String? {
        let key = hostHash(shortName(host))
        return state.withLock { $0.licenses[key]?.comment }
    }

    /// Forgets licenses, counts, quota use and pending faults.
    public func reset() {
        state.withLock { s in
            s.counts = SimulatorCounts()
            s.issuedByHash = [:]
            s.counts.quotaRemaining = configuration.quota
            s.licenses = [:]
            s.names = [:]
            s.quotaUsed = 0
            s.faults = []
            s.clockOffset = .zero
        }
    }

    /// Applies `fault` to the next `count` requests (of `route`, or any simulated vendor route when nil).
    public func inject(_ fault: SimulatorFault, count: Int = 1, route: SimulatorRoute? = nil) {
        state.withLock { s in
            for _ in 0..<max(0, count) { s.faults.append(PendingFault(fault: fault, route: route)) }
        }
    }

    /// Parses `{"kind":"status","status":503,"count":2,"route":"download"}`, an array of such objects, or
    /// `{"faults":[...]}`. Kinds: status, reset, stall (`seconds`), garbage, shortBody, errorBody401,
    /// delayHead (`seconds`), clear.
    public func injectFaults(json: [UInt8]) throws(ConfigError) {
        guard let value = try? JSONSerialization.jsonObject(with: Data(json)) else {
            throw ConfigError("fault body is not JSON")
        }
        var list: [[String: Any]] = []
        if let a = value as? [[String: Any]] {
            list = a
        } else if let o = value as? [String: Any] {
            list = (o["faults"] as? [[String: Any]]) ?? [o]
        }
        var parsed: [(SimulatorFault?, Int, SimulatorRoute?)] = []
        for item in list {
            guard let kind = item["kind"] as? String else { throw ConfigError("fault without \"kind\"") }
            let count = (item["count"] as? Int) ?? 1
            var route: SimulatorRoute?
            if let r = item["route"] as? String {
                guard let known = SimulatorRoute(rawValue: r) else { throw ConfigError("unknown fault route \(r)") }
                route = known
            }
            let fault: SimulatorFault?
            switch kind {
            case "status": fault = .status((item["status"] as? Int) ?? 503)
            case "reset": fault = .resetMidBody
            case "stall": fault = .stall(.milliseconds(Int(((item["seconds"] as? Double) ?? 30) * 1000)))
            case "garbage": fault = .garbage
            case "shortBody": fault = .shortBody
            case "errorBody401": fault = .errorBody401
            case "delayHead": fault = .delayHead(.milliseconds(Int(((item["seconds"] as? Double) ?? 30) * 1000)))
            case "clear": fault = nil
            default: throw ConfigError("unknown fault kind \(kind)")
            }
            parsed.append((fault, count, route))
        }
        for (fault, count, route) in parsed {
            if let fault { inject(fault, count: count, route: route) } else { state.withLock { $0.faults = [] } }
        }
    }

    /// Publishes package version `version` (built now if new) for subsequent downloads.
    public func publish(version: Int) {
        let exists = state.withLock { $0.packages[version] != nil }
        let built =
            exists
            ? nil
            : SimulatedPackage(
                seed: configuration.packageSeed, totalBytes: configuration.packageBytes, version: version)
        state.withLock { s in
            if let built { s.packages[version] = built }
            s.version = version
        }
    }

    /// The package of `version` (built if needed), for tests that compare bytes.
    public func package(version: Int? = nil) -> SimulatedPackage {
        let v = version ?? state.withLock { $0.version }
        if let p = state.withLock({ $0.packages[v] }) { return p }
        let p = SimulatedPackage(seed: configuration.packageSeed, totalBytes: configuration.packageBytes, version: v)
        state.withLock { $0.packages[v] = p }
        return p
    }

    /// Moves the simulator's idea of now forward (license lifetime tests without sleeping).
    public func advanceClock(by d: Duration) { state.withLock { $0.clockOffset += d } }

    /// The HMAC host key the simulator uses for `shortHost`.
    public func hostHash(_ shortHost: String) -> String {
        VendorAPI.hostHash(shortHost: shortHost, keyHex: configuration.hostKeyHex)
    }

    // MARK: HTTPHandler

    public func handle(_ request: HTTPRequest, context: RequestContext) -> HandlerResult {
        let (response, extra) = answer(request)
        let latency = configuration.latency + extra
        if latency > .zero {
            return .deferred {
                try? await Task.sleep(for: latency)
                return response
            }
        }
        return .response(response)
    }

    /// Answers one request (no latency applied): the pure part of the handler, for in-process tests.
    public func respond(to request: HTTPRequest) -> Response { answer(request).0 }

    /// The response and any extra delay a `delayHead` fault asks for.
    private func answer(_ request: HTTPRequest) -> (Response, Duration) {
        let route = classify(request.path)
        state.withLock { $0.counts.requests[route.rawValue, default: 0] += 1 }
        var delay = Duration.zero
        let response: Response
        switch route {
        case .control: response = control(request)
        case .other: response = .text(404, "no such route: \(request.path)")
        case .download: response = download(request, delay: &delay)
        case .portal: response = portal(request, delay: &delay)
        }
        return (response, delay)
    }

    private func classify(_ path: String) -> SimulatorRoute {
        if path == "/api/public/thor10" { return .download }
        if path.hasPrefix("/api/public/contracts/issue/") { return .portal }
        if path.hasPrefix("/_sim/") { return .control }
        return .other
    }

    private func control(_ request: HTTPRequest) -> Response {
        var json = HTTPHeaders()
        json.add("Content-Type", "application/json")
        switch (request.method, request.path) {
        case ("GET", "/_sim/counts"):
            return Response(status: 200, headers: json, body: .text(counts.json()))
        case ("POST", "/_sim/reset"):
            reset()
            return .text(200, "reset")
        case ("POST", "/_sim/faults"):
            do throws(ConfigError) {
                try injectFaults(json: request.body)
            } catch {
                return .text(400, "\(error)")
            }
            return .text(200, "faults queued")
        case ("POST", "/_sim/version"):
            guard let q = request.query, let n = queryValue(q, "n").flatMap({ Int($0) }), n > 0 else {
                return .text(400, "version needs ?n=N")
            }
            publish(version: n)
            return .text(200, "version \(n)")
        default:
            return .text(404, "no such control route: \(request.method) \(request.path)")
        }
    }

    private func takeFault(_ route: SimulatorRoute) -> SimulatorFault? {
        state.withLock { s in
            guard let i = s.faults.firstIndex(where: { $0.route == nil || $0.route == route }) else { return nil }
            s.counts.faultsApplied += 1
            return s.faults.remove(at: i).fault
        }
    }

    private func download(_ request: HTTPRequest, delay: inout Duration) -> Response {
        // Only GET: a HEAD must not spend a license.
        guard request.method == "GET" else { return .text(405, "use GET") }
        let h = request.headers
        let token = h["X-Token"] ?? h["Authorization"]
        guard let token, !token.isEmpty else { return .text(401, "download token missing") }
        guard configuration.tokens.contains(token) else { return .text(403, "download token invalid or expired") }
        guard let os = h["X-OS"], ["windows", "linux", "macos"].contains(os.lowercased()) else {
            return .text(400, "missing or unknown X-OS")
        }
        guard let type = h["X-Type"], ["workstation", "server"].contains(type.lowercased()) else {
            return .text(400, "missing or unknown X-Type")
        }
        guard let arch = h["X-Arch"], ["amd64", "x86", "arm64"].contains(arch.lowercased()) else {
            return .text(400, "missing or unknown X-Arch")
        }
        guard let rawHost = h["X-Hostname"], let host = validHostName(rawHost) else {
            return .text(400, "missing or invalid X-Hostname")
        }
        let fault = takeFault(.download)
        if let fault, let early = earlyFaultResponse(fault) { return early }
        if case .delayHead(let d) = fault { delay = d }
        let hash = hostHash(host)
        let outcome = obtainLicense(hash: hash, name: host, type: type.lowercased(), comment: h["X-Comment"])
        guard case .license(let license) = outcome else { return .text(409, "license pool exhausted (quota limit)") }
        let (package, transfers) = state.withLock { s -> (SimulatedPackage, Int) in
            s.counts.packageTransfers += 1
            return (s.packages[s.version]!, s.counts.packageTransfers)
        }
        logger.debug("simulator package transfer", [("host.name", host), ("sim.transfers", String(transfers))])
        let suffix = package.zipSuffix(licenseName: "\(host).lic", license: license)
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/zip")
        headers.add("Content-Disposition", "attachment; filename=\"thor-package.zip\"")
        return deliver(pieces: [package.prefix, suffix], headers: headers, fault: fault)
    }

    private func portal(_ request: HTTPRequest, delay: inout Duration) -> Response {
        guard request.method == "POST" else { return .text(405, "use POST") }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true)
        // api public contracts issue CONTRACT TYPE HASH
        guard parts.count == 7 else { return .text(400, "expected /api/public/contracts/issue/CONTRACT/TYPE/HASH") }
        let type = String(parts[5]).lowercased()
        let hash = String(parts[6])
        guard let key = request.headers["Authorization"], !key.isEmpty else { return .text(401, "API key missing") }
        guard configuration.apiKeys.contains(key) else { return .text(401, "API key invalid") }
        guard ["server", "client", "workstation"].contains(type) else { return .text(400, "unknown license type") }
        guard hash.count == 27, hash.utf8.allSatisfy(isBase64URL) else { return .text(400, "malformed host hash") }
        guard let q = request.query, queryValue(q, "download") == "1" else {
            return .text(400, "only ?download=1 is simulated")
        }
        let fault = takeFault(.portal)
        if let fault, let early = earlyFaultResponse(fault) { return early }
        if case .delayHead(let d) = fault { delay = d }
        let outcome = obtainLicense(
            hash: hash, name: nil, type: type == "client" ? "workstation" : type, comment: nil)
        guard case .license(let license) = outcome else { return .text(409, "license pool exhausted (quota limit)") }
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/octet-stream")
        return deliver(pieces: [license], headers: headers, fault: fault)
    }

    private func earlyFaultResponse(_ fault: SimulatorFault) -> Response? {
        switch fault {
        case .status(let code):
            var headers = HTTPHeaders()
            if code == 429 || code == 503 { headers.add("Retry-After", "1") }
            return .text(code, "simulated failure \(code)", headers: headers)
        case .errorBody401: return Response(status: 200, body: .text("Error: HTTP-401"))
        case .resetMidBody, .stall, .garbage, .shortBody, .delayHead: return nil
        }
    }

    enum Outcome {
        case license([UInt8])
        case quotaExhausted
    }

    private func obtainLicense(hash: String, name: String?, type: String, comment: String?) -> Outcome {
        state.withLock { s in
            if let name { s.names[hash] = name }
            let now = ContinuousClock.now + s.clockOffset
            if let existing = s.licenses[hash], now - existing.issuedAt < configuration.licenseLifetime {
                s.counts.licensesRedelivered += 1
                return .license(existing.bytes)
            }
            if let quota = configuration.quota, s.quotaUsed >= quota { return .quotaExhausted }
            s.quotaUsed += 1
            s.serial += 1
            let bytes = makeLicense(hash: hash, name: s.names[hash], type: type, serial: s.serial)
            s.licenses[hash] = License(bytes: bytes, issuedAt: now, comment: comment)
            s.counts.licensesIssued += 1
            s.issuedByHash[hash, default: 0] += 1
            if let quota = configuration.quota { s.counts.quotaRemaining = quota - s.quotaUsed }
            return .license(bytes)
        }
    }

    /// A header line naming hash, host, type and serial, then random bytes up to `licenseBytes`.
    private func makeLicense(hash: String, name: String?, type: String, serial: Int) -> [UInt8] {
        let header = Array(
            "THOR-SIM-LICENSE hash=\(hash) host=\(name ?? "-") type=\(type) serial=\(serial)\n".utf8)
        var bytes = header
        var rng = SystemRandomNumberGenerator()
        while bytes.count < max(configuration.licenseBytes, header.count + 16) {
            bytes.append(UInt8.random(in: 0...255, using: &rng))
        }
        return bytes
    }

    private func deliver(pieces: [[UInt8]], headers: HTTPHeaders, fault: SimulatorFault?) -> Response {
        let total = pieces.reduce(0) { $0 + $1.count }
        var headers = headers
        if configuration.chunkedTransfer { headers.add("Transfer-Encoding", "chunked") }
        var plan = SimulatorBodyStream.Plan()
        plan.bytesPerSecond = configuration.bandwidthBytesPerSecond
        var pieces = pieces
        var declared = UInt64(total)
        switch fault {
        case .resetMidBody: plan.cut = (UInt64(total / 2), .fail)
        case .stall(let d): plan.cut = (UInt64(total / 2), .stall(d))
        case .shortBody:
            plan.cut = (UInt64(total / 2), .end)
            declared = UInt64(total) + 1024
        case .garbage:
            var rng = SystemRandomNumberGenerator()
            pieces = [(0..<max(total, 2048)).map { _ in UInt8.random(in: 0...255, using: &rng) }]
            pieces[0][0] = UInt8(ascii: "X")
            declared = UInt64(pieces[0].count)
        case .status, .errorBody401, .delayHead, nil: break
        }
        if plan.bytesPerSecond == nil && plan.cut == nil {
            return Response(status: 200, headers: headers, body: ResponseBody(pieces.map { .bytes($0) }))
        }
        let stream = SimulatorBodyStream(pieces: pieces, plan: plan)
        return Response(status: 200, headers: headers, body: ResponseBody([.stream(stream, length: declared)]))
    }
}

func queryValue(_ query: String, _ name: String) -> String? {
    for pair in query.split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1)
        if kv.first.map(String.init) == name { return kv.count > 1 ? String(kv[1]) : "" }
    }
    return nil
}

private func isBase64URL(_ b: UInt8) -> Bool {
    (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 45 || b == 95
}

/// The lowercase short name (domain part dropped).
func shortName(_ host: String) -> String {
    String(host.split(separator: ".", maxSplits: 1).first ?? "").lowercased()
}

/// A lowercase short host name when `raw` is a plausible host name (letters, digits, `-`, `_`; ≤ 63).
func validHostName(_ raw: String) -> String? {
    let short = shortName(raw.trimmingCharacters(in: .whitespaces))
    guard !short.isEmpty, short.utf8.count <= 63,
        short.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 })
    else { return nil }
    return short
}
