public import SeedHTTP
public import SeedLicensing

/// A refusal decided by the router before any licensing or upstream work: status plus a one-line reason
/// that is safe to show the client (it never echoes a token).
public struct RouteError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    /// Extra headers, such as `Allow` on 405 or `Retry-After` on 429/503.
    public var headers: [(name: String, value: String)]

    public init(_ status: Int, _ reason: String, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    public static func == (a: RouteError, b: RouteError) -> Bool {
        a.status == b.status && a.reason == b.reason && a.headers.map(\.name) == b.headers.map(\.name)
            && a.headers.map(\.value) == b.headers.map(\.value)
    }

    public var description: String { "\(status) \(reason)" }
}

/// What the router serves. Paths are matched exactly, on the raw (percent-encoded) path.
public enum MirrorEndpoint: Sendable, Equatable {
    case seed(SeedRoute)
    case healthz
    case readyz

    /// The methods each endpoint answers; anything else is 405 with this list in `Allow`.
    public var allowedMethods: [String] {
        switch self {
        case .seed(.licenseOnly): ["POST"]
        case .seed: ["GET", "HEAD"]
        case .healthz, .readyz: ["GET", "HEAD"]
        }
    }

    /// The endpoint for a path, nil for 404. The ASGARD v0 path names the OS in its last component.
    public static func match(path: String) -> MirrorEndpoint? {
        switch path {
        case "/api/public/thor10": return .seed(.cloud)
        case "/api/v1/downloads/thor": return .seed(.asgardV1)
        case "/api/v0/licensing/issue": return .seed(.licenseOnly)
        case "/healthz": return .healthz
        case "/readyz": return .readyz
        default:
            if asgardV0OS(path: path) != nil { return .seed(.asgardV0) }
            return nil
        }
    }
}

/// `/api/v0/downloads/thor/thor10-win` (and the `-linux`/`-macos` siblings) → the OS word.
func asgardV0OS(path: String) -> String? {
    switch path {
    case "/api/v0/downloads/thor/thor10-win": "windows"
    case "/api/v0/downloads/thor/thor10-linux": "linux"
    case "/api/v0/downloads/thor/thor10-macos": "macos"
    default: nil
    }
}

/// One seed request in route-neutral form: what every route's dialect (cloud headers, ASGARD query,
/// licensing form) boils down to before the token check and the desk.
public struct SeedCall: Sendable, Equatable {
    public var route: SeedRoute
    /// Host names as sent; one for download routes, one or more for the license-only route.
    public var hosts: [String]
    public var type: LicenseType
    public var os: String
    public var arch: String
    public var comment: String?
    /// The decoded `token=` query parameter, if present.
    public var queryToken: String?
    /// License-only route: one host asked with `Accept: application/octet-stream` gets the bare `.lic`.
    public var wantsBareLicense: Bool

    /// Builds the desk's request for one of this call's hosts.
    public func licenseRequest(host: String, account: String, clientAddress: String, tokenName: String)
        -> LicenseRequest
    {
        LicenseRequest(
            account: account, hostAsked: host, type: type, os: os, arch: arch, comment: comment,
            clientAddress: clientAddress, clientTokenName: tokenName, route: route)
    }
}

/// Limits on what one request may ask for.
public struct SeedCallLimits: Sendable, Equatable {
    /// Host names in one license-only request (a bulk request beyond this is 400).
    public var maxHostsPerRequest: Int = 1_000
    /// Longest host name accepted as sent (a DNS name is at most 253 characters).
    public var maxHostNameLength: Int = 253
    public var maxCommentLength: Int = 1_024
    public init() {}
}

/// The OS words the mirror knows; a seed sends `windows`, the others are accepted for other platforms.
let knownOS: Set<String> = ["windows", "linux", "macos"]
/// Architecture words; `x64`/`x86_64` are folded into `amd64`, `aarch64` into `arm64`.
func normalizedArch(_ s: String) -> String? {
    switch s.lowercased() {
    case "amd64", "x64", "x86_64": "amd64"
    case "x86", "386", "i386": "x86"
    case "arm64", "aarch64": "arm64"
    default: nil
    }
}

