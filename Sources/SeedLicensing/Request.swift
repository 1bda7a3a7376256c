/// The license types the vendor knows. `client` (ASGARD wording) and `workstation` (cloud wording) are one type.
public enum LicenseType: String, Sendable, Hashable, CaseIterable {
    case server
    case workstation

    /// Accepts the words of every route: `server`, `workstation`, `client` (any case).
    public init?(word: String) {
        switch word.lowercased() {
        case "server": self = .server
        case "workstation", "client": self = .workstation
        default: return nil
        }
    }

    /// The word the vendor portal's license API uses in its path (PROTOCOL.md §5).
    public var portalWord: String { self == .server ? "server" : "client" }
}

/// Which dialect a request came in, for the audit trail.
public enum SeedRoute: String, Sendable {
    case cloud  // GET /api/public/thor10
    case asgardV1  // GET /api/v1/downloads/thor
    case asgardV0  // GET /api/v0/downloads/thor/thor10-win
    case licenseOnly  // POST /api/v0/licensing/issue
}

/// One normalized license request, whatever route it came in on.
public struct LicenseRequest: Sendable, Equatable {
    /// The upstream account (contract) the license is spent on.
    public var account: String
    /// Host name exactly as the client sent it.
    public var hostAsked: String
    public var type: LicenseType
    public var os: String
    public var arch: String
    public var comment: String?
    public var clientAddress: String
    /// The configured *name* of the client token (never the token itself).
    public var clientTokenName: String
    public var route: SeedRoute

    public init(
        account: String, hostAsked: String, type: LicenseType, os: String, arch: String, comment: String?,
        clientAddress: String, clientTokenName: String, route: SeedRoute
    ) {
        self.account = account
        self.hostAsked = hostAsked
        self.type = type
        self.os = os
        self.arch = arch
        self.comment = comment
        self.clientAddress = clientAddress
        self.clientTokenName = clientTokenName
        self.route = route
    }
}

/// A license as it came from upstream or from an offline pool.
public struct IssuedLicense: Sendable, Equatable {
    public enum Source: String, Sendable { case upstream, pool }
    /// The opaque `.lic` bytes.
    public var bytes: [UInt8]
    public var source: Source
    /// Whatever reference upstream gave (a file name, a header), for matching against the portal.
    public var upstreamReference: String?

    public init(bytes: [UInt8], source: Source, upstreamReference: String? = nil) {
        self.bytes = bytes
        self.source = source
        self.upstreamReference = upstreamReference
    }
}

/// Why an issuing call failed. The distinction matters: `outcomeUnknown` may have spent a license.
public struct IssueError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Upstream answered and refused (401/403/409/...): nothing was issued.
        case rejected(status: Int)
        /// The request never left (connect, TLS or proxy failure): nothing was issued.
        case notSent
        /// The request left but no complete answer came back: a license may have been spent.
        case outcomeUnknown
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Obtains one new license from upstream (or a pool) for a normalized host. Provided by the server,
/// which picks the route: the package download when the package is needed anyway, else license-only.
public protocol LicenseIssuer: Sendable {
    func issue(_ request: LicenseRequest, hostKey: String) async throws(IssueError) -> IssuedLicense
}

/// What the desk decided for one request.
public enum LicenseOutcome: Sendable, Equatable {
    public enum GrantKind: String, Sendable { case issued, renewed, reused, pool }
    /// Serve these license bytes; `hostKey` is the normalized host name (the license file is `hostKey.lic`).
    case granted(license: [UInt8], hostKey: String, kind: GrantKind)
    /// Refuse with this status (400/403/409/429/5xx) and a one-line reason naming the cause.
    case refused(status: Int, reason: String, retryAfterSeconds: Int?)
}

/// The licensing part every route hands its normalized request to.
public protocol LicenseDeciding: Sendable {
    func decide(_ request: LicenseRequest, issuer: any LicenseIssuer) async -> LicenseOutcome
}
