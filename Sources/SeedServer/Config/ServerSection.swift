public import SeedCore
public import SeedHTTP
public import SeedHTTPServer
public import SeedTLS

/// `server`: connection limits, request limits and timeouts of the HTTPS front end.
public struct ServerSection: Sendable, Equatable {
    public var maxHeadBytes: Int
    public var maxHeaderCount: Int
    /// Largest request body accepted (license requests are small forms).
    public var maxBodyBytes: Int
    public var maxConnections: Int
    /// 0: one loop per core.
    public var eventLoops: Int
    public var sendBufferBytes: Int
    public var timeouts: ServerTimeouts
    /// How long `serve` lets running downloads finish after SIGTERM before closing them.
    public var shutdownGrace: Duration

    public init() {
        let limits = HTTPLimits()
        let server = HTTPServerConfiguration(listeners: [])
        maxHeadBytes = limits.maxHeadBytes
        maxHeaderCount = limits.maxHeaderCount
        maxBodyBytes = limits.maxBodyBytes
        maxConnections = server.maxConnections
        eventLoops = server.eventLoops
        sendBufferBytes = server.sendBufferBytes
        timeouts = ServerTimeouts()
        shutdownGrace = .seconds(30)
    }

    /// Reads `server` from the root object (absent: all defaults).
    public init(root: ConfigObject) throws(ConfigError) {
        self.init()
        guard let o = try root.object("server") else { return }
        maxHeadBytes = try o.int("maxHeadBytes", default: maxHeadBytes, min: 1024, max: 1 << 20)
        maxHeaderCount = try o.int("maxHeaderCount", default: maxHeaderCount, min: 8, max: 10_000)
        maxBodyBytes = try o.int("maxBodyBytes", default: maxBodyBytes, min: 0, max: 1 << 30)
        maxConnections = try o.int("maxConnections", default: maxConnections, min: 1, max: 1_000_000)
        eventLoops = try o.int("eventLoops", default: eventLoops, min: 0, max: 256)
        sendBufferBytes = try o.int("sendBufferBytes", default: sendBufferBytes, min: 4096, max: 64 << 20)
        shutdownGrace = try configSeconds(o, "shutdownGraceSeconds", default: shutdownGrace, min: 0)
        if let t = try o.object("timeouts") {
            timeouts.handshake = try configSeconds(t, "handshakeSeconds", default: timeouts.handshake)
            timeouts.requestHead = try configSeconds(t, "requestHeadSeconds", default: timeouts.requestHead)
            timeouts.idle = try configSeconds(t, "idleSeconds", default: timeouts.idle)
            timeouts.writeStall = try configSeconds(t, "writeStallSeconds", default: timeouts.writeStall)
            timeouts.requestBody = try configSeconds(t, "requestBodySeconds", default: timeouts.requestBody)
            try t.finish()
        }
        try o.finish()
    }

    /// The HTTP parser limits these settings give.
    public var limits: HTTPLimits {
        var l = HTTPLimits()
        l.maxHeadBytes = maxHeadBytes
        l.maxHeaderCount = maxHeaderCount
        l.maxBodyBytes = maxBodyBytes
        return l
    }
}

/// `tls`: certificate/key pairs and cipher lists.
public struct TLSSection: Sendable, Equatable {
    /// Absolute paths, RSA and ECDSA by default (`certs/server-rsa.*`, `certs/server-ecdsa.*`).
    public var certificates: [CertificateKeyPair]
    public var cipherList: String
    public var cipherSuites: String
    public var sessionCacheSize: Int
    public var sessionTickets: Bool

