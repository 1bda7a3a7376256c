import Foundation
import SeedStore

/// `seed-mirror import PACKAGE.zip --os OS --arch ARCH [--variant full|lite] [--product thor10]
/// [--version LABEL] [--not-current] [--config PATH | --cache DIR]`
func runImport(_ args: inout Arguments) async throws -> Int32 {
    let store = try openStoreForCommand(&args)
    guard let os = try args.option("--os") else { throw ConfigError("import needs --os (windows, linux, macos)") }
    guard let arch = try args.option("--arch") else { throw ConfigError("import needs --arch (amd64, arm64, ...)") }
    let variant = try args.option("--variant") ?? "full"
    let product = try args.option("--product") ?? "thor10"
    let version = try args.option("--version")
    let notCurrent = args.flag("--not-current")
    guard let zip = args.positional() else { throw ConfigError("import needs the package ZIP path") }
    try args.finish()
    let started = Date()
    let r = try store.importZip(
        path: zip, product: product, os: os, arch: arch, variant: variant, version: version, makeCurrent: !notCurrent)
    let seconds = max(Date().timeIntervalSince(started), 0.001)
    say("imported \(zip) as \(r.key) version \(r.version) (manifest \(r.manifestDigest.prefix(16)))")
    say("  members: \(r.memberCount), content \(formatBytes(r.contentBytes))")
    say("  blobs: \(r.newBlobs) new (\(formatBytes(r.newBlobBytes)) written), \(r.sharedBlobs) already stored")
    say(String(format: "  time: %.2f s, %.1f MB/s of content", seconds, Double(r.contentBytes) / seconds / 1e6))
    say(
        "  current: \(notCurrent ? "unchanged" : "this version")\(r.manifestIsNew ? "" : " (manifest was already present)")"
    )
    if r.licenses.isEmpty {
        say("  licenses: none in the archive")
    } else {
        // Not package content. A bundle does not say which license type its files are, so they are not
        // pooled here: the operator pools them with `licenses import`, which asks for the type.
        say("  licenses found (not package content; not stored by the package store):")
        for l in r.licenses { say("    \(l.name) (\(l.bytes.count) bytes)") }
        say("  to add them to the offline license pool: seed-mirror licenses import \(zip) --type server|workstation")
    }
    return 0
}
