import Foundation
public import SeedHTTPServer
public import SeedLicensing
public import SeedStore

extension PackageKey {
    /// THOR 10, full variant, for one OS and architecture: what every seed route asks for.
    public init(os: String, arch: String) {
        self.init(product: "thor10", os: os, arch: arch, variant: "full")
    }
}

/// The current cached version of a package: an opaque id and when it was last fetched from upstream.
public struct CachedPackage: Sendable, Equatable {
    public var versionID: String
    /// Seconds since the Unix epoch when this version was imported or last confirmed from upstream.
    public var fetchedAt: Double

    public init(versionID: String, fetchedAt: Double) {
        self.versionID = versionID
        self.fetchedAt = fetchedAt
    }
}

/// A package ZIP ready to send: length and strong ETag known before the first byte.
public struct PackagePlan: Sendable {
    public var contentLength: UInt64
    /// A strong entity tag including the quotes, e.g. `"sha256-…"`.
    public var etag: String
    public var segments: [BodySegment]

    public init(contentLength: UInt64, etag: String, segments: [BodySegment]) {
        self.contentLength = contentLength
        self.etag = etag
        self.segments = segments
    }
}

/// What importing an upstream package ZIP produced.
public struct ImportedPackage: Sendable {
    public var package: CachedPackage
    /// The `.lic` members of the upstream ZIP (kept out of the store), by member name.
    public var licenses: [(name: String, bytes: [UInt8])]

    public init(package: CachedPackage, licenses: [(name: String, bytes: [UInt8])]) {
        self.package = package
        self.licenses = licenses
    }
}

/// What the routes need from the package store (SeedStore's `PackageStore` behind an adapter).
/// Calls may block on disk; callers run them off the event loop.
public protocol PackageCatalog: Sendable {
    /// The current package for `key`, nil when none was ever imported.
    func current(_ key: PackageKey) async throws -> CachedPackage?
    /// Plans the ZIP of `package` plus extra members (the host's license), without reading blobs.
    func plan(_ key: PackageKey, package: CachedPackage, extraMembers: [(name: String, bytes: [UInt8])])
        async throws -> PackagePlan
    /// Imports a complete upstream ZIP at `zipPath` as the new current version of `key`
    /// (a new version only when something changed); returns its `.lic` members separately.
    func importUpstreamZip(at zipPath: String, key: PackageKey) async throws -> ImportedPackage
    /// A directory on the store's file system for partial downloads (renames into the store stay atomic).
    var temporaryDirectory: String { get }
}

/// What the mirror asks upstream for a package and license together (PROTOCOL.md §5).
public struct PackageFetch: Sendable, Equatable {
    public var host: String
    public var type: LicenseType
    public var os: String
    public var arch: String
    public var comment: String?

    public init(host: String, type: LicenseType, os: String, arch: String, comment: String?) {
        self.host = host
        self.type = type
        self.os = os
        self.arch = arch
        self.comment = comment
    }
}

/// A 200 answer's body, read as it arrives.
public protocol UpstreamBody: Sendable {
    /// From `Content-Length`; nil when upstream did not say (then the body cannot be relayed live).
    var contentLength: UInt64? { get }
    /// The next bytes, nil at the clean end. A reset or a short body throws `.outcomeUnknown`.
    func read(maxBytes: Int) async throws(IssueError) -> [UInt8]?
    /// Abandons the transfer and closes the connection.
    func cancel()
}

/// The upstream calls the mirror makes (SeedUpstream's client behind an adapter). Neither call is ever
/// retried here: a retry of an issuing call can spend a second license.
public protocol MirrorUpstream: Sendable {
    /// False when no license-only route is configured (no portal API key, no parent mirror): then every
    /// new host's license costs a package download.
    var canIssueLicenseOnly: Bool { get }
    /// `GET /api/public/thor10` with the mirror's token: the package plus a license for `fetch.host`.
    /// Non-200 answers throw `.rejected(status)`; failures before sending `.notSent`.
    func fetchPackage(_ fetch: PackageFetch) async throws(IssueError) -> any UpstreamBody
    /// One license, no package: the portal's license API, or another mirror's license-only route.
    func issueLicense(hostKey: String, type: LicenseType, comment: String?) async throws(IssueError) -> IssuedLicense
}

/// Checks a license body from upstream: PROTOCOL.md §5 says errors can come back inside a 200 body as
/// `Error: …`, and a real license is at least 800 bytes.
public func validatedLicenseBody(_ bytes: [UInt8], minimumBytes: Int = 800) throws(IssueError) -> [UInt8] {
    let head = String(decoding: bytes.prefix(64), as: UTF8.self)
    if head.hasPrefix("Error:") {
        let line = head.split(whereSeparator: { $0.isNewline }).first.map(String.init) ?? head
        // `Error: HTTP-401` carries the portal's status; keep it so 401/403/409 map like a real status.
        var status = 502
        if let r = line.range(of: "HTTP-"), let s = Int(line[r.upperBound...].prefix(3)), (400...599).contains(s) {
            status = s
        }
        throw IssueError(.rejected(status: status), "upstream answered with an error instead of a license: \(line)")
    }
    guard bytes.count >= minimumBytes else {
        throw IssueError(.rejected(status: 502), "upstream license body is \(bytes.count) bytes, too short to be a license")
    }
    return bytes
}
