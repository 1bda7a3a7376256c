import SeedCore

/// One client of the mirror: the token seeds send (X-Token, Authorization or `?token=`).
public struct ClientEntry: Sendable, Equatable {
    /// Shown in logs and the audit trail instead of the token.
    public var name: String
    public var token: Secret
    /// A revoked client's token is refused with 403 but stays known, so the refusal names it.
    public var revoked: Bool

    public init(name: String, token: Secret, revoked: Bool = false) {
        self.name = name
        self.token = token
        self.revoked = revoked
    }
}

/// `clients`: who may download through the mirror.
public struct ClientsSection: Sendable, Equatable {
    public var clients: [ClientEntry]
    /// Warnings found while loading (short tokens), naming the client, never the token.
    public var warnings: [String] = []

    public init(clients: [ClientEntry]) { self.clients = clients }

    /// Reads the `clients` array; names must be unique and tokens distinct.
    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        clients = []
        var names: Set<String> = []
        for o in try root.objectArray("clients") ?? [] {
            let name = try configNonEmpty(o, "name", default: "")
            guard !name.isEmpty else { throw ConfigError("config key \(o.path).name: required") }
            guard names.insert(name).inserted else {
                throw ConfigError("config key \(o.path).name: client \"\(name)\" is listed twice")
            }
            guard let token = try Secret.read(o, "token", baseDir: baseDir) else {
                throw ConfigError("config key \(o.path).token: required")
            }
            let revoked = try o.bool("revoked", default: false)
            try o.finish()
            if let other = clients.first(where: {
                constantTimeEquals(Array($0.token.value.utf8), Array(token.value.utf8))
            }) {
                throw ConfigError("config key \(o.path).token: same token as client \"\(other.name)\"")
            }
            if token.value.utf8.count < 16 {
                warnings.append("config key \(o.path).token: client \"\(name)\" has a token shorter than 16 characters")
            }
            clients.append(ClientEntry(name: name, token: token, revoked: revoked))
        }
    }

    /// The client whose token equals `token` (revoked or not), compared in constant time per entry.
    public func client(forToken token: String) -> ClientEntry? {
        let given = Array(token.utf8)
        var found: ClientEntry?
        for c in clients where constantTimeEquals(Array(c.token.value.utf8), given) && found == nil { found = c }
        return found
    }
}

/// `admin`: the token for the admin routes (dashboard, metrics, license actions); absent: those routes
/// answer 403 to everyone.
public struct AdminSection: Sendable, Equatable {
    public var token: Secret?

    public init(token: Secret? = nil) { self.token = token }

    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        guard let o = try root.object("admin") else { return }
        token = try Secret.read(o, "token", baseDir: baseDir)
        // Validated by AuditSection (admin.networks); read here so finish() accepts it.
        _ = try o.stringArray("networks")
        try o.finish()
    }
}
