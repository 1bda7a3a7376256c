import Foundation
import SeedAudit

/// `seed-mirror audit verify [--from FILE] [--config PATH | --dir AUDITDIR]`: walks the hash chain across
/// files, compares its end with the head and names the first broken record. Exit 0 intact, 1 broken.
func runAudit(_ args: inout Arguments) async throws -> Int32 {
    guard let sub = args.positional() else {
        throw ConfigError("usage: seed-mirror audit verify [--from FILE] [--config PATH | --dir AUDITDIR]")
    }
    guard sub == "verify" else { throw ConfigError("unknown audit subcommand \(sub) (expected verify)") }
    let from = try args.option("--from")
    let dir = try auditDirectoryArgument(&args)
    try args.finish()
    guard FileManager.default.fileExists(atPath: dir) else { throw ConfigError("audit directory \(dir) does not exist") }
    let head = try FileAuditHeadStore(directory: dir).load()
    let result = try AuditVerifier.verify(directory: dir, fromFile: from, head: head)
    for w in result.warnings { say("warning: \(w)") }
    say(result.summary)
    if result.isIntact {
        say("files: \(result.files.count), seq \(result.firstSeq.map(String.init) ?? "-")...\(result.lastSeq.map(String.init) ?? "-"), head: \(head?.description ?? "none")")
        return 0
    }
    return 1
}

/// The audit directory from `--dir`, or from the configuration (`--config`, default
/// `config/seed-mirror.json`): `audit.dir`, else `<paths.cacheDir>/audit`.
func auditDirectoryArgument(_ args: inout Arguments) throws -> String {
    let dir = try args.option("--dir")
    let config = try args.option("--config")
    if dir != nil && config != nil { throw ConfigError("give either --dir or --config, not both") }
    if let dir { return dir }
    return try MirrorConfig.load(path: config ?? "config/seed-mirror.json").auditDirectory
}
