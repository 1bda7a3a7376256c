import SeedCore
public import SeedLicensing

/// One line of the audit log (docs/audit.md §Record). Field order is fixed so the bytes are reproducible.
public struct AuditRecord: Sendable, Equatable {
    public var seq: UInt64
    public var time: AuditTime
    /// A `DecisionEvent.Kind` raw value, or `audit-gap` for records the log writes about itself.
    public var event: String
    public var route: String?
    public var account: String?
    public var clientAddress: String?
    /// The client token's configured name, never the token.
    public var clientToken: String?
    public var hostAsked: String?
    /// The normalized host key.
    public var host: String?
    public var type: String?
    public var os: String?
    public var arch: String?
    public var comment: String?
    public var licenseRef: String?
    public var portalHmac: String?
    public var quotaUsed: Int64?
    public var quotaTotal: Int64?
    public var upstreamStatus: Int64?
    public var rule: String?
    public var reportOnly: Bool
    public var alias: Bool
    public var reason: String?
    /// SHA-256 hex of the previous record's exact line bytes (64 zeros for the first record).
    public var prev: String

    /// The event name of records the log writes when it finds records missing at startup.
    public static let gapEvent = "audit-gap"

    public init(seq: UInt64, time: AuditTime, event: String, prev: String) {
        self.seq = seq
        self.time = time
        self.event = event
        self.reportOnly = false
        self.alias = false
        self.prev = prev
    }

    public init(seq: UInt64, time: AuditTime, event e: DecisionEvent, prev: String) {
        self.init(seq: seq, time: time, event: e.kind.rawValue, prev: prev)
        route = e.route?.rawValue
        account = e.account
        clientAddress = e.clientAddress
        clientToken = e.clientTokenName
        hostAsked = e.hostAsked
        host = e.hostKey
        type = e.type?.rawValue
        os = e.os
        arch = e.arch
        comment = e.comment
        licenseRef = e.licenseReference
        portalHmac = e.portalHMAC
        quotaUsed = e.quotaUsed.map(Int64.init)
        quotaTotal = e.quotaTotal.map(Int64.init)
        upstreamStatus = e.upstreamStatus.map(Int64.init)
        rule = e.rule
        reportOnly = e.reportOnly
        alias = e.aliasFlag
        reason = e.reason
    }

