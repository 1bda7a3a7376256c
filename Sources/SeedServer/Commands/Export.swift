import SeedStore

/// `seed-mirror export --out BUNDLE_DIR [--config PATH | --cache DIR]`
func runExport(_ args: inout Arguments) async throws -> Int32 {
    let store = try openStoreForCommand(&args)
    guard let out = try args.option("--out") else { throw ConfigError("export needs --out BUNDLE_DIR") }
    try args.finish()
    let r = try store.exportBundle(to: out)
    say("exported \(r.manifests) manifests and \(r.blobs) blobs (\(formatBytes(r.bytes))) to \(out)")
    return 0
}
