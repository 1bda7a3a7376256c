import Foundation
import Glibc
public import SeedTLS

/// `seed-mirror init [--dir DIR] [--name DNS-or-IP ...] [--force]`: a ready-to-serve folder with the
/// configuration, an internal CA, RSA and ECDSA server certificates, client/admin tokens and the cache.
func runInit(_ args: inout Arguments) async throws -> Int32 {
    if args.flag("--help") || args.flag("-h") {
        say(InitCommand.usage)
        return 0
    }
    let dir = absoluteConfigPath(try args.option("--dir") ?? ".")
    var names = try args.options("--name")
    let force = args.flag("--force")
    try args.finish()
    if names.isEmpty { names = InitCommand.defaultNames() }
    let result = try InitCommand.run(dir: dir, names: names, force: force)
    say(InitCommand.instructions(result))
    return 0
}

/// The steps of `init`, callable from tests and the demo without parsing arguments.
public enum InitCommand {
    /// What `init` wrote.
    public struct Result: Sendable {
        public var dir: String
        public var configPath: String
        public var pki: DevelopmentPKI
        public var names: [String]
        public var clientTokenPath: String
        public var adminTokenPath: String
        /// Token files that existed and were kept.
        public var keptTokens: [String]
    }

    public static let usage = """
        usage: seed-mirror init [--dir DIR] [--name DNS-or-IP ...] [--force]

          --dir DIR    the mirror folder to create (default: the current directory); it gets config/,
                       certs/ and cache/
          --name NAME  a DNS name or IPv4/IPv6 address the seeds use to reach the mirror; repeat for each.
                       Default: localhost, 127.0.0.1, ::1 and this machine's host name
          --force      rewrite an existing configuration and server certificates (the CA and the token
                       files are kept)
        """

    /// localhost, 127.0.0.1, ::1 and this machine's host name (when it is a valid DNS name).
    public static func defaultNames() -> [String] {
        var names = ["localhost", "127.0.0.1", "::1"]
        var buf = [CChar](repeating: 0, count: 256)
        if gethostname(&buf, buf.count - 1) == 0 {
            let host = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if case .dns(let h)? = CertificateAuthority.classify(name: host), !names.contains(h) { names.append(h) }
        }
        return names
    }

    /// Writes `dir/config/seed-mirror.json`, `dir/config/{client,admin}.token`, `dir/certs/*` and
    /// `dir/cache/`. Refuses to overwrite the configuration or server certificates unless `force`;
    /// even then an existing CA and existing token files are kept, so trusted endpoints and configured
    /// seeds keep working (delete them to start over).
    public static func run(dir: String, names: [String], force: Bool) throws -> Result {
        for n in names where CertificateAuthority.classify(name: n) == nil {
            throw ConfigError("--name \(n): neither a DNS name nor an IP address")
        }
        let fm = FileManager.default
        let configDir = dir + "/config"
        let certsDir = dir + "/certs"
        let configPath = configDir + "/seed-mirror.json"
        if !force {
            let existing = [configPath, certsDir + "/server-rsa.pem", certsDir + "/server-ecdsa.pem"].filter {
                fm.fileExists(atPath: $0)
            }
            if let first = existing.first {
                throw ConfigError(
                    "\(first) already exists; run init with --force to overwrite (the CA and tokens are kept)")
            }
        }
        for d in [dir, configDir, certsDir, dir + "/cache"] {
            do {
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
            } catch {
                throw ConfigError("cannot create directory \(d): \(error.localizedDescription)")
            }
        }
        let clientToken = configDir + "/client.token"
        let adminToken = configDir + "/admin.token"
        var kept: [String] = []
        for path in [clientToken, adminToken] {
            if fm.fileExists(atPath: path) {
                kept.append(path)
            } else {
                try CertificateAuthority.writeFileAtomically(path, randomToken() + "\n", mode: 0o600)
            }
        }
        let pki = try CertificateAuthority.writeDevelopmentPKI(to: certsDir, names: names, reuseExistingCA: true)
        try CertificateAuthority.writeFileAtomically(configPath, defaultConfigText(), mode: 0o644)
        // What init wrote must load; a failure here is a bug worth seeing at once.
        _ = try MirrorConfig.load(path: configPath)
        return Result(
            dir: dir, configPath: configPath, pki: pki, names: names, clientTokenPath: clientToken,
            adminTokenPath: adminToken, keptTokens: kept)
    }