/// Turns a request on a seed route into a `SeedCall`, or the 400 that names what is wrong.
/// Pure: no tokens are checked here and nothing is looked up.
public func parseSeedCall(_ request: HTTPRequest, route: SeedRoute, limits: SeedCallLimits = SeedCallLimits())
    throws(RouteError) -> SeedCall
{
    try parseSeedCall(request, route: route, limits: limits, query: try decodeSeedQuery(request.query))
}

/// The query parameters the seed routes read, the last value of each name (as a repeated key always
/// was), found in one pass over the query's bytes by `decodeSeedQuery`.
struct SeedQuery: Equatable {
    var token: String?
    var hostname: String?
    var type: String?
    var os: String?
    var arch: String?
    var comment: String?
}

/// Checks the whole query (any malformed pair is a 400, as before) and keeps the parameters the routes read.
func decodeSeedQuery(_ query: String?) throws(RouteError) -> SeedQuery {
    guard var q = query, !q.isEmpty else { return SeedQuery() }
    let result = q.withUTF8 { u -> Result<SeedQuery, HTTPParseError> in
        var token, hostname, type, os, arch, comment: UnsafeBufferPointer<UInt8>?
        do throws(HTTPParseError) {
            try scanFormURLEncoded(u) { name, value in
                // Compared decoded, so an escaped name (`%74oken`) is found as before; a mismatch costs a byte or two.
                if formPartEquals(name, "token") { token = value }
                if formPartEquals(name, "hostname") { hostname = value }
                if formPartEquals(name, "type") { type = value }
                if formPartEquals(name, "os") { os = value }
                if formPartEquals(name, "arch") { arch = value }
                if formPartEquals(name, "comment") { comment = value }
            }
        } catch {
            return .failure(error)
        }
        return .success(
            SeedQuery(
                token: token.map(formPartString), hostname: hostname.map(formPartString), type: type.map(formPartString),
                os: os.map(formPartString), arch: arch.map(formPartString), comment: comment.map(formPartString)))
    }
    switch result {
    case .success(let s): return s
    case .failure(let e): throw RouteError(400, "malformed query string: \(e.reason)")
    }
}

