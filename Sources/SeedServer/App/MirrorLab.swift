import Foundation
public import SeedCore
import SeedHTTP
public import SeedHTTPServer
import SeedTLS
public import SeedUpstream

/// A complete mirror in a scratch folder, online against an in-process cloud simulator: what `demo`
/// runs and what the integration tests' `withRunningMirror` wraps. Everything on loopback.
public struct MirrorLabOptions: Sendable {
    /// The folder to build in (created; `init` writes config/, certs/, cache/ there).
    public var directory: String
    public var simulator: SimulatorConfiguration
    /// Where the mirror listens; port 0 picks a free port.
    public var listen: [ListenAddress] = [ListenAddress(host: "127.0.0.1", port: 0)]
    /// Give the mirror the simulator's portal API key (license-only calls); false: every new host costs
    /// a package download.
    public var portalAPIKey: Bool = true
    /// `http://[user:pass@]host:port` of a CONNECT proxy between mirror and simulator.
    public var proxyURL: String?
    /// Access-log file; nil: off.
    public var accessLogPath: String?
    /// More clients besides `init`'s one (name, token, revoked).
    public var extraClients: [ClientToken] = []
    /// Replaces the simulator's download token in the mirror's configuration (to test a rejected token).
    public var upstreamTokenOverride: String?
    public var refreshHours: Int = 12
    /// Turns the desk's rate limits and issuance breaker off (load tests from one loopback address).
    public var unlimitedRates = false
    public var logger: Logger = .discard

    public init(directory: String, simulator: SimulatorConfiguration = SimulatorConfiguration()) {
        self.directory = directory
        self.simulator = simulator
    }
}

public final class MirrorLab: Sendable {
    public let directory: String
    public let configPath: String
    public let caFile: String
    /// The token seeds send (`init`'s client token).
    public let clientToken: String
    public let simulator: CloudSimulator
    public let simulatorServer: SimulatorServer
    public let simulatorAddress: ListenAddress
    public let app: MirrorApp
    public let addresses: [ListenAddress]

    /// Runs `init`, starts the simulator and the mirror. Throws with one line naming what failed.
    public init(_ options: MirrorLabOptions) throws {
        let dir = options.directory
        let initResult = try InitCommand.run(dir: dir, names: ["localhost", "127.0.0.1", "::1"], force: true)
        directory = dir
        configPath = initResult.configPath
        caFile = initResult.pki.caCertificatePath
        clientToken = try String(contentsOfFile: initResult.clientTokenPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        simulator = CloudSimulator(configuration: options.simulator, logger: options.logger)
        simulatorServer = try SimulatorServer(handler: simulator, certificate: initResult.pki.ecdsa, logger: options.logger)
        simulatorAddress = try simulatorServer.start(listen: ListenAddress(host: "127.0.0.1", port: 0))

        let upstreamBase = "https://127.0.0.1:\(simulatorAddress.port)"
        var root = try JSONSerialization.jsonObject(with: Data(InitCommand.defaultConfigText().utf8)) as! [String: Any]
        root["listen"] = options.listen.map(\.description)
        var upstream: [String: Any] = [
            "mode": "online", "url": upstreamBase, "portalUrl": upstreamBase,
            "token": options.upstreamTokenOverride ?? options.simulator.tokens.sorted().first ?? "sim-token",
            "caFile": "certs/ca.pem", "account": "lab", "connectTimeoutSeconds": 5, "readTimeoutSeconds": 30,
            "refreshHours": options.refreshHours,
        ]
        if options.portalAPIKey { upstream["portalApiKey"] = options.simulator.apiKeys.sorted().first ?? "sim-api-key" }
        if let p = options.proxyURL { upstream["proxy"] = p }
        root["upstream"] = upstream
        if options.unlimitedRates {
            root["rateLimits"] = [
                "requestsPerHost": ["count": 0], "newHostsPerAddress": ["count": 0],
                "newHostsPerNetwork": ["count": 0], "breakerPerHour": 0, "breakerPerDay": 0,
            ]
        }
        var log = root["log"] as? [String: Any] ?? [:]
        log["accessLog"] = options.accessLogPath ?? "off"
        root["log"] = log
        var clients = root["clients"] as? [[String: Any]] ?? []
        for c in options.extraClients { clients.append(["name": c.name, "token": c.secret, "revoked": c.revoked]) }
        root["clients"] = clients
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        // Literal secrets are in the file: keep it private (load warns otherwise).
        try data.write(to: URL(fileURLWithPath: configPath))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: configPath)

        let config = try MirrorConfig.load(path: configPath)
        let access: (any AccessLogSink)? = try options.accessLogPath.map { try JSONLinesAccessLog(appendingTo: $0) }
        app = try MirrorApp(config: config, logger: options.logger, accessLog: access)
        addresses = try app.start()
    }

