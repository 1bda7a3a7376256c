import SeedStore

/// `seed-mirror verify [--config PATH | --cache DIR]`: re-hashes every blob; exit status 1 on any problem.
func runVerify(_ args: inout Arguments) async throws -> Int32 {
    let store = try openStoreForCommand(&args)
    try args.finish()
    let r = try store.verify()
    say("\(r.okBlobs) blobs ok")
    for q in r.quarantined { say("blob \(q.prefix(16)) did not match its hash: moved to quarantine/") }
    for m in r.missing { say("missing blob for \(m)") }
    return r.quarantined.isEmpty && r.missing.isEmpty ? 0 : 1
}
