public import Foundation
public import SeedHTTPServer
public import SeedTLS

/// The whole configuration of a mirror, read once from `config/seed-mirror.json` (docs/configuration.md).
/// Paths are absolute and secrets resolved by the time `load` returns.
public struct MirrorConfig: Sendable {
    /// Absolute path of the file this came from ("" when parsed from memory).
    public var sourcePath: String
    /// The folder relative paths were resolved against: the one holding `config/`.
    public var baseDir: String
    public var listen: [ListenAddress]
    public var tls: TLSSection
    public var server: ServerSection
    public var log: LogSection
    public var paths: PathsSection
    public var upstream: UpstreamSection
    public var clients: ClientsSection
    public var admin: AdminSection
    public var licensing: LicensingSection
    public var store: StoreSection
    public var audit: AuditSection
    /// Things worth a warning line at startup (never holding a secret): literal secrets in a file
    /// others can read, short client tokens.
    public var warnings: [String]

    /// Default listeners: HTTPS for DNS-override seeds (443) and `-AsgardServer` seeds (8443), IPv4.
    public static let defaultListen = ["0.0.0.0:443", "0.0.0.0:8443"]

    /// Reads and validates the file. Every problem is one line naming the file and the key.
    /// A relative `path` is taken from `workingDirectory` (default: the process's current directory).
    public static func load(path: String, workingDirectory: String? = nil) throws(ConfigError) -> MirrorConfig {
        let absolute = absoluteConfigPath(path, workingDirectory: workingDirectory)
        guard FileManager.default.fileExists(atPath: absolute) else {
            throw ConfigError("config file \(absolute): not found (create one with `seed-mirror init`)")
        }
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw ConfigError("config file \(absolute): cannot be read (check its permissions)")
        }
        var config: MirrorConfig
        do {
            config = try parse(data, source: absolute, baseDir: baseDirectory(forConfigAt: absolute))
        } catch {
            throw error.message.hasPrefix(absolute) ? error : ConfigError("\(absolute): \(error.message)")
        }
        config.sourcePath = absolute
        let mode = (try? FileManager.default.attributesOfItem(atPath: absolute)[.posixPermissions] as? Int) ?? 0
        if mode & 0o004 != 0 {
            for key in config.literalSecretKeys {
                config.warnings.append(
                    "config key \(key) holds a secret in \(absolute), which every user can read; "
                        + "use {\"file\": ...} or {\"env\": ...} or chmod 600 the file")
            }
        }
        return config
    }

    /// Parses configuration text; relative paths resolve against `baseDir`.
    public static func parse(_ data: Data, source: String, baseDir: String) throws(ConfigError) -> MirrorConfig {
        let root = try ConfigObject.parse(data, source: source)
        let listenText = try root.stringArray("listen") ?? defaultListen
        guard !listenText.isEmpty else { throw ConfigError("config key listen: needs at least one address") }
        var listen: [ListenAddress] = []
        for (i, s) in listenText.enumerated() {
            guard let a = ListenAddress(parsing: s) else {
                throw ConfigError("config key listen[\(i)]: \"\(s)\" is not HOST:PORT or [IPv6]:PORT")
            }
            guard !listen.contains(a) else { throw ConfigError("config key listen[\(i)]: \(a) is listed twice") }
            listen.append(a)
        }
        let paths = try PathsSection(root: root, baseDir: baseDir)
        let tls = try TLSSection(root: root, baseDir: baseDir, certsDir: paths.certsDir)
        let server = try ServerSection(root: root)
        let log = try LogSection(root: root, baseDir: baseDir)
        let upstream = try UpstreamSection(root: root, baseDir: baseDir)
        let clients = try ClientsSection(root: root, baseDir: baseDir)
        let admin = try AdminSection(root: root, baseDir: baseDir)
        let licensing = try LicensingSection(root: root, baseDir: baseDir)
        let store = try StoreSection(root: root, baseDir: baseDir)
        let audit = try AuditSection(root: root, baseDir: baseDir)
        // Sections read their own keys; whatever nobody read is a typo.
        try root.finish()
        return MirrorConfig(
            sourcePath: "", baseDir: baseDir, listen: listen, tls: tls, server: server, log: log, paths: paths,
            upstream: upstream, clients: clients, admin: admin, licensing: licensing, store: store, audit: audit,
            warnings: clients.warnings)
    }

    /// The folder that holds `config/`: the parent of the file's folder when that folder is named
    /// `config`, else the file's own folder. So `init --dir D` then `serve --config D/config/seed-mirror.json`
    /// works from any working directory.
    public static func baseDirectory(forConfigAt path: String) -> String {
        let folder = (absoluteConfigPath(path) as NSString).deletingLastPathComponent
        if (folder as NSString).lastPathComponent == "config" {
            let parent = (folder as NSString).deletingLastPathComponent
            return parent.isEmpty ? "/" : parent
        }
        return folder.isEmpty ? "/" : folder
    }

    /// The settings the HTTPS server takes.
    public var httpServerConfiguration: HTTPServerConfiguration {
        var c = HTTPServerConfiguration(listeners: listen)
        c.eventLoops = server.eventLoops
        c.maxConnections = server.maxConnections
        c.limits = server.limits
        c.timeouts = server.timeouts
        c.sendBufferBytes = server.sendBufferBytes
        return c
    }

    /// The settings the TLS server context takes.
    public var tlsServerConfiguration: TLSServerConfiguration { tls.serverConfiguration }

    /// Dotted keys whose secret is written in the file itself.
    var literalSecretKeys: [String] {
        var keys: [String] = []
        if upstream.token?.isLiteral == true { keys.append("upstream.token") }
        if upstream.portalAPIKey?.isLiteral == true { keys.append("upstream.portalApiKey") }
        if upstream.proxy?.password != nil { keys.append("upstream.proxy") }
        for (i, c) in clients.clients.enumerated() where c.token.isLiteral { keys.append("clients[\(i)].token") }
        if admin.token?.isLiteral == true { keys.append("admin.token") }
        return keys
    }
}

/// `p` made absolute against the current directory, with `.` and `..` folded.
func absoluteConfigPath(_ p: String, workingDirectory: String? = nil) -> String {
    let cwd = workingDirectory ?? FileManager.default.currentDirectoryPath
    let joined = p.hasPrefix("/") ? p : cwd + "/" + p
    return (joined as NSString).standardizingPath
}
