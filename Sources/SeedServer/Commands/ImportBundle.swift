import SeedStore

/// `seed-mirror import-bundle BUNDLE_DIR [--config PATH | --cache DIR]`
func runImportBundle(_ args: inout Arguments) async throws -> Int32 {
    let store = try openStoreForCommand(&args)
    guard let dir = args.positional() else { throw ConfigError("import-bundle needs the bundle directory") }
    try args.finish()
    let r = try store.importBundle(from: dir)
    say("imported \(r.manifests) new manifests and \(r.blobs) new blobs (\(formatBytes(r.bytes))), every hash checked")
    return 0
}
