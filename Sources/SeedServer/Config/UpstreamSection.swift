import Foundation

/// A secret read at load time. Its description never shows the value, so logging a section is safe.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself: hand it to the code that needs it, never to a log.
    public let value: String
    /// Where it came from (for messages: an environment variable name or a file path).
    public let source: SecretSource

    public init(value: String, source: SecretSource) {
        self.value = value
        self.source = source
    }

    public var description: String {
        switch source {
        case .literal: "<secret>"
        case .environment(let name): "<secret from $\(name)>"
        case .file(let path): "<secret from \(path)>"
        }
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["secret": description]) }

    /// True when the value is written in the configuration file itself.
    public var isLiteral: Bool {
        if case .literal = source { return true }
        return false
    }

    /// Reads `key` of `o` as a secret and resolves it now; errors name the key, the variable or the
    /// file, never the value.
    static func read(_ o: ConfigObject, _ key: String, baseDir: String) throws(ConfigError) -> Secret? {
        guard let source = try o.secret(key, baseDir: baseDir) else { return nil }
        let path = o.dottedPath(key)
        let value = try source.resolve(key: path)
        guard !value.isEmpty else { throw ConfigError("config key \(path): the secret is empty") }
        return Secret(value: value, source: source)
    }
}

/// An https base URL split into the parts a client needs.
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String
    /// Without brackets for IPv6.
    public var host: String
    public var port: UInt16
    /// Path prefix without a trailing slash ("" for the root).
    public var basePath: String

    /// Parses `https://host[:port][/path]`; nil for anything else, including plain http, user info,
    /// query or fragment (the upstream client speaks TLS only).
    public init?(parsing s: String) {
        guard let c = URLComponents(string: s), let scheme = c.scheme?.lowercased(),
            scheme == "https",
            var host = c.host, !host.isEmpty, c.user == nil, c.password == nil, c.query == nil, c.fragment == nil
        else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = c.port ?? (scheme == "https" ? 443 : 80)
        guard port > 0 && port <= 65535 else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = UInt16(port)
        var path = c.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort: UInt16 = scheme == "https" ? 443 : 80
        return "\(scheme)://\(h)\(port == defaultPort ? "" : ":\(port)")\(basePath)"
    }
}

/// A forward proxy reached with HTTP CONNECT: `http://[user:pass@]host:port`.
public struct ProxySetting: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var username: String?
    /// Sent as Proxy-Authorization: Basic; never logged.
    public var password: Secret?

    /// Parses `http://[user:pass@]host:port[/]`; user and password may be percent-encoded. The error
    /// never repeats the text, which may hold a password.
    public init(parsing text: String, key: String) throws(ConfigError) {
        let bad = ConfigError("config key \(key): expected http://[user:pass@]host:port")
        guard text.lowercased().hasPrefix("http://") else { throw bad }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else { throw bad }
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let colon = info.firstIndex(of: ":")
            let user = String(colon.map { info[..<$0] } ?? info)
            guard let u = user.removingPercentEncoding, !u.isEmpty else { throw bad }
            username = u
            if let colon {
                guard let p = String(info[info.index(after: colon)...]).removingPercentEncoding else { throw bad }
                password = Secret(value: p, source: .literal(""))
            }
        }
        guard let address = ListenAddressLike(parsing: String(rest)), address.port != 0 else { throw bad }
        host = address.host
        port = address.port
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "http://\(username.map { "\($0):<secret>@" } ?? "")\(h):\(port)"
    }
}

/// `HOST:PORT` / `[IPv6]:PORT`, the same grammar as listen addresses.
private struct ListenAddressLike {
    var host: String
    var port: UInt16
    init?(parsing s: String) {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()), !host.isEmpty else { return nil }
            self.host = host
            self.port = p
        } else {
            guard let colon = s.lastIndex(of: ":"), let p = UInt16(s[s.index(after: colon)...]) else { return nil }
            let host = String(s[..<colon])
            guard !host.isEmpty, !host.contains(":") else { return nil }
            self.host = host
            self.port = p
        }
    }
}