    /// The canonical line, without the trailing newline.
    public var line: String {
        var out: [UInt8] = []
        appendLine(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the canonical line (without the trailing newline) to `out`: the bytes the chain hashes.
    public func appendLine(to out: inout [UInt8]) {
        func str(_ k: StaticString, _ v: String?) {
            JSONBytes.appendRaw(k, to: &out)
            if let v { JSONBytes.appendQuoted(v, to: &out) } else { JSONBytes.appendRaw("null", to: &out) }
        }
        func int(_ k: StaticString, _ v: Int64?) {
            JSONBytes.appendRaw(k, to: &out)
            if let v { JSONBytes.appendInteger(v, to: &out) } else { JSONBytes.appendRaw("null", to: &out) }
        }
        JSONBytes.appendRaw("{\"seq\":", to: &out)
        JSONBytes.appendInteger(seq, to: &out)
        JSONBytes.appendRaw(",\"time\":\"", to: &out)
        time.appendRFC3339(to: &out)
        JSONBytes.appendRaw("\",\"event\":", to: &out)
        JSONBytes.appendQuoted(event, to: &out)
        str(",\"route\":", route)
        str(",\"account\":", account)
        str(",\"clientAddress\":", clientAddress)
        str(",\"clientToken\":", clientToken)
        str(",\"hostAsked\":", hostAsked)
        str(",\"host\":", host)
        str(",\"type\":", type)
        str(",\"os\":", os)
        str(",\"arch\":", arch)
        str(",\"comment\":", comment)
        str(",\"licenseRef\":", licenseRef)
        str(",\"portalHmac\":", portalHmac)
        int(",\"quotaUsed\":", quotaUsed)
        int(",\"quotaTotal\":", quotaTotal)
        int(",\"upstreamStatus\":", upstreamStatus)
        str(",\"rule\":", rule)
        JSONBytes.appendRaw(",\"reportOnly\":", to: &out)
        if reportOnly { JSONBytes.appendRaw("true", to: &out) } else { JSONBytes.appendRaw("false", to: &out) }
        JSONBytes.appendRaw(",\"alias\":", to: &out)
        if alias { JSONBytes.appendRaw("true", to: &out) } else { JSONBytes.appendRaw("false", to: &out) }
        str(",\"reason\":", reason)
        // `prev` is written as it is (64 hex digits), not escaped, as the line always was.
        JSONBytes.appendRaw(",\"prev\":\"", to: &out)
        out.append(contentsOf: prev.utf8)
        JSONBytes.appendRaw("\"}", to: &out)
    }

    /// The keys of a record line, in canonical order.
    public static let keys = [
        "seq", "time", "event", "route", "account", "clientAddress", "clientToken", "hostAsked", "host", "type", "os",
        "arch", "comment", "licenseRef", "portalHmac", "quotaUsed", "quotaTotal", "upstreamStatus", "rule",
        "reportOnly", "alias", "reason", "prev",
    ]

    /// Parses one line (without its newline). Fails with a reason when the line is not a record.
    public static func parse(_ bytes: some Collection<UInt8>) -> Result<AuditRecord, AuditRecordError> {
        let fields: [(String, FlatJSONValue)]
        switch FlatJSONParser.parse(bytes) {
        case .success(let f): fields = f
        case .failure(let e): return .failure(AuditRecordError(reason: "not valid JSON: \(e)"))
        }
        guard fields.map(\.0) == keys else {
            return .failure(AuditRecordError(reason: "keys are not the record's keys in canonical order"))
        }
        var d: [String: FlatJSONValue] = [:]
        for (k, v) in fields { d[k] = v }
        func str(_ k: String) throws(AuditRecordError) -> String? {
            switch d[k]! {
            case .string(let s): return s
            case .null: return nil
            default: throw AuditRecordError(reason: "\(k) is not a string")
            }
        }
        func int(_ k: String) throws(AuditRecordError) -> Int64? {
            switch d[k]! {
            case .integer(let i): return i
            case .null: return nil
            default: throw AuditRecordError(reason: "\(k) is not an integer")
            }
        }
        func bool(_ k: String) throws(AuditRecordError) -> Bool {
            guard case .bool(let b) = d[k]! else { throw AuditRecordError(reason: "\(k) is not true or false") }
            return b
        }
        do throws(AuditRecordError) {
            guard let seq = try int("seq"), seq > 0 else { throw AuditRecordError(reason: "seq is not a positive integer") }
            guard let ts = try str("time"), let time = AuditTime(parsing: ts) else {
                throw AuditRecordError(reason: "time is not an RFC 3339 time")
            }
            guard let event = try str("event") else { throw AuditRecordError(reason: "event is missing") }
            guard let prev = try str("prev"), prev.utf8.count == 64, prev.utf8.allSatisfy({ isHexDigit($0) }) else {
                throw AuditRecordError(reason: "prev is not 64 hex digits")
            }
            var r = AuditRecord(seq: UInt64(seq), time: time, event: event, prev: prev)
            r.route = try str("route")
            r.account = try str("account")
            r.clientAddress = try str("clientAddress")
            r.clientToken = try str("clientToken")
            r.hostAsked = try str("hostAsked")
            r.host = try str("host")
            r.type = try str("type")
            r.os = try str("os")
            r.arch = try str("arch")
            r.comment = try str("comment")
            r.licenseRef = try str("licenseRef")
            r.portalHmac = try str("portalHmac")
            r.quotaUsed = try int("quotaUsed")
            r.quotaTotal = try int("quotaTotal")
            r.upstreamStatus = try int("upstreamStatus")
            r.rule = try str("rule")
            r.reportOnly = try bool("reportOnly")
            r.alias = try bool("alias")
            r.reason = try str("reason")
            return .success(r)
        } catch {
            return .failure(error)
        }
    }

    /// The decision kind, when `event` names one.
    public var kind: DecisionEvent.Kind? { DecisionEvent.Kind(rawValue: event) }
}

/// Why a line is not an audit record.
public struct AuditRecordError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

private func isHexDigit(_ c: UInt8) -> Bool { (48...57).contains(c) || (97...102).contains(c) }