/// `parseSeedCall` with the query already decoded (by `decodeSeedQuery`): the router decodes it once for
/// the token and the parameters.
func parseSeedCall(
    _ request: HTTPRequest, route: SeedRoute, limits: SeedCallLimits, query: SeedQuery
) throws(RouteError) -> SeedCall {
    let queryToken = query.token
    switch route {
    case .cloud:
        let h = request.headers
        let host = try requiredHost(h["X-Hostname"].map(trimmedHeaderValue), source: "header X-Hostname", limits)
        let type = try licenseType(
            h["X-Type"].map(trimmedHeaderValue), source: "header X-Type", words: "workstation or server")
        let os = try osWord(h["X-OS"].map(trimmedHeaderValue), source: "header X-OS")
        let arch = try archWord(h["X-Arch"].map(trimmedHeaderValue), source: "header X-Arch")
        let comment = try commentValue(h["X-Comment"], limits)
        return SeedCall(
            route: .cloud, hosts: [host], type: type, os: os, arch: arch, comment: comment, queryToken: queryToken,
            wantsBareLicense: false)
    case .asgardV1, .asgardV0:
        let host = try requiredHost(query.hostname, source: "query parameter hostname", limits)
        let type = try licenseType(query.type, source: "query parameter type", words: "client or server")
        let os: String
        if route == .asgardV0 {
            os = asgardV0OS(path: request.path) ?? "windows"
        } else {
            os = try osWord(query.os, source: "query parameter os")
        }
        let arch = try archWord(query.arch, source: "query parameter arch")
        let comment = try commentValue(query.comment, limits)
        return SeedCall(
            route: route, hosts: [host], type: type, os: os, arch: arch, comment: comment, queryToken: queryToken,
            wantsBareLicense: false)
    case .licenseOnly:
        let form = try decodeLicenseForm(request.body)
        var hosts: [String] = []
        var seen: Set<String> = []
        for value in form.hostnames {
            // A comma-separated value is a bulk request; blank pieces (trailing commas) are skipped.
            for piece in hostNamePieces(value) {
                let name = trimmedHeaderValue(piece)
                if name.isEmpty { continue }
                let host = try requiredHost(name, source: "form field hostnames", limits)
                // The host is ASCII letters, digits, '-', '_' and '.' (checked above); the set of lower-cased
                // names is built only once a second host comes.
                if hosts.isEmpty {
                    hosts.append(host)
                } else {
                    if seen.isEmpty { seen.insert(hosts[0].lowercased()) }
                    if seen.insert(host.lowercased()).inserted { hosts.append(host) }
                }
            }
        }
        guard !hosts.isEmpty else { throw RouteError(400, "form field hostnames is missing or empty") }
        guard hosts.count <= limits.maxHostsPerRequest else {
            throw RouteError(
                400, "too many host names in one request (\(hosts.count), at most \(limits.maxHostsPerRequest))")
        }
        let type = try licenseType(form.type ?? query.type, source: "form field type", words: "workstation or server")
        let comment = try commentValue(form.comment, limits)
        let bare = hosts.count == 1 && wantsOctetStream(request.headers.values("Accept"))
        return SeedCall(
            route: .licenseOnly, hosts: hosts, type: type, os: "", arch: "", comment: comment, queryToken: queryToken,
            wantsBareLicense: bare)
    }
}

/// The pieces of a `hostnames` value: split at `,`, LF and CR as Characters (what the route always did: a
/// CRLF pair is one Character, neither LF nor CR, so it does not split). Plain ASCII without CR splits the
/// same at those bytes, without the grapheme walk.
func hostNamePieces(_ value: String) -> [String] {
    if value.utf8.contains(where: { $0 >= 0x80 || $0 == 0x0D }) {
        return value.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r" }).map { String($0) }
    }
    if !value.utf8.contains(where: { $0 == 0x2C || $0 == 0x0A }) { return value.isEmpty ? [] : [value] }
    return value.utf8.split(whereSeparator: { $0 == 0x2C || $0 == 0x0A }).map { String(Substring($0)) }
}

/// Whether the Accept values ask for `application/octet-stream` and not `application/zip` (case-insensitive).
func wantsOctetStream(_ values: [String]) -> Bool {
    if values.isEmpty { return false }
    var ascii = true
    var octet = false
    var zip = false
    for v in values {
        var v = v
        v.withUTF8 { u in
            if u.contains(where: { $0 >= 0x80 }) { ascii = false }
            octet = octet || containsASCIICaseInsensitive(u, "application/octet-stream")
            zip = zip || containsASCIICaseInsensitive(u, "application/zip")
        }
    }
    if !ascii {
        // Unicode lower-casing can turn a non-ASCII letter into an ASCII one (the Kelvin sign into `k`).
        let accept = values.joined(separator: ",").lowercased()
        return accept.contains("application/octet-stream") && !accept.contains("application/zip")
    }
    return octet && !zip
}

/// Whether `hay` contains `needle` (lower-case ASCII), comparing ASCII letters case-insensitively.
private func containsASCIICaseInsensitive(_ hay: UnsafeBufferPointer<UInt8>, _ needle: StaticString) -> Bool {
    let n = needle.utf8CodeUnitCount
    guard hay.count >= n else { return false }
    let w = needle.utf8Start
    outer: for start in 0...(hay.count - n) {
        for i in 0..<n {
            let c = hay[start + i]
            if ((c >= 65 && c <= 90) ? c | 0x20 : c) != w[i] { continue outer }
        }
        return true
    }
    return false
}