    /// The mirror's first address as a URL base for clients (`https://127.0.0.1:PORT`).
    public var port: UInt16 { addresses[0].port }

    /// An HTTPS client that trusts the lab's CA, as a seed that was given the mirror's CA would.
    public func makeClient(readTimeout: Duration = .seconds(60)) throws -> UpstreamClient {
        var c = UpstreamConfiguration(caFile: caFile)
        c.readTimeout = readTimeout
        c.maxBodyBytes = 512 * 1024 * 1024
        return try UpstreamClient(configuration: c, logger: .discard)
    }

    /// Stops the mirror (draining for `grace`), then the simulator.
    public func stop(grace: Duration = .seconds(2)) async {
        await app.shutdown(grace: grace)
        simulatorServer.stop()
    }
}

/// The requests a seed (or a license helper script) sends, built for a base URL.
public enum SeedCalls {
    public static func cloud(
        port: UInt16, host: String, type: String = "workstation", token: String?, os: String = "windows",
        arch: String = "amd64", comment: String? = nil, address: String = "127.0.0.1"
    ) -> UpstreamRequest {
        var h = HTTPHeaders()
        h.add("X-OS", os)
        h.add("X-Type", type)
        h.add("X-Arch", arch)
        if let token {
            h.add("X-Token", token)
            h.add("Authorization", token)
        }
        h.add("X-Hostname", host)
        if let comment { h.add("X-Comment", comment) }
        return UpstreamRequest(method: "GET", url: UpstreamURL(host: address, port: port, target: "/api/public/thor10"), headers: h)
    }

    public static func asgardV1(port: UInt16, host: String, type: String = "client", token: String?) -> UpstreamRequest {
        var q = "os=windows&type=\(type)&scanner=thor10%40latest&signatures=signatures&hostname=\(host)"
        if let token { q += "&token=\(token)" }
        return UpstreamRequest(method: "GET", url: UpstreamURL(host: "127.0.0.1", port: port, target: "/api/v1/downloads/thor?\(q)"))
    }

    public static func asgardV0(port: UInt16, host: String, type: String = "server", token: String?) -> UpstreamRequest {
        var h = HTTPHeaders()
        if let token { h.add("Authorization", token) }
        return UpstreamRequest(
            method: "GET",
            url: UpstreamURL(host: "127.0.0.1", port: port, target: "/api/v0/downloads/thor/thor10-win?hostname=\(host)&type=\(type)&iocs=%5B%22default%22%5D"),
            headers: h)
    }

    public static func licenseOnly(port: UInt16, hosts: [String], type: String = "server", token: String?, bare: Bool = false)
        -> UpstreamRequest
    {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/x-www-form-urlencoded")
        h.add("Expect", "100-continue")
        if bare { h.add("Accept", "application/octet-stream") }
        let target = token.map { "/api/v0/licensing/issue?token=\($0)" } ?? "/api/v0/licensing/issue"
        let body = hosts.map { "hostnames=\($0)" }.joined(separator: "&") + "&type=\(type)"
        return UpstreamRequest(
            method: "POST", url: UpstreamURL(host: "127.0.0.1", port: port, target: target), headers: h, body: Array(body.utf8))
    }
}
