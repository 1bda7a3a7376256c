import Foundation
import SeedStore

/// `seed-mirror packages [--config PATH | --cache DIR]`: versions, sizes and sharing.
func runPackages(_ args: inout Arguments) async throws -> Int32 {
    let store = try openStoreForCommand(&args)
    try args.finish()
    let list = try store.packages()
    if list.isEmpty {
        say("no packages in \(store.root)")
        return 0
    }
    let f = ISO8601DateFormatter()
    for p in list {
        say(
            "\(p.isCurrent ? "*" : " ") \(p.key) \(p.version)  manifest \(p.digest.prefix(12))  members \(p.memberCount)"
                + "  content \(formatBytes(p.contentBytes))  stored \(formatBytes(p.storedBytes))"
                + "  shared members \(p.sharedMembers)  imported \(f.string(from: p.importedAt))")
    }
    say("blobs on disk: \(formatBytes(store.blobBytes()))  (* = current)")
    return 0
}