    /// The configuration `init` writes: every setting at its default, spelled out (docs/configuration.md).
    /// `config/seed-mirror.json` in the repository is this text.
    public static func defaultConfigText() -> String {
        """
        {
          "listen": ["0.0.0.0:443", "0.0.0.0:8443"],
          "paths": {
            "cacheDir": "cache",
            "certsDir": "certs"
          },
          "tls": {
            "certificates": [
              { "certificate": "certs/server-rsa.pem", "key": "certs/server-rsa.key" },
              { "certificate": "certs/server-ecdsa.pem", "key": "certs/server-ecdsa.key" }
            ],
            "sessionCacheSize": 20000,
            "sessionTickets": true
          },
          "server": {
            "maxConnections": 20000,
            "eventLoops": 0,
            "maxHeadBytes": 16384,
            "maxHeaderCount": 100,
            "maxBodyBytes": 1048576,
            "sendBufferBytes": 262144,
            "shutdownGraceSeconds": 30,
            "timeouts": {
              "handshakeSeconds": 10,
              "requestHeadSeconds": 15,
              "idleSeconds": 60,
              "writeStallSeconds": 60,
              "requestBodySeconds": 30
            }
          },
          "log": {
            "level": "info",
            "accessLog": "stderr"
          },
          "upstream": {
            "mode": "offline",
            "url": "https://cloud.nextron-systems.com",
            "portalUrl": "https://portal.nextron-systems.com",
            "caFile": null,
            "proxy": null,
            "account": "default",
            "connectTimeoutSeconds": 10,
            "readTimeoutSeconds": 60,
            "maxBodyBytes": 1073741824,
            "refreshHours": 12
          },
          "clients": [
            { "name": "seeds", "token": { "file": "config/client.token" } }
          ],
          "admin": {
            "token": { "file": "config/admin.token" }
          }
        }

        """
    }

    /// What to do next, printed after `init`.
    public static func instructions(_ r: Result) -> String {
        let ca = r.pki.caCertificatePath
        var s = """
            SeedMirror initialised in \(r.dir)
              configuration  \(r.configPath)
              internal CA    \(ca)\(r.pki.reusedCA ? " (existing CA kept)" : "")
              certificates   \(r.pki.rsa.certificateChainPath), \(r.pki.ecdsa.certificateChainPath)
                             names: \(r.names.joined(separator: ", "))
              client token   \(r.clientTokenPath)
              admin token    \(r.adminTokenPath)
              cache          \(r.dir)/cache

            """
        if !r.keptTokens.isEmpty { s += "  kept existing token files: \(r.keptTokens.joined(separator: ", "))\n" }
        s += """

            Next steps
            1. Trust the internal CA on the Windows endpoints (once; the key in certs/ca.key stays here):
                 certutil -addstore -f Root ca.pem
               or by Group Policy: Computer Configuration > Policies > Windows Settings > Security Settings >
               Public Key Policies > Trusted Root Certification Authorities > Import ca.pem.
            2. Point the seeds at the mirror, one of:
               a) ASGARD style (port 8443):  thor-seed.ps1 -AsgardServer mirror.internal
                  with the client token from config/client.token as the seed's token.
               b) DNS override (port 443): resolve cloud.nextron-systems.com to the mirror on the internal DNS,
                  seeds unchanged. The certificate must name it: re-run
                  seed-mirror init --dir \(r.dir) --force --name cloud.nextron-systems.com --name mirror.internal
            3. Choose the upstream in the configuration: "mode": "online" with the contract's download token
               ("token": {"file": "config/upstream.token"}), or keep "offline" and use import-bundle.
            4. Start the mirror:
                 seed-mirror serve --config \(r.configPath)

            """
        return s
    }

    /// 32 random bytes as hex.
    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }
}
