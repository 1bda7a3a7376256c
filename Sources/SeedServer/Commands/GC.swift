import SeedStore

/// `seed-mirror gc [--config PATH | --cache DIR]`: removes unreferenced blobs; applies the size cap if set.
func runGC(_ args: inout Arguments) async throws -> Int32 {
    let store = try openStoreForCommand(&args)
    try args.finish()
    let r = try store.options.sizeCapBytes.map { try store.enforceSizeCap($0) } ?? store.gc()
    for d in r.evictedManifests { say("evicted version \(d.prefix(12)) (size cap)") }
    say("removed \(r.removedBlobs) blobs (\(formatBytes(r.removedBytes))), kept \(r.keptBlobs)")
    return 0
}
