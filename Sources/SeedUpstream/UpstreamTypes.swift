public import SeedHTTP

/// An `https://host[:port]/path?query` address of an upstream service.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    /// Origin-form request target: path plus optional `?query`.
    public var target: String

    public init(host: String, port: UInt16 = 443, target: String = "/") {
        self.host = host
        self.port = port
        self.target = target.isEmpty ? "/" : target
    }

    /// Parses `https://host[:port][/target]` (IPv6 in brackets); nil for any other scheme or a malformed URL.
    public init?(string: String) {
        guard string.lowercased().hasPrefix("https://") else { return nil }
        let rest = string.dropFirst("https://".count)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<slash])
        var target = String(rest[slash...])
        if target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@"), let (host, port) = parseHostPort(authority, defaultPort: 443) else {
            return nil
        }
        self.init(host: host, port: port, target: target)
    }

    /// The same service with another request target.
    public func with(target: String) -> UpstreamURL { UpstreamURL(host: host, port: port, target: target) }

    /// `route` (starting with `/`) below this URL's path: `https://h/prefix` + `/api/x` → `/prefix/api/x`.
    public func appending(route: String) -> UpstreamURL {
        var base = String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        while base.hasSuffix("/") { base.removeLast() }
        return with(target: base + route)
    }

    /// The address without the query (query values may carry tokens).
    public var description: String {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        return "https://\(authority)\(path)"
    }

    var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == 443 ? h : "\(h):\(port)"
    }
}

/// A corporate HTTP proxy reached with `CONNECT`: `http://[user:pass@]host:port`.
public struct UpstreamProxy: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var username: String?
    public var password: String?

    public init(host: String, port: UInt16, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
    }

    /// Parses `http://[user:pass@]host[:port]` (percent-encoded credentials); nil when malformed.
    public init?(url: String) {
        guard url.lowercased().hasPrefix("http://") else { return nil }
        var rest = String(url.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest.removeLast() }
        var user: String?
        var pass: String?
        if let at = rest.lastIndex(of: "@") {
            let cred = rest[..<at]
            rest = String(rest[rest.index(after: at)...])
            if let colon = cred.firstIndex(of: ":") {
                user = percentDecoded(String(cred[..<colon]))
                pass = percentDecoded(String(cred[cred.index(after: colon)...]))
            } else {
                user = percentDecoded(String(cred))
                pass = ""
            }
            guard user != nil, pass != nil else { return nil }
        }
        guard !rest.contains("/"), let (host, port) = parseHostPort(rest, defaultPort: 8080) else { return nil }
        self.init(host: host, port: port, username: user, password: pass)
    }

    /// `host:port` only: credentials never appear in text.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// How the upstream client connects: trust, proxy, timeouts and size bounds.
public struct UpstreamConfiguration: Sendable {
    /// PEM file of trusted CAs; nil means the system store (`/etc/ssl/certs`).
    public var caFile: String?
    public var proxy: UpstreamProxy?
    /// Host name to connect address overrides (`cloud.test` → `127.0.0.1`), like curl's `--resolve`.
    /// The certificate is still checked against the host name of the URL.
    public var resolve: [String: String] = [:]
    public var connectTimeout: Duration = .seconds(15)
    /// Longest wait for any single read or write once connected (a stalled peer).
    public var readTimeout: Duration = .seconds(60)
    /// Largest body `send` accepts.
    public var maxBodyBytes: Int = 16 * 1024 * 1024
    /// Largest body a `stream` delivers before failing.
    public var maxStreamBytes: UInt64 = 4 * 1024 * 1024 * 1024
    /// Largest response head.
    public var maxHeadBytes: Int = 64 * 1024
    public var userAgent: String = "SeedMirror/1"

    public init(caFile: String? = nil, proxy: UpstreamProxy? = nil) {
        self.caFile = caFile
        self.proxy = proxy
    }
}

/// One request to an upstream. Header values and the query never reach a log or an error (they carry tokens).
public struct UpstreamRequest: Sendable {
    public var method: String
    public var url: UpstreamURL
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String = "GET", url: UpstreamURL, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// Status line and headers of an upstream answer.
public struct UpstreamResponseHead: Sendable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    /// Declared body length; nil for chunked or read-until-close bodies.
    public var contentLength: UInt64?

    public init(status: Int, reason: String, headers: HTTPHeaders, contentLength: UInt64?) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.contentLength = contentLength
    }
}

/// A complete upstream answer with its (bounded) body. Any status is returned; callers decide.
public struct UpstreamResponse: Sendable {
    public var head: UpstreamResponseHead
    public var body: [UInt8]

    public init(head: UpstreamResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }

