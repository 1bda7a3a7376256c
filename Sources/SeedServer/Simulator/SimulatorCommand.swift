import Foundation
import SeedCore
public import SeedHTTPServer
public import SeedTLS

/// The `seed-cloud-sim` command line: parses flags, starts a `CloudSimulator` on a `SimulatorServer`, prints
/// the bound address and serves until killed.
public enum CloudSimulatorCommand {
    public static let usage = """
        usage: seed-cloud-sim --listen HOST:PORT --certs DIR [options]
          --certs DIR            holds server-rsa.pem and server-rsa.key (as written by seed-mirror init);
                                 when absent, a development CA and certificates for localhost, 127.0.0.1,
                                 cloud.nextron-systems.com and portal.nextron-systems.com are written there
          --package-mb N         uncompressed package size in MiB (default 70)
          --package-version N    package version served at start (default 1)
          --seed N               package content seed (default 1)
          --latency-ms N         time to first byte (default 0)
          --bandwidth-mbps N     body throttle in megabits per second (default unlimited)
          --quota N              licenses that may be issued (default unlimited)
          --lifetime-hours N     a host gets the same license within this time (default 8760)
          --token T              accepted download token (repeatable; default sim-token)
          --api-key K            accepted portal API key (repeatable; default sim-api-key)
          --simple-server        serve with the blocking SimulatorServer instead of the production HTTPSServer
        control: GET /_sim/counts, POST /_sim/reset, POST /_sim/faults (JSON), POST /_sim/version?n=N

        """

    /// Parsed command line.
    public struct Options: Sendable {
        public var simulator: SimulatorConfiguration
        public var listen: ListenAddress
        public var certificate: CertificateKeyPair
        public var simpleServer: Bool
    }

    /// Parses `argv` (without the program name) into a configuration, the listen address and the certificate.
    public static func parse(_ argv: [String]) throws(ConfigError) -> (
        SimulatorConfiguration, ListenAddress, CertificateKeyPair
    ) {
        let o = try parseOptions(argv)
        return (o.simulator, o.listen, o.certificate)
    }

    public static func parseOptions(_ argv: [String]) throws(ConfigError) -> Options {
        var args = Arguments(argv)
        let simple = args.flag("--simple-server")
        var config = SimulatorConfiguration()
        func int(_ name: String) throws(ConfigError) -> Int? {
            guard let v = try args.option(name) else { return nil }
            guard let n = Int(v), n >= 0 else { throw ConfigError("\(name) needs a non-negative whole number, got \(v)") }
            return n
        }
        guard let listenText = try args.option("--listen") else { throw ConfigError("--listen HOST:PORT is required") }
        guard let listen = ListenAddress(parsing: listenText) else {
            throw ConfigError("--listen \(listenText) is not HOST:PORT")
        }
        guard let certs = try args.option("--certs") else { throw ConfigError("--certs DIR is required") }
        if let mb = try int("--package-mb") { config.packageBytes = max(1, mb) * 1024 * 1024 }
        if let v = try int("--package-version") { config.packageVersion = max(1, v) }
        if let s = try int("--seed") { config.packageSeed = UInt64(s) }
        if let ms = try int("--latency-ms") { config.latency = .milliseconds(ms) }
        if let mbps = try int("--bandwidth-mbps"), mbps > 0 { config.bandwidthBytesPerSecond = mbps * 1_000_000 / 8 }
        if let q = try int("--quota") { config.quota = q }
        if let h = try int("--lifetime-hours") { config.licenseLifetime = .seconds(h * 3600) }
        let tokens = try args.options("--token")
        if !tokens.isEmpty { config.tokens = Set(tokens) }
        let keys = try args.options("--api-key")
        if !keys.isEmpty { config.apiKeys = Set(keys) }
        try args.finish()
        let pair = CertificateKeyPair(
            certificateChainPath: certs + "/server-rsa.pem", privateKeyPath: certs + "/server-rsa.key")
        return Options(simulator: config, listen: listen, certificate: pair, simpleServer: simple)
    }

    public static func main(_ argv: [String]) async -> Int32 {
        if argv.contains("-h") || argv.contains("--help") {
            print(usage, terminator: "")
            return 0
        }
        do {
            let options = try parseOptions(argv)
            let pair = options.certificate
            let logger = Logger(level: .info, sink: StderrSink())
            let dir = (pair.certificateChainPath as NSString).deletingLastPathComponent
            if !FileManager.default.fileExists(atPath: pair.certificateChainPath) {
                let pki = try CertificateAuthority.writeDevelopmentPKI(
                    to: dir,
                    names: ["localhost", "127.0.0.1", "cloud.nextron-systems.com", "portal.nextron-systems.com"],
                    caCommonName: "SeedMirror Cloud Simulator CA", reuseExistingCA: true)
                FileHandle.standardError.write(
                    Data("seed-cloud-sim: wrote certificates; trust \(pki.caCertificatePath)\n".utf8))
            }
            let simulator = CloudSimulator(configuration: options.simulator, logger: logger)
            let bound: ListenAddress
            // Kept alive until the process ends.
            let keep: any Sendable
            if options.simpleServer {
                let server = try SimulatorServer(handler: simulator, certificate: pair, logger: logger)
                bound = try server.start(listen: options.listen)
                keep = server
            } else {
                var pairs = [pair]
                let ecdsa = CertificateKeyPair(
                    certificateChainPath: dir + "/server-ecdsa.pem", privateKeyPath: dir + "/server-ecdsa.key")
                if FileManager.default.fileExists(atPath: ecdsa.certificateChainPath) { pairs.append(ecdsa) }
                let tls = try TLSServerContext(configuration: TLSServerConfiguration(certificates: pairs))
                var config = HTTPServerConfiguration(listeners: [options.listen])
                config.limits.maxBodyBytes = 4 * 1024 * 1024
                let server = HTTPSServer(
                    configuration: config, tls: tls, handler: simulator, logger: logger, accessLog: nil)
                guard let first = try server.start().first else { throw SimulatorError("no listener started") }
                bound = first
                keep = server
            }
            FileHandle.standardOutput.write(Data("seed-cloud-sim listening on https://\(bound)\n".utf8))
            while true {
                try? await Task.sleep(for: .seconds(3600))
                _ = keep
            }
        } catch {
            FileHandle.standardError.write(Data("seed-cloud-sim: \(error)\n\(usage)".utf8))
            return 2
        }
    }
}

private struct StderrSink: LogSink {
    func write(_ record: LogRecord) {
        var line = "\(record.level) \(record.message)"
        for (k, v) in record.metadata { line += " \(k)=\(v)" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
