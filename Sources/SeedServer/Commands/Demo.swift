import Foundation
import SeedCore
import SeedHTTPServer
import SeedUpstream
import SeedStore
import SeedZip

/// `seed-mirror demo [--dir DIR] [--exit-after-check] [--package-mb N] [--latency-ms N]`
func runDemo(_ args: inout Arguments) async throws -> Int32 {
    if args.flag("--help") || args.flag("-h") {
        say(DemoCommand.usage)
        return 0
    }
    var options = DemoCommand.Options()
    if let d = try args.option("--dir") { options.directory = d }
    options.exitAfterCheck = args.flag("--exit-after-check") || args.flag("--no-wait")
    if let mb = try args.option("--package-mb") {
        guard let n = Int(mb), n >= 1, n <= 1024 else { throw ConfigError("--package-mb must be 1...1024") }
        options.packageMegabytes = n
    }
    if let ms = try args.option("--latency-ms") {
        guard let n = Int(ms), n >= 0, n <= 60_000 else { throw ConfigError("--latency-ms must be 0...60000") }
        options.latencyMilliseconds = n
    }
    try args.finish()
    return try await DemoCommand.run(options)
}

public enum DemoCommand {
    public static let usage = """
        usage: seed-mirror demo [--dir DIR] [--exit-after-check] [--package-mb N] [--latency-ms N]

          Builds a scratch mirror in DIR (default ./demo-run; a previous demo there is replaced), starts
          the built-in cloud simulator, runs the mirror online against it on loopback (port 8443 when
          free), downloads a package as a seed would (cold, then warm from the cache) and prints what
          happened. Then it keeps running with ready-to-paste curl lines until Ctrl-C.

          --exit-after-check  stop after the scripted downloads (exit 0 when both succeeded)
          --package-mb N      simulated package size (default 8)
          --latency-ms N      simulated upstream latency (default 300)
        """

    public struct Options: Sendable {
        public var directory = "demo-run"
        public var exitAfterCheck = false
        public var packageMegabytes = 8
        public var latencyMilliseconds = 300
        /// The port to use when it is free (the ASGARD port seeds use); nil: any free port.
        public var preferredPort: UInt16? = 8443
        public init() {}
    }

    static let marker = ".seed-mirror-demo"

    public static func run(_ options: Options) async throws -> Int32 {
        let dir = absoluteConfigPath(options.directory)
        let fm = FileManager.default
        if fm.fileExists(atPath: dir) {
            guard fm.fileExists(atPath: dir + "/" + marker) else {
                throw ConfigError("\(dir) exists and is not a previous demo folder; pass --dir with a new folder")
            }
            try fm.removeItem(atPath: dir)
        }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = fm.createFile(atPath: dir + "/" + marker, contents: Data("seed-mirror demo folder\n".utf8))

        var sim = SimulatorConfiguration()
        sim.packageBytes = options.packageMegabytes * 1024 * 1024
        sim.latency = .milliseconds(options.latencyMilliseconds)
        var lab = MirrorLabOptions(directory: dir, simulator: sim)
        let port: UInt16 = options.preferredPort.flatMap { portIsFree($0) ? $0 : nil } ?? 0
        lab.listen = [ListenAddress(host: "127.0.0.1", port: port)]
        lab.accessLogPath = dir + "/access.log"
        lab.logger = Logger(level: .warning, sink: StderrLogSink())
        say("SeedMirror demo in \(dir)")
        say("  simulating the vendor cloud: \(options.packageMegabytes) MB package, \(options.latencyMilliseconds) ms latency")
        let mirror = try MirrorLab(lab)
        say("  simulator on https://127.0.0.1:\(mirror.simulatorAddress.port), mirror on https://127.0.0.1:\(mirror.port)")
        say("")

        let client = try mirror.makeClient()
        let host = "DEMO-WS01"
        let downloads = dir + "/downloads"
        try fm.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        var ok = true
        var licenseDigests: [String] = []
        for (label, file) in [("cold (empty cache, goes upstream)", "cold.zip"), ("warm (from the cache)", "warm.zip")] {
            let before = mirror.simulator.counts
            let started = ContinuousClock.now
            let request = SeedCalls.cloud(port: mirror.port, host: host, token: mirror.clientToken)
            let result = await downloadOnce(client, request, to: downloads + "/" + file)
            let after = mirror.simulator.counts
            let elapsed = seconds(since: started)
            switch result {
            case .failure(let why):
                ok = false
                say("download \(label): FAILED: \(why)")
            case .success(let d):
                let check = inspectPackage(downloads + "/" + file, host: host)
                ok = ok && check.ok
                if let l = check.licenseSHA256 { licenseDigests.append(l) }
                say("download \(label):")
                say("  status \(d.status), \(d.bytes) bytes in \(formatSeconds(elapsed)) (first byte after \(formatSeconds(d.firstByteSeconds)))")
                say("  \(check.summary)")
                say("  at the simulator: \(after.packageTransfers - before.packageTransfers) package transfer(s), "
                    + "\(after.licensesIssued - before.licensesIssued) license(s) issued")
            }
        }
        if licenseDigests.count == 2 {
            let same = licenseDigests[0] == licenseDigests[1]
            say("")
            say("license SHA-256 cold: \(licenseDigests[0])")
            say("license SHA-256 warm: \(licenseDigests[1])  \(same ? "(same license: no new one was spent)" : "(DIFFERENT)")")
            ok = ok && same
        }
        let totals = mirror.simulator.counts
        say("simulator totals: \(totals.packageTransfers) package transfer(s), \(totals.licensesIssued) license(s) issued")
        say("")
        if options.exitAfterCheck {
            await mirror.stop()
            say(ok ? "demo check passed" : "demo check FAILED")
            return ok ? 0 : 1
        }
        let tokenFile = dir + "/config/client.token"
        let ca = mirror.caFile
        say("The mirror keeps running. Try it (another host, then the license-only route):")
        say("  curl --cacert \(ca) -H 'X-OS: windows' -H 'X-Type: workstation' -H 'X-Arch: amd64' \\")
        say("       -H \"X-Token: $(cat \(tokenFile))\" -H 'X-Hostname: WS02' -o thor-package.zip \\")
        say("       https://localhost:\(mirror.port)/api/public/thor10")
        say("  curl --cacert \(ca) -H 'Accept: application/octet-stream' -d hostnames=WS03 -d type=server \\")
        say("       -o WS03.lic \"https://localhost:\(mirror.port)/api/v0/licensing/issue?token=$(cat \(tokenFile))\"")
        say("  curl --cacert \(ca) https://localhost:\(mirror.port)/readyz")
        say("Access log: \(dir)/access.log. Stop with Ctrl-C.")
        let watcher = SignalWatcher()
        for await event in watcher.events {
            if case .terminate = event { break }
        }
        watcher.cancel()
        await mirror.stop()
        say("demo stopped")
        return ok ? 0 : 1
    }

