import Foundation
import SeedStore

/// Opens the package store for a maintenance command: `--config PATH` (default
/// `config/seed-mirror.json` when it exists) gives the `store` and `paths` sections; `--cache DIR`
/// overrides the directory (and alone needs no config file).
func openStoreForCommand(_ args: inout Arguments) throws -> PackageStore {
    let configPath = try args.option("--config")
    let cacheOverride = try args.option("--cache")
    let defaultConfig = "config/seed-mirror.json"
    let path = configPath ?? (FileManager.default.fileExists(atPath: defaultConfig) ? defaultConfig : nil)
    guard let path else { return try PackageStore(root: cacheOverride ?? "cache") }
    let config = try MirrorConfig.load(path: path)
    return try PackageStore(
        root: cacheOverride ?? config.store.root(paths: config.paths), options: config.store.options)
}

func formatBytes(_ n: UInt64) -> String {
    if n >= 10 << 20 { return "\(n >> 20) MiB" }
    if n >= 10 << 10 { return "\(n >> 10) KiB" }
    return "\(n) B"
}
