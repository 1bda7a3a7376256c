import Foundation
import SeedStore

/// Opens the package store for a maintenance command: `--config PATH` reads the `store` section,
/// `--cache DIR` overrides the cache directory (default: `cache`, or the configured one).
func openStoreForCommand(_ args: inout Arguments) throws -> PackageStore {
    let configPath = try args.option("--config")
    let cacheOverride = try args.option("--cache")
    var section: StoreSection? = nil
    if let configPath {
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw ConfigError("cannot read config file \(configPath)")
        }
        let root = try ConfigObject.parse(data, source: configPath)
        let base = configPath.contains("/") ? String(configPath[..<configPath.lastIndex(of: "/")!]) : "."
        section = try StoreSection(root: root, baseDir: base)
    }
    let dir = cacheOverride ?? section?.cacheDir ?? "cache"
    return try PackageStore(root: dir, options: section?.options ?? StoreOptions())
}

func formatBytes(_ n: UInt64) -> String {
    if n >= 10 << 20 { return "\(n >> 20) MiB" }
    if n >= 10 << 10 { return "\(n >> 10) KiB" }
    return "\(n) B"
}