    struct Download {
        var status: Int
        var bytes: UInt64
        var firstByteSeconds: Double
    }

    static func downloadOnce(_ client: UpstreamClient, _ request: UpstreamRequest, to path: String) async
        -> Result<Download, DemoFailure>
    {
        let started = ContinuousClock.now
        let stream: UpstreamBodyStream
        do { stream = try await client.stream(request) } catch { return .failure(DemoFailure("\(error)")) }
        let ttfb = seconds(since: started)
        guard stream.head.status == 200 else {
            let body = (try? await stream.next(maxBytes: 400)) ?? nil
            stream.cancel()
            return .failure(DemoFailure("status \(stream.head.status): \(String(decoding: body ?? [], as: UTF8.self))"))
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
            stream.cancel()
            return .failure(DemoFailure("cannot write \(path)"))
        }
        defer { try? out.close() }
        var total: UInt64 = 0
        do {
            while let piece = try await stream.next() {
                out.write(Data(piece))
                total += UInt64(piece.count)
            }
        } catch {
            return .failure(DemoFailure("transfer failed after \(total) bytes: \(error)"))
        }
        return .success(Download(status: stream.head.status, bytes: total, firstByteSeconds: ttfb))
    }
}

struct DemoFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func formatSeconds(_ s: Double) -> String { s < 1 ? "\(Int(s * 1000)) ms" : String(format: "%.2f s", s) }

/// Whether `port` on 127.0.0.1 can be bound right now.
func portIsFree(_ port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var one: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// What a downloaded package ZIP holds, checked the way the seed uses it.
struct PackageCheck {
    var ok: Bool
    var summary: String
    var licenseSHA256: String?
}

func inspectPackage(_ path: String, host: String) -> PackageCheck {
    guard let data = FileManager.default.contents(atPath: path) else {
        return PackageCheck(ok: false, summary: "cannot read \(path)", licenseSHA256: nil)
    }
    let bytes = [UInt8](data)
    let source = ZipBytes(bytes)
    let archive: ZipArchive
    do { archive = try ZipArchive(source: source) } catch {
        return PackageCheck(ok: false, summary: "not a valid ZIP: \(error)", licenseSHA256: nil)
    }
    let names = archive.entries.map(\.name)
    let hasThor = names.contains { ($0.split(separator: "/").last.map(String.init) ?? $0).lowercased() == "thor64.exe" }
    let lics = archive.entries.filter { $0.name.lowercased().hasSuffix(".lic") }
    var digest: String?
    if lics.count == 1, let lic = try? archive.contents(of: lics[0], from: source) {
        digest = SHA256Hasher.hex(lic)
    }
    let ok = bytes.count >= 1000 && bytes.starts(with: Array("PK".utf8)) && hasThor && lics.count == 1 && digest != nil
    let summary = "ZIP with \(names.count) members, thor64.exe \(hasThor ? "present" : "MISSING"), "
        + "\(lics.count) license file(s)\(lics.count == 1 ? " (\(lics[0].name))" : "")"
    return PackageCheck(ok: ok, summary: summary, licenseSHA256: digest)
}