/// Whether the mirror may call the vendor cloud (or a central mirror) at all.
public enum UpstreamMode: String, Sendable, Equatable {
    case online
    /// No upstream calls: packages come from import bundles, licenses from imports or the pool.
    case offline
}

/// `upstream`: the vendor cloud / portal (or a central SeedMirror) this mirror fills its cache from.
public struct UpstreamSection: Sendable, Equatable {
    public var mode: UpstreamMode
    /// Package + license downloads (`GET /api/public/thor10`).
    public var url: HTTPEndpoint
    /// License-only calls (`POST /api/public/contracts/issue/...`).
    public var portalURL: HTTPEndpoint
    /// The contract's download token (X-Token / Authorization). Required when online.
    public var token: Secret?
    /// Portal API key for license-only calls; without it a new host costs a package download.
    public var portalAPIKey: Secret?
    /// PEM bundle to verify upstream with; nil: the system trust store.
    public var caFile: String?
    public var proxy: ProxySetting?
    /// The contract name licenses are accounted under (ledger key).
    public var account: String
    public var connectTimeout: Duration
    /// A response that makes no progress for this long is abandoned.
    public var readTimeout: Duration
    /// Largest upstream response body accepted.
    public var maxBodyBytes: Int
    /// How long a cached package is served before the mirror fetches a fresh one; nil: never.
    public var refreshInterval: Duration?

    public static let defaultURL = "https://cloud.nextron-systems.com"
    public static let defaultPortalURL = "https://portal.nextron-systems.com"

    /// Reads `upstream` from the root object; secrets are resolved now.
    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        let o = try root.object("upstream") ?? ConfigObject([:], path: "upstream")
        let modeText = try o.string("mode", default: UpstreamMode.offline.rawValue)
        guard let m = UpstreamMode(rawValue: modeText) else {
            throw ConfigError("config key upstream.mode: \"\(modeText)\" is not online or offline")
        }
        mode = m
        url = try endpoint(o, "url", default: Self.defaultURL)
        portalURL = try endpoint(o, "portalUrl", default: Self.defaultPortalURL)
        token = try Secret.read(o, "token", baseDir: baseDir)
        portalAPIKey = try Secret.read(o, "portalApiKey", baseDir: baseDir)
        caFile = try o.string("caFile").map { resolvePath($0, base: baseDir) }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ConfigError("config key upstream.caFile: cannot read \(caFile)")
        }
        proxy = try o.string("proxy").map { (p: String) throws(ConfigError) in
            try ProxySetting(parsing: p, key: "upstream.proxy")
        }
        account = try configNonEmpty(o, "account", default: "default")
        connectTimeout = try configSeconds(o, "connectTimeoutSeconds", default: .seconds(10))
        readTimeout = try configSeconds(o, "readTimeoutSeconds", default: .seconds(60))
        maxBodyBytes = try o.int("maxBodyBytes", default: 1 << 30, min: 1024, max: Int(Int32.max) * 8)
        let hours = try o.int("refreshHours", default: 12, min: 0, max: 24 * 365)
        refreshInterval = hours == 0 ? nil : .seconds(hours * 3600)
        // Finer than hours (tests, benchmarks, short-lived staging mirrors); when given it replaces refreshHours.
        if o.has("refreshSeconds") {
            guard !o.has("refreshHours") else {
                throw ConfigError("config key upstream.refreshSeconds: give refreshHours or refreshSeconds, not both")
            }
            let secs = try o.int("refreshSeconds", default: 0, min: 0, max: 24 * 365 * 3600)
            refreshInterval = secs == 0 ? nil : .seconds(secs)
        }
        try o.finish()
        if mode == .online && token == nil {
            throw ConfigError("config key upstream.token: required when upstream.mode is online")
        }
    }
}

private func endpoint(_ o: ConfigObject, _ key: String, default d: String) throws(ConfigError) -> HTTPEndpoint {
    let text = try o.string(key, default: d)
    guard let e = HTTPEndpoint(parsing: text) else {
        throw ConfigError("config key \(o.dottedPath(key)): \"\(text)\" is not an https:// URL")
    }
    return e
}
