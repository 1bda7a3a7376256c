import SeedCore
public import SeedHTTP

/// One client token from the configuration: a name for logs and audit, the secret the seeds send.
public struct ClientToken: Sendable, Equatable {
    public var name: String
    public var secret: String
    public var revoked: Bool

    public init(name: String, secret: String, revoked: Bool = false) {
        self.name = name
        self.secret = secret
        self.revoked = revoked
    }
}

/// The outcome of checking the token a request presented. Only `.accepted` lets a request reach the desk.
public enum TokenCheck: Sendable, Equatable {
    case accepted(name: String)
    /// No token in any accepted place.
    case missing
    /// Two places carried different tokens (for example `X-Token` and `Authorization`).
    case conflicting
    case unknown
    case revoked(name: String)
}

/// The configured client tokens. Every presented token is compared with every configured secret in
/// constant time, and the loop never stops early, so timing tells nothing about which (if any) matched.
public struct ClientTokenTable: Sendable {
    public let tokens: [ClientToken]
    private let secrets: [[UInt8]]

    public init(_ tokens: [ClientToken]) {
        self.tokens = tokens
        self.secrets = tokens.map { Array($0.secret.utf8) }
    }

    /// Checks one presented token against all configured ones.
    public func check(_ presented: String) -> TokenCheck {
        let p = Array(presented.utf8)
        var match = -1
        for (i, s) in secrets.enumerated() {
            // Evaluate both sides for every entry; `match` only records the last hit.
            let eq = constantTimeBytesEqual(p, s)
            match = eq ? i : match
        }
        guard match >= 0, !p.isEmpty else { return .unknown }
        let t = tokens[match]
        return t.revoked ? .revoked(name: t.name) : .accepted(name: t.name)
    }

    /// Finds and checks the token of a request. `queryToken` is the decoded `token=` parameter, if any.
    public func check(headers: HTTPHeaders, queryToken: String?) -> TokenCheck {
        switch presentedToken(headers: headers, queryToken: queryToken) {
        case .none: return .missing
        case .conflicting: return .conflicting
        case .one(let t): return check(t)
        }
    }
}

/// `constantTimeEquals` for two byte arrays, specialised (the generic version walks iterators): time
/// depends only on the lengths, the longer one is walked whole.
@inline(never)
func constantTimeBytesEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff: UInt8 = a.count == b.count ? 0 : 1
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<max(pa.count, pb.count) {
                let x = i < pa.count ? pa[i] : 0
                let y = i < pb.count ? pb[i] : 0
                diff |= x ^ y
            }
        }
    }
    return diff == 0
}

/// Where a client token can come from, in the order seeds and helper scripts use them.
enum PresentedToken: Equatable {
    case none, conflicting
    case one(String)
}

/// Collects the token from `X-Token`, `Authorization` (raw, as the seed sends it, or `Bearer`) and `?token=`.
/// The seed sends the same value in `X-Token` and `Authorization`; different values are refused as ambiguous.
func presentedToken(headers: HTTPHeaders, queryToken: String?) -> PresentedToken {
    // One walk over the fields, no list of candidates: the answer (none, one value, or two different
    // ones) does not depend on the order the non-empty values are met in.
    var first: String?
    var conflicting = false
    func consider(_ t: String) {
        if t.isEmpty { return }
        if let f = first {
            if f != t { conflicting = true }
        } else {
            first = t
        }
    }
    for (name, value) in headers {
        if fieldNamesEqual(name, "X-Token") {
            consider(trimmedHeaderValue(value))
        } else if fieldNamesEqual(name, "Authorization") {
            let t = trimmedHeaderValue(value)
            if t.count > 7, t.prefix(7).lowercased() == "bearer " {
                consider(trimmedHeaderValue(String(t.dropFirst(7))))
            } else {
                consider(t)
            }
        }
    }
    if let q = queryToken { consider(q) }
    guard let first else { return .none }
    // Equality here is between values the same client sent, so a plain compare leaks nothing.
    return conflicting ? .conflicting : .one(first)
}

func trimmedHeaderValue(_ s: String) -> String {
    var sub = Substring(s)
    while let c = sub.first, c == " " || c == "\t" { sub = sub.dropFirst() }
    while let c = sub.last, c == " " || c == "\t" { sub = sub.dropLast() }
    return String(sub)
}

extension ClientTokenTable {
    /// The table of the configuration's `clients` section.
    public init(_ section: ClientsSection) {
        self.init(section.clients.map { ClientToken(name: $0.name, secret: $0.token.value, revoked: $0.revoked) })
    }
}
