import Foundation
public import SeedCore
public import SeedServer
public import SeedTLS
public import SeedUpstream

/// Runs a command and returns its exit status and combined output (for `openssl`, `unzip`, `python3`,
/// `mono`). A command that cannot be started gives status -1 and the reason as its output.
@discardableResult
public func runTool(_ path: String, _ arguments: [String], input: [UInt8]? = nil) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    do { try process.run() } catch { return (-1, "cannot run \(path): \(error)") }
    if let input {
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// A throwaway PKI minted with SeedTLS's `CertificateAuthority`: a CA and one ECDSA server certificate.
public struct SimulatorPKI: Sendable {
    public var caFile: String
    public var server: CertificateKeyPair

    /// Writes `ca.pem` and `server-rsa.pem`/`server-rsa.key` (the names `seed-cloud-sim --certs` reads;
    /// the key is ECDSA P-256 for speed) under `directory`. Names may be DNS names or IP addresses.
    public static func make(in directory: String, names: [String] = ["cloud.test", "localhost", "127.0.0.1"]) throws
        -> SimulatorPKI
    {
        let ca = try CertificateAuthority.createCA(commonName: "SeedMirror Test CA \(UUID().uuidString.prefix(8))")
        let leaf = try CertificateAuthority.issueServerCertificate(
            ca: ca, names: names, keyType: .ecdsaP256, validityDays: 2)
        let pair = CertificateKeyPair(
            certificateChainPath: directory + "/server-rsa.pem", privateKeyPath: directory + "/server-rsa.key")
        try CertificateAuthority.writeFileAtomically(directory + "/ca.pem", ca.certificatePEM, mode: 0o644)
        try CertificateAuthority.writeFileAtomically(pair.certificateChainPath, leaf.chainPEM, mode: 0o644)
        try CertificateAuthority.writeFileAtomically(pair.privateKeyPath, leaf.privateKeyPEM, mode: 0o600)
        return SimulatorPKI(caFile: directory + "/ca.pem", server: pair)
    }
}

/// A cloud simulator on loopback with a fresh PKI, plus an upstream client that trusts it.
public struct RunningSimulator: Sendable {
    public var simulator: CloudSimulator
    public var server: SimulatorServer
    public var pki: SimulatorPKI
    public var port: UInt16
    /// `https://cloud.test:PORT/` (cloud.test resolves to 127.0.0.1 through `clientConfiguration.resolve`).
    public var baseURL: UpstreamURL
    public var clientConfiguration: UpstreamConfiguration
    public var directory: String

    public func client(
        logger: Logger = .discard, _ adjust: (inout UpstreamConfiguration) -> Void = { _ in }
    ) throws -> UpstreamClient {
        var c = clientConfiguration
        adjust(&c)
        return try UpstreamClient(configuration: c, logger: logger)
    }

    /// A download request for `host` with the simulator's first token.
    public func download(host: String, type: String = "server", token: String? = nil) -> UpstreamRequest {
        VendorAPI.cloudDownload(
            base: baseURL, token: token ?? simulator.configuration.tokens.sorted()[0], host: host, type: type,
            os: "windows", arch: "amd64")
    }

    /// A portal license-only request for `host` (hashed the simulator's way) with its first API key.
    public func portal(host: String, type: String = "server", apiKey: String? = nil) -> UpstreamRequest {
        VendorAPI.portalIssue(
            base: baseURL, apiKey: apiKey ?? simulator.configuration.apiKeys.sorted()[0], type: type,
            hash: simulator.hostHash(host.lowercased()))
    }
}

/// Starts a simulator (small package by default) on 127.0.0.1 port 0 for the duration of `body`.
public func withRunningSimulator<T>(
    _ configuration: SimulatorConfiguration = .testDefaults, _ body: (RunningSimulator) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { dir in
        let pki = try SimulatorPKI.make(in: dir)
        let simulator = CloudSimulator(configuration: configuration)
        let server = try SimulatorServer(handler: simulator, certificate: pki.server)
        let bound = try server.start(listen: .init(host: "127.0.0.1", port: 0))
        defer { server.stop() }
        var client = UpstreamConfiguration(caFile: pki.caFile)
        client.resolve = ["cloud.test": "127.0.0.1", "other.test": "127.0.0.1"]
        client.connectTimeout = .seconds(5)
        client.readTimeout = .seconds(10)
        let running = RunningSimulator(
            simulator: simulator, server: server, pki: pki, port: bound.port,
            baseURL: UpstreamURL(host: "cloud.test", port: bound.port), clientConfiguration: client, directory: dir)
        return try await body(running)
    }
}

extension SimulatorConfiguration {
    /// A 1 MiB package, no latency or throttle.
    public static var testDefaults: SimulatorConfiguration {
        var c = SimulatorConfiguration()
        c.packageBytes = 1024 * 1024
        return c
    }
}

/// Collects log records in memory, so tests can assert what was (not) logged.
public final class SimulatorTestLogSink: LogSink, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [LogRecord] = []
    public init() {}
    public func write(_ record: LogRecord) { lock.withLock { stored.append(record) } }
    public var records: [LogRecord] { lock.withLock { stored } }
    /// Every message and metadata value, joined, for "never contains" checks.
    public var text: String {
        records.map { r in r.message + " " + r.metadata.map { "\($0.0)=\($0.1)" }.joined(separator: " ") }
            .joined(separator: "\n")
    }
}