    public var status: Int { head.status }
    public var headers: HTTPHeaders { head.headers }
}

/// Why an upstream call failed, and whether the request may have been acted upon.
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case invalidRequest
        case nameResolution
        case connect
        case connectTimeout
        /// The proxy refused `CONNECT` (its status) or broke the exchange (nil).
        case proxy(status: Int?)
        case tls
        /// The peer's certificate chain or name did not verify.
        case certificate
        /// No byte for longer than the read timeout after the request left.
        case timeout
        /// The connection closed or reset before the answer was complete.
        case connectionLost
        case malformedResponse
        case bodyTooLarge(limit: UInt64)
        /// The upstream answered with a status the caller treats as failure.
        case httpStatus(Int)
        /// A `200` whose body is an error text (`Error: HTTP-401`, status 401) or too short to be a license.
        case errorBody(status: Int?)
        case cancelled
    }

    /// What the caller may assume about the upstream's side effects.
    public enum Stage: Sendable, Equatable {
        /// Nothing reached the upstream application: safe to try again.
        case notSent
        /// The request left but no complete answer came: a license may have been spent.
        case outcomeUnknown
        /// A complete (or at least a definite) answer came back.
        case answered
    }

    public var kind: Kind
    public var stage: Stage
    /// `https://host/path` without query, or the proxy's `host:port`.
    public var endpoint: String
    /// One line naming the cause; never holds a token, key or proxy password.
    public var detail: String

    public init(_ kind: Kind, stage: Stage, endpoint: String, detail: String) {
        self.kind = kind
        self.stage = stage
        self.endpoint = endpoint
        self.detail = detail
    }

    /// The status with which upstream refused, when it answered with one (in the status line or in an
    /// `Error: HTTP-NNN` body): nothing was issued.
    public var refusalStatus: Int? {
        switch kind {
        case .httpStatus(let s): s
        case .errorBody(let s): s
        default: nil
        }
    }

    public var description: String {
        let what: String
        switch kind {
        case .invalidRequest: what = "invalid upstream request"
        case .nameResolution: what = "cannot resolve upstream host"
        case .connect: what = "cannot connect to upstream"
        case .connectTimeout: what = "connecting to upstream timed out"
        case .proxy(let status?): what = "proxy refused CONNECT with status \(status)"
        case .proxy(nil): what = "proxy CONNECT failed"
        case .tls: what = "TLS handshake with upstream failed"
        case .certificate: what = "upstream certificate did not verify"
        case .timeout: what = "upstream stopped answering"
        case .connectionLost: what = "upstream connection lost before the answer was complete"
        case .malformedResponse: what = "upstream sent a malformed answer"
        case .bodyTooLarge(let limit): what = "upstream body exceeds the \(limit)-byte limit"
        case .httpStatus(let s): what = "upstream answered \(s)"
        case .errorBody(let status?): what = "upstream answered 200 with error \(status) in the body instead of a license"
        case .errorBody(nil): what = "upstream answered 200 with a body that is not a license"
        case .cancelled: what = "upstream transfer cancelled"
        }
        let stageText: String
        switch stage {
        case .notSent: stageText = "request not sent"
        case .outcomeUnknown: stageText = "outcome unknown, a license may have been spent"
        case .answered: stageText = "answered"
        }
        return "\(what) (\(endpoint)): \(detail) [\(stageText)]"
    }
}

func parseHostPort(_ s: String, defaultPort: UInt16) -> (String, UInt16)? {
    if s.hasPrefix("[") {
        guard let close = s.firstIndex(of: "]") else { return nil }
        let host = String(s[s.index(after: s.startIndex)..<close])
        let rest = s[s.index(after: close)...]
        if rest.isEmpty { return host.isEmpty ? nil : (host, defaultPort) }
        guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()), p > 0, !host.isEmpty else { return nil }
        return (host, p)
    }
    if let colon = s.lastIndex(of: ":") {
        let host = String(s[..<colon])
        guard let p = UInt16(s[s.index(after: colon)...]), p > 0, !host.isEmpty, !host.contains(":") else {
            return nil
        }
        return (host, p)
    }
    guard !s.isEmpty else { return nil }
    return (s, defaultPort)
}

func percentDecoded(_ s: String) -> String? {
    var out: [UInt8] = []
    var bytes = Array(s.utf8)[...]
    while let b = bytes.popFirst() {
        if b == UInt8(ascii: "%") {
            guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else {
                return nil
            }
            out.append(v)
            bytes = bytes.dropFirst(2)
        } else {
            out.append(b)
        }
    }
    return String(validating: out, as: UTF8.self)
}