    /// Reads `tls`; certificate paths default to the pairs `init` writes into `certsDir`.
    public init(root: ConfigObject, baseDir: String, certsDir: String) throws(ConfigError) {
        let defaults = TLSServerConfiguration(certificates: [])
        certificates = [
            CertificateKeyPair(
                certificateChainPath: certsDir + "/server-rsa.pem", privateKeyPath: certsDir + "/server-rsa.key"),
            CertificateKeyPair(
                certificateChainPath: certsDir + "/server-ecdsa.pem", privateKeyPath: certsDir + "/server-ecdsa.key"),
        ]
        cipherList = defaults.cipherList
        cipherSuites = defaults.cipherSuites
        sessionCacheSize = defaults.sessionCacheSize
        sessionTickets = defaults.sessionTickets
        guard let o = try root.object("tls") else { return }
        if let list = try o.objectArray("certificates") {
            guard !list.isEmpty else { throw ConfigError("config key tls.certificates: needs at least one pair") }
            certificates = []
            for pair in list {
                guard let cert = try pair.string("certificate"), let key = try pair.string("key") else {
                    throw ConfigError("config key \(pair.path): needs both \"certificate\" and \"key\"")
                }
                try pair.finish()
                certificates.append(
                    CertificateKeyPair(
                        certificateChainPath: resolvePath(cert, base: baseDir),
                        privateKeyPath: resolvePath(key, base: baseDir)))
            }
        }
        cipherList = try configNonEmpty(o, "cipherList", default: cipherList)
        cipherSuites = try configNonEmpty(o, "cipherSuites", default: cipherSuites)
        sessionCacheSize = try o.int("sessionCacheSize", default: sessionCacheSize, min: 0, max: 10_000_000)
        sessionTickets = try o.bool("sessionTickets", default: sessionTickets)
        try o.finish()
    }

    /// The plain configuration SeedTLS takes.
    public var serverConfiguration: TLSServerConfiguration {
        var c = TLSServerConfiguration(certificates: certificates)
        c.cipherList = cipherList
        c.cipherSuites = cipherSuites
        c.sessionCacheSize = sessionCacheSize
        c.sessionTickets = sessionTickets
        return c
    }
}

/// Where access-log lines go.
public enum AccessLogDestination: Sendable, Equatable {
    case stderr
    case off
    /// An absolute path; lines are appended.
    case file(String)
}

/// `log`: level of the operational log and where the access log goes.
public struct LogSection: Sendable, Equatable {
    public var level: LogLevel = .info
    public var accessLog: AccessLogDestination = .stderr

    public init() {}

    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        guard let o = try root.object("log") else { return }
        if let name = try o.string("level") {
            guard let l = LogLevel(name: name) else {
                throw ConfigError("config key log.level: \"\(name)\" is not one of debug, info, notice, warning, error")
            }
            level = l
        }
        switch try o.string("accessLog") {
        case nil, "stderr": accessLog = .stderr
        case "off": accessLog = .off
        case let p?:
            guard !p.isEmpty else { throw ConfigError("config key log.accessLog: empty path") }
            accessLog = .file(resolvePath(p, base: baseDir))
        }
        try o.finish()
    }
}

/// `paths`: where the cache (blobs, manifests, ledger, audit log) and the certificates live.
public struct PathsSection: Sendable, Equatable {
    /// Absolute.
    public var cacheDir: String
    /// Absolute.
    public var certsDir: String

    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        cacheDir = resolvePath("cache", base: baseDir)
        certsDir = resolvePath("certs", base: baseDir)
        guard let o = try root.object("paths") else { return }
        cacheDir = resolvePath(try configNonEmpty(o, "cacheDir", default: "cache"), base: baseDir)
        certsDir = resolvePath(try configNonEmpty(o, "certsDir", default: "certs"), base: baseDir)
        try o.finish()
    }
}

// MARK: - Shared readers

/// Reads a number of seconds (fractions allowed) as a Duration.
func configSeconds(_ o: ConfigObject, _ key: String, default d: Duration, min: Double = 0.001) throws(ConfigError)
    -> Duration
{
    let (whole, atto) = d.components
    let def = Double(whole) + Double(atto) / 1e18
    let s = try o.double(key, default: def, min: min)
    guard s <= 86_400 * 365 else { throw ConfigError("config key \(o.dottedPath(key)): \(s) seconds is too long") }
    return .milliseconds(Int64((s * 1000).rounded()))
}

func configNonEmpty(_ o: ConfigObject, _ key: String, default d: String) throws(ConfigError) -> String {
    guard let s = try o.string(key) else { return d }
    guard !s.isEmpty else { throw ConfigError("config key \(o.dottedPath(key)): must not be empty") }
    return s
}

extension ConfigObject {
    /// The dotted path of `key` inside this object, as errors name it.
    func dottedPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}
