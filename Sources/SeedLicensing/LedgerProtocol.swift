public import Foundation

/// The dedup key: one license per (account, normalized host, type).
public struct LicenseKey: Sendable, Hashable, CustomStringConvertible {
    public var account: String
    public var hostKey: String
    public var type: LicenseType
    public init(account: String, hostKey: String, type: LicenseType) {
        self.account = account
        self.hostKey = hostKey
        self.type = type
    }
    public var description: String { "\(account)/\(hostKey)/\(type.rawValue)" }
}

/// A license the ledger holds.
public struct LicenseRecord: Sendable, Equatable {
    public var id: Int64
    public var key: LicenseKey
    public var source: IssuedLicense.Source
    public var bytes: [UInt8]
    public var issuedAt: Date
    public var expiresAt: Date
    public var upstreamReference: String?
    public var portalHMAC: String
    /// Address of the client the license was issued for (host↔address binding).
    public var clientAddress: String?
    public var revokedAt: Date?

    public init(
        id: Int64 = 0, key: LicenseKey, source: IssuedLicense.Source, bytes: [UInt8], issuedAt: Date, expiresAt: Date,
        upstreamReference: String?, portalHMAC: String, clientAddress: String?, revokedAt: Date? = nil
    ) {
        self.id = id
        self.key = key
        self.source = source
        self.bytes = bytes
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.upstreamReference = upstreamReference
        self.portalHMAC = portalHMAC
        self.clientAddress = clientAddress
        self.revokedAt = revokedAt
    }

    /// The reference shown in events: upstream's, else `local-ID`.
    public var reference: String { upstreamReference ?? "local-\(id)" }
}

/// State of an issuing call: recorded `pending` before it leaves, settled after.
public enum IntentState: String, Sendable, CaseIterable {
    case pending, issued, failed, unknown, resolved
}

public struct IntentRecord: Sendable, Equatable {
    public var id: Int64
    public var key: LicenseKey
    public var startedAt: Date
    public var state: IntentState
    public var detail: String?
    public init(id: Int64, key: LicenseKey, startedAt: Date, state: IntentState, detail: String?) {
        self.id = id
        self.key = key
        self.startedAt = startedAt
        self.state = state
        self.detail = detail
    }
}

public struct HostRecord: Sendable, Equatable {
    public var key: String
    /// Other spellings seen for this host (NetBIOS cuts, FQDNs), as asked.
    public var aliases: [String]
    public var firstAddress: String?
    public var lastAddress: String?
    public var firstSeen: Date
    public var lastSeen: Date
    public init(
        key: String, aliases: [String], firstAddress: String?, lastAddress: String?, firstSeen: Date, lastSeen: Date
    ) {
        self.key = key
        self.aliases = aliases
        self.firstAddress = firstAddress
        self.lastAddress = lastAddress
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }
}

/// A license imported for offline use, waiting for its host.
public struct PoolLicense: Sendable, Equatable {
    public var hostKey: String
    public var type: LicenseType
    public var bytes: [UInt8]
    public var importedAt: Date
    public var expiresAt: Date
    public var sourceName: String
    public init(
        hostKey: String, type: LicenseType, bytes: [UInt8], importedAt: Date, expiresAt: Date, sourceName: String
    ) {
        self.hostKey = hostKey
        self.type = type
        self.bytes = bytes
        self.importedAt = importedAt
        self.expiresAt = expiresAt
        self.sourceName = sourceName
    }
}

/// A host asked for while offline with no pooled license (exported for a bulk license request).
public struct PendingHost: Sendable, Equatable {
    public var hostKey: String
    public var type: LicenseType
    public var firstAsked: Date
    public var lastAsked: Date
    public var count: Int
    public init(hostKey: String, type: LicenseType, firstAsked: Date, lastAsked: Date, count: Int) {
        self.hostKey = hostKey
        self.type = type
        self.firstAsked = firstAsked
        self.lastAsked = lastAsked
        self.count = count
    }
}

/// Issuance counters: per account (contract) and per client token name.
public struct QuotaCounters: Sendable, Equatable {
    public var perAccount: [String: Int]
    public var perToken: [String: Int]
    /// The contract total upstream implied with its last 409 (the count used when it refused).
    public var learnedTotals: [String: Int]
    public init(perAccount: [String: Int] = [:], perToken: [String: Int] = [:], learnedTotals: [String: Int] = [:]) {
        self.perAccount = perAccount
        self.perToken = perToken
        self.learnedTotals = learnedTotals
    }
}

/// The durable state behind the desk (implemented by SeedLedger over SQLite).
///
/// Calls block the calling thread until the data is durable; the desk never calls it from an event loop.
/// Errors are environment failures (disk, corruption) described in one sentence.
public protocol LicenseLedger: AnyObject, Sendable {
    /// Licenses not revoked and not yet expired at `now`, the latest per key.
    func activeLicenses(now: Date) throws -> [LicenseRecord]
    func licenses(hostKey: String?) throws -> [LicenseRecord]
    /// Every host key that ever held a license (revoked or expired included), without the bytes.
    func licensedHostKeys() throws -> [String]
    func hosts() throws -> [HostRecord]
    /// Records that a host name was seen (first/last seen, address, alias spelling).
    func noteHostSeen(key: String, alias: String?, address: String?, at: Date) throws
    func quotaCounters() throws -> QuotaCounters
    func setLearnedQuota(account: String, total: Int, at: Date) throws

    /// Commits a `pending` intent durably (synchronous=FULL) and returns its id. Called before the issuer.
    func beginIntent(_ key: LicenseKey, at: Date) throws -> Int64
    /// In one transaction: stores the license, marks the intent `issued`, bumps the account and token
    /// counters (upstream licenses only). Returns the stored license with its id.
    func completeIntent(_ id: Int64, license: LicenseRecord, tokenName: String?, at: Date) throws -> LicenseRecord
    /// Settles an intent as `failed` (nothing spent) or `unknown` (maybe spent).
    func settleIntent(_ id: Int64, state: IntentState, detail: String, at: Date) throws
    /// Turns every `pending` intent into `unknown` (called once at start) and returns them.
    func markPendingIntentsUnknown(at: Date) throws -> [IntentRecord]
    func intents(in states: Set<IntentState>) throws -> [IntentRecord]
    func intent(_ id: Int64) throws -> IntentRecord?
    /// Operator: marks an `unknown`/`pending` intent `resolved`. Returns the updated record.
    func resolveIntent(_ id: Int64, detail: String, at: Date) throws -> IntentRecord?
    /// Operator: marks every live license of the host revoked. Returns how many.
    func revokeLicenses(hostKey: String, at: Date) throws -> Int
    /// Stores a license obtained without an intent (a pooled license being served).
    func storeLicense(_ license: LicenseRecord) throws -> LicenseRecord

    func importPoolLicense(_ license: PoolLicense) throws
    func poolLicense(hostKey: String, type: LicenseType) throws -> PoolLicense?
    func markPoolLicenseUsed(hostKey: String, type: LicenseType, at: Date) throws
    func poolLicenses() throws -> [PoolLicense]
    /// Adds (or counts again) a host waiting for an offline license; false when `limit` is reached.
    func addPendingHost(key: String, type: LicenseType, at: Date, limit: Int) throws -> Bool
    func removePendingHost(key: String, type: LicenseType) throws
    func pendingHosts() throws -> [PendingHost]

    /// Stores a small key/value (the audit chain head); false when the write failed.
    @discardableResult func setMeta(_ key: String, _ value: String) -> Bool
    func meta(_ key: String) -> String?
}
