import Foundation
import SeedAudit

/// `seed-mirror usage [--since DATE] [--until DATE] [--by day|week|token|type|os|host]
/// [--format table|csv|json] [--config PATH | --dir AUDITDIR]`: the usage report from the audit log.
func runUsage(_ args: inout Arguments) async throws -> Int32 {
    let since = try args.option("--since")
    let until = try args.option("--until")
    let by = try args.option("--by")
    let format = try args.option("--format") ?? "table"
    let dir = try auditDirectoryArgument(&args)
    try args.finish()
    let (query, fmt) = try AdminRoutes.usageQuery(since: since, until: until, by: by, format: format, now: AuditTime.now()).get()
    guard FileManager.default.fileExists(atPath: dir) else { throw ConfigError("audit directory \(dir) does not exist") }
    let report = UsageReport.compute(records: try AuditFiles.records(directory: dir), query: query)
    switch fmt {
    case "csv": FileHandle.standardOutput.write(Data(report.csv().utf8))
    case "json": say(report.json())
    default: FileHandle.standardOutput.write(Data(report.table().utf8))
    }
    return 0
}
