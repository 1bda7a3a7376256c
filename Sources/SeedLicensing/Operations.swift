public import Foundation

/// Why an operator action failed, in one sentence.
public struct OperationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Operator actions over the ledger, shared by the running desk and the `licenses` command. Each emits
/// a DecisionEvent.
public enum LicenseOperations {
    public static func revoke(
        host: String, ledger: any LicenseLedger, sink: any DecisionSink, now: Date, operatorName: String? = nil
    ) throws -> Int {
        let key: String
        switch HostName.normalize(host) {
        case .failure(let e): throw OperationError("cannot revoke \(host): \(e.reason)")
        case .success(let k): key = k
        }
        let n = try ledger.revokeLicenses(hostKey: key, at: now)
        var ev = DecisionEvent(kind: .revoke)
        ev.hostAsked = host
        ev.hostKey = key
        ev.clientTokenName = operatorName
        ev.portalHMAC = PortalHMAC.hash(shortHost: key)
        ev.reason = "operator revoked \(n) license(s) of \(key); the next request issues anew"
        sink.record(ev)
        return n
    }

    public static func resolve(
        intent id: Int64, note: String, ledger: any LicenseLedger, sink: any DecisionSink, now: Date,
        operatorName: String? = nil
    ) throws -> IntentRecord {
        guard let existing = try ledger.intent(id) else { throw OperationError("no intent \(id) in the ledger") }
        guard existing.state == .unknown || existing.state == .pending else {
            throw OperationError("intent \(id) is \(existing.state.rawValue), not unknown; nothing to resolve")
        }
        guard let r = try ledger.resolveIntent(id, detail: note, at: now) else {
            throw OperationError("intent \(id) could not be resolved")
        }
        var ev = DecisionEvent(kind: .resolve)
        ev.hostKey = r.key.hostKey
        ev.type = r.key.type
        ev.clientTokenName = operatorName
        ev.licenseReference = "intent-\(id)"
        ev.reason = "operator resolved intent \(id) for \(r.key): \(note)"
        sink.record(ev)
        return r
    }

    /// One `HOSTNAME.lic` candidate read by the caller from a file, directory or ZIP.
    public struct PoolFile: Sendable {
        public var name: String
        public var bytes: [UInt8]
        public init(name: String, bytes: [UInt8]) {
            self.name = name
            self.bytes = bytes
        }
    }

    public struct ImportReport: Sendable, Equatable {
        public var imported: [String] = []
        /// File name and why it was skipped.
        public var skipped: [(String, String)] = []
        public static func == (a: ImportReport, b: ImportReport) -> Bool {
            a.imported == b.imported && a.skipped.map(\.0) == b.skipped.map(\.0)
        }
    }

    /// Imports `HOSTNAME.lic` files into the offline pool. The host name comes from the file name; a
    /// license must be at least `minimumBytes` and not an `Error:` text. Emits one `import` event.
    public static func importPool(
        _ files: [PoolFile], type: LicenseType, expiresAt: Date?, lifetimeSeconds: TimeInterval, minimumBytes: Int,
        ledger: any LicenseLedger, sink: any DecisionSink, now: Date, operatorName: String? = nil
    ) throws -> ImportReport {
        var report = ImportReport()
        for f in files {
            let base = f.name.split(separator: "/").last.map(String.init) ?? f.name
            guard base.lowercased().hasSuffix(".lic") else {
                report.skipped.append((f.name, "not a .lic file"))
                continue
            }
            let stem = String(base.dropLast(4))
            let key: String
            switch HostName.normalize(stem) {
            case .failure(let e):
                report.skipped.append((f.name, "file name is not a host name: \(e.reason)"))
                continue
            case .success(let k): key = k
            }
            if f.bytes.count < minimumBytes || f.bytes.starts(with: Array("Error:".utf8)) {
                report.skipped.append((f.name, "\(f.bytes.count) bytes, not a license"))
                continue
            }
            try ledger.importPoolLicense(
                PoolLicense(
                    hostKey: key, type: type, bytes: f.bytes, importedAt: now,
                    expiresAt: expiresAt ?? now + lifetimeSeconds, sourceName: base))
            try ledger.removePendingHost(key: key, type: type)
            report.imported.append(key)
        }
        var ev = DecisionEvent(kind: .licenseImport)
        ev.type = type
        ev.clientTokenName = operatorName
        ev.reason =
            "imported \(report.imported.count) pooled \(type.rawValue) license(s), skipped \(report.skipped.count)"
            + (report.skipped.isEmpty ? "" : ": " + report.skipped.map { "\($0.0) (\($0.1))" }.joined(separator: ", "))
        sink.record(ev)
        return report
    }
}
