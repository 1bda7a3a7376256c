/// What the LicenseDesk (or an operator) did, as handed to the audit trail. The audit log adds the
/// sequence number, time and hash chain; this carries the facts.
public struct DecisionEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        // LicenseDesk decisions
        case issued, renewed, reused, refused, rateLimited = "rate-limited", quotaExhausted = "quota-exhausted"
        case upstreamError = "upstream-error", outcomeUnknown = "outcome-unknown", poolServed = "pool-served"
        case pending
        // operator actions and alerts
        case licenseImport = "import", revoke, resolve, configReload = "config-reload", breakerTripped = "breaker-tripped"
    }

    public var kind: Kind
    public var clientAddress: String?
    /// The client token's configured name, never the token.
    public var clientTokenName: String?
    public var hostAsked: String?
    public var hostKey: String?
    public var type: LicenseType?
    public var os: String?
    public var arch: String?
    public var comment: String?
    public var route: SeedRoute?
    /// Reference of the license served or issued (upstream reference or a local id).
    public var licenseReference: String?
    /// base64url(HMAC-SHA1) of the short host name (PROTOCOL.md §5), to match the portal's records.
    public var portalHMAC: String?
    public var quotaUsed: Int?
    public var quotaTotal: Int?
    public var upstreamStatus: Int?
    /// The policy or rate-limit rule that applied, if any.
    public var rule: String?
    /// True when the decision was only reported (a rule in report-only mode would have refused).
    public var reportOnly: Bool
    /// A NetBIOS 15-character cut matched a longer known name.
    public var aliasFlag: Bool
    public var reason: String?
    /// The upstream account (contract) the decision concerns, for per-account quota reports.
    public var account: String? = nil

    public init(kind: Kind) {
        self.kind = kind
        self.reportOnly = false
        self.aliasFlag = false
    }
}

/// Receives every decision. Must not block the caller for long (the audit log batches its fsyncs).
public protocol DecisionSink: Sendable {
    func record(_ event: DecisionEvent)
}