private func requiredHost(_ value: String?, source: String, _ limits: SeedCallLimits) throws(RouteError) -> String {
    guard let v = value, !v.isEmpty else { throw RouteError(400, "\(source) is missing") }
    guard v.utf8.count <= limits.maxHostNameLength else {
        throw RouteError(400, "\(source) is longer than \(limits.maxHostNameLength) characters")
    }
    // Host names are letters, digits, '-', '_' and dots; anything else cannot be a Windows or DNS name.
    // The answer names the cause; it echoes the offending character only when it is printable ASCII.
    for c in v.unicodeScalars {
        let ok =
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_"
            || c == "."
        guard ok else {
            let why: String
            if c.value < 0x20 || c.value == 0x7F {
                why = "contains a control character"
            } else if c.value >= 0x80 {
                why = "contains a non-ASCII character (look-alikes are refused)"
            } else {
                why = "contains the character '\(c)'; only letters, digits, '-', '_' and '.' are allowed"
            }
            throw RouteError(400, "\(source) is not a valid host name: it \(why)")
        }
    }
    guard v.first != ".", v.first != "-" else {
        throw RouteError(400, "\(source) is not a valid host name: it starts with '\(v.first!)'")
    }
    return v
}

private func licenseType(_ value: String?, source: String, words: String) throws(RouteError) -> LicenseType {
    guard let v = value, !v.isEmpty else { throw RouteError(400, "\(source) is missing (\(words))") }
    guard let t = LicenseType(word: v) else { throw RouteError(400, "\(source) must be \(words)") }
    return t
}

/// The OS defaults to `windows` when absent: the only platform the seed script runs on.
private func osWord(_ value: String?, source: String) throws(RouteError) -> String {
    guard let v = value, !v.isEmpty else { return "windows" }
    let w = v.lowercased()
    guard knownOS.contains(w) else { throw RouteError(400, "\(source) must be windows, linux or macos") }
    return w
}

/// The architecture defaults to `amd64` when absent (ASGARD routes do not send one).
private func archWord(_ value: String?, source: String) throws(RouteError) -> String {
    guard let v = value, !v.isEmpty else { return "amd64" }
    guard let a = normalizedArch(v) else { throw RouteError(400, "\(source) must be amd64, x86 or arm64") }
    return a
}

private func commentValue(_ value: String?, _ limits: SeedCallLimits) throws(RouteError) -> String? {
    guard let v = value, !v.isEmpty else { return nil }
    guard v.utf8.count <= limits.maxCommentLength else {
        throw RouteError(400, "comment is longer than \(limits.maxCommentLength) bytes")
    }
    return v
}

/// The license-only form's fields: every `hostnames` / `hostnames[]` value in order, the last `type` and
/// `comment`.
struct LicenseForm {
    var hostnames: [String] = []
    var type: String?
    var comment: String?
}

/// Decodes the license-only form in one pass over the body's bytes. Parsed whatever the Content-Type says:
/// .NET and curl send form encoding, and a body that is not form-encoded fails with a reason.
func decodeLicenseForm(_ body: [UInt8]) throws(RouteError) -> LicenseForm {
    let result = body.withUnsafeBufferPointer { u -> Result<LicenseForm, RouteError> in
        guard isValidUTF8(u) else { return .failure(RouteError(400, "malformed form body: not valid UTF-8")) }
        var form = LicenseForm()
        var type, comment: UnsafeBufferPointer<UInt8>?
        do throws(HTTPParseError) {
            try scanFormURLEncoded(u) { name, value in
                if formPartEquals(name, "hostnames") || formPartEquals(name, "hostnames[]") {
                    form.hostnames.append(formPartString(value))
                } else if formPartEquals(name, "type") {
                    type = value
                } else if formPartEquals(name, "comment") {
                    comment = value
                }
            }
        } catch {
            return .failure(RouteError(400, "malformed form body: \(error.reason)"))
        }
        form.type = type.map(formPartString)
        form.comment = comment.map(formPartString)
        return .success(form)
    }
    return try result.get()
}
