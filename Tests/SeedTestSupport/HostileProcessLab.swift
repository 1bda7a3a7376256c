import Foundation
import Glibc
public import SeedServer
public import SeedTLS
public import SeedUpstream
import SeedHTTPServer
import SeedCore

/// A mirror folder (`init`), an in-process cloud simulator, and the built `seed-mirror serve` run as a
/// child process that tests may SIGKILL and restart: the crash-consistency and secrets tests' lab.
public final class ServeProcessLab: @unchecked Sendable {
    public let directory: String
    public let configPath: String
    public let caFile: String
    public let clientToken: String
    public let adminToken: String
    public let binary: String
    public let port: UInt16
    public let simulator: CloudSimulator
    public let simulatorServer: SimulatorServer
    public let stderrPath: String
    public let accessLogPath: String
    public let upstreamToken: String
    private var process: Process?

    /// The built `seed-mirror` next to the package (`.build/debug/seed-mirror`), or nil when not built.
    /// `SEEDMIRROR_TEST_BINARY` names another build of it (scripts/sanitize points it at the sanitized one).
    public static func builtBinary(file: String = #filePath) -> String? {
        if let other = ProcessInfo.processInfo.environment["SEEDMIRROR_TEST_BINARY"], !other.isEmpty {
            return access(other, X_OK) == 0 ? other : nil
        }
        var url = URL(fileURLWithPath: file)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let path = url.path + "/.build/debug/seed-mirror"
        return access(path, X_OK) == 0 ? path : nil
    }

    /// `simulatorCertificate` replaces the simulator's certificate (one from another CA: the mirror must
    /// refuse it); `upstreamURL` points the mirror somewhere else than the simulator (a garbage server).
    public init(
        directory: String, binary: String, simulator configuration: SimulatorConfiguration, portalAPIKey: Bool,
        simulatorCertificate: CertificateKeyPair? = nil, upstreamURL: String? = nil
    ) throws {
        self.directory = directory
        self.binary = binary
        let initResult = try InitCommand.run(dir: directory, names: ["localhost", "127.0.0.1", "::1"], force: true)
        configPath = initResult.configPath
        caFile = initResult.pki.caCertificatePath
        clientToken = try String(contentsOfFile: initResult.clientTokenPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        adminToken = try String(contentsOfFile: initResult.adminTokenPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        simulator = CloudSimulator(configuration: configuration, logger: .discard)
        simulatorServer = try SimulatorServer(
            handler: simulator, certificate: simulatorCertificate ?? initResult.pki.ecdsa, logger: .discard)
        let simAddress = try simulatorServer.start(listen: ListenAddress(host: "127.0.0.1", port: 0))
        port = try freeLoopbackPort()
        stderrPath = directory + "/serve.stderr.log"
        accessLogPath = directory + "/access.log"
        upstreamToken = configuration.tokens.sorted().first ?? "sim-token"

        let base = upstreamURL ?? "https://127.0.0.1:\(simAddress.port)"
        var root = try JSONSerialization.jsonObject(with: Data(InitCommand.defaultConfigText().utf8)) as! [String: Any]
        root["listen"] = ["127.0.0.1:\(port)"]
        var upstream: [String: Any] = [
            "mode": "online", "url": base, "portalUrl": base, "token": upstreamToken, "caFile": "certs/ca.pem",
            "account": "lab", "connectTimeoutSeconds": 2, "readTimeoutSeconds": 3, "refreshHours": 12,
        ]
        if portalAPIKey { upstream["portalApiKey"] = configuration.apiKeys.sorted().first ?? "sim-api-key" }
        root["upstream"] = upstream
        root["rateLimits"] = [
            "requestsPerHost": ["count": 0], "newHostsPerAddress": ["count": 0], "newHostsPerNetwork": ["count": 0],
            "breakerPerHour": 0, "breakerPerDay": 0,
        ]
        var log = root["log"] as? [String: Any] ?? [:]
        log["accessLog"] = accessLogPath
        log["level"] = "debug"
        root["log"] = log
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: configPath))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: configPath)
        guard FileManager.default.createFile(atPath: stderrPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: stderrPath])
        }
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) }
        simulatorServer.stop()
    }

    public var ledgerPath: String { directory + "/cache/ledger.sqlite" }

    /// Every file of the package store (blobs, manifests, current pointers), without the ledger, the audit
    /// log and scratch files: equal before and after means the store did not change.
    public func storeFiles() -> Set<String> {
        let root = directory + "/cache"
        var out = Set<String>()
        guard let e = FileManager.default.enumerator(atPath: root) else { return out }
        while let rel = e.nextObject() as? String {
            if rel.hasPrefix("ledger.sqlite") || rel.hasPrefix("audit") || rel.hasPrefix("tmp") || rel.hasSuffix(".lock") { continue }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.insert(rel) }
        }
        return out
    }

    /// Starts `seed-mirror serve` (stderr appended to `stderrPath`); returns at once.
    public func start(environment extra: [String: String] = [:]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["serve", "--config", configPath]
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        p.environment = env
        let err = FileHandle(forWritingAtPath: stderrPath)!
        err.seekToEndOfFile()
        p.standardError = err
        p.standardOutput = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// SIGKILLs the server and waits until it is gone.
    public func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        while p.isRunning { usleep(5_000) }
        process = nil
    }

    /// SIGTERM, then waits up to `seconds` for a clean exit; returns the exit status (nil: had to SIGKILL).
    public func terminate(seconds: Double = 10) -> Int32? {
        guard let p = process else { return nil }
        kill(p.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(10_000) }
        if p.isRunning {
            kill9()
            return nil
        }
        process = nil
        return p.terminationStatus
    }

    /// Polls `GET /readyz` until it answers 200; returns the seconds it took, or nil after `timeout`.
    public func waitReady(timeout: Double = 10) -> Double? {
        let start = Date()
        let context = try? TLSClientContext(caFile: caFile)
        while Date().timeIntervalSince(start) < timeout {
            if let context, let c = try? TLSTestClient(host: "127.0.0.1", port: port, context: context, receiveTimeout: 2),
                let r = try? c.request("GET", "/readyz"), r.status == 200
            {
                return Date().timeIntervalSince(start)
            }
            if !isRunning { return nil }
            usleep(10_000)
        }
        return nil
    }

    /// A verifying HTTPS client for the mirror, as a seed with the mirror's CA would use.
    public func makeClient(readTimeout: Duration = .seconds(10)) throws -> UpstreamClient {
        var c = UpstreamConfiguration(caFile: caFile)
        c.readTimeout = readTimeout
        c.connectTimeout = .seconds(2)
        c.maxBodyBytes = 256 * 1024 * 1024
        return try UpstreamClient(configuration: c, logger: .discard)
    }

    /// Runs the built binary with `arguments` (from the mirror folder) and returns its exit status and output.
    public func runTool(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runChild(binary, arguments, directory: directory)
    }
}

/// Runs a program to its end and returns its exit status and merged output.
public func runChild(_ path: String, _ arguments: [String], directory: String? = nil, timeout: Double = 60) throws
    -> (status: Int32, output: String)
{
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let end = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < end { usleep(5_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    while p.isRunning { usleep(5_000) }
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A loopback TCP port that was free a moment ago.
public func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let b = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard b == 0 else { throw TestClientError("bind: \(String(cString: strerror(errno)))") }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}
