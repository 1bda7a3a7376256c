import Foundation
public import SeedCore
public import SeedServer
public import SeedStore
public import SeedUpstream
import SeedHTTP
import SeedZip

/// Options of `withRunningMirror`: a small simulated package, no latency, portal key given.
public struct MirrorTestOptions: Sendable {
    public var simulator: SimulatorConfiguration
    public var portalAPIKey = true
    public var proxyURL: String?
    public var upstreamTokenOverride: String?
    public var extraClients: [ClientToken] = []
    public var accessLog = false
    /// Turns the desk's rate limits and breaker off (the default; tests of those limits set false).
    public var unlimitedRates = true
    /// Edits the mirror's configuration root before it is loaded (see `MirrorLabOptions.configure`).
    public var configure: (@Sendable (inout [String: Any]) -> Void)?
    public var logger: Logger = .discard

    public init(packageBytes: Int = 512 * 1024, latency: Duration = .zero) {
        simulator = SimulatorConfiguration()
        simulator.packageBytes = packageBytes
        simulator.latency = latency
    }

    public static var testDefaults: MirrorTestOptions { MirrorTestOptions() }
}

/// A running mirror for one test: its folder, the simulator behind it and a client that trusts its CA.
public struct RunningMirror: Sendable {
    public let lab: MirrorLab
    public let client: UpstreamClient
    public var port: UInt16 { lab.port }
    public var clientToken: String { lab.clientToken }
    public var simulator: CloudSimulator { lab.simulator }
    public var directory: String { lab.directory }
    let stopFlag = StopFlag()
    /// Stops the mirror and the simulator now (to read its files at rest); the harness then skips its stop.
    public func stop() async {
        if stopFlag.claim() { await lab.stop() }
    }
    /// `init`'s admin token (config/admin.token).
    public var adminToken: String {
        ((try? String(contentsOfFile: lab.directory + "/config/admin.token", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    /// A GET to an admin path with `Authorization: Bearer TOKEN` (none when `token` is nil).
    public func admin(_ target: String, token: String?) async throws -> SeedAnswer {
        var h = HTTPHeaders()
        if let token { h.add("Authorization", "Bearer \(token)") }
        return try await send(
            UpstreamRequest(method: "GET", url: UpstreamURL(host: "127.0.0.1", port: port, target: target), headers: h))
    }
}

/// Temp folder, `init`, cloud simulator on loopback, the mirror on 127.0.0.1 port 0 online against it;
/// everything stopped and removed when `body` returns or throws.
public func withRunningMirror<T: Sendable>(
    _ options: MirrorTestOptions = .testDefaults, _ body: (RunningMirror) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { (dir: String) async throws -> T in
        var lab = MirrorLabOptions(directory: dir + "/mirror", simulator: options.simulator)
        lab.portalAPIKey = options.portalAPIKey
        lab.proxyURL = options.proxyURL
        lab.upstreamTokenOverride = options.upstreamTokenOverride
        lab.extraClients = options.extraClients
        lab.unlimitedRates = options.unlimitedRates
        lab.configure = options.configure
        lab.logger = options.logger
        if options.accessLog { lab.accessLogPath = dir + "/mirror/access.log" }
        let running = try MirrorLab(lab)
        let mirror = RunningMirror(lab: running, client: try running.makeClient())
        do {
            let r = try await body(mirror)
            await mirror.stop()
            return r
        } catch {
            await mirror.stop()
            throw error
        }
    }
}

/// True for the first caller of `claim` only.
final class StopFlag: Sendable {
    private let claimed = Lock(false)
    func claim() -> Bool {
        claimed.withLock { c in
            defer { c = true }
            return !c
        }
    }
}

/// A whole answer.
public struct SeedAnswer: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public func header(_ n: String) -> String? { headers.first { $0.name.lowercased() == n.lowercased() }?.value }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

extension RunningMirror {
    public func send(_ request: UpstreamRequest) async throws -> SeedAnswer {
        let r = try await client.send(request)
        return SeedAnswer(status: r.status, headers: r.headers.fields, body: r.body)
    }
}

/// The package key every seed route asks for on Windows x64.
public enum PackageKeyForTests {
    public static let windowsAMD64 = PackageKey(product: "thor10", os: "windows", arch: "amd64", variant: "full")
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}
