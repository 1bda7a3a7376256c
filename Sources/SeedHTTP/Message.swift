/// Header fields in arrival order; names compare case-insensitively (RFC 9110 §5.1).
public struct HTTPHeaders: Sendable, Sequence {
    public private(set) var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }

    public var count: Int { fields.count }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// The first value for `name`, if any.
    public subscript(_ name: String) -> String? {
        for f in fields where f.name.utf8.count == name.utf8.count && fieldNamesEqual(f.name, name) {
            return f.value
        }
        return nil
    }

    /// Every value for `name`, in order.
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        for f in fields where fieldNamesEqual(f.name, name) { out.append(f.value) }
        return out
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

/// `a.lowercased() == b.lowercased()`, compared in place when both are ASCII (every name the parser
/// accepts is), without building lower-case copies.
public func fieldNamesEqual(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    let ascii = a.withUTF8 { ua in
        b.withUTF8 { ub -> Bool? in
            if ua.contains(where: { $0 >= 0x80 }) || ub.contains(where: { $0 >= 0x80 }) { return nil }
            guard ua.count == ub.count else { return false }
            for i in 0..<ua.count {
                let x = ua[i]
                let y = ub[i]
                if x == y { continue }
                let lx = x >= 0x41 && x <= 0x5A ? x | 0x20 : x
                let ly = y >= 0x41 && y <= 0x5A ? y | 0x20 : y
                if lx != ly { return false }
            }
            return true
        }
    }
    if let ascii { return ascii }
    return a.lowercased() == b.lowercased()
}

/// A complete, validated HTTP/1.1 request as handed to a handler.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target exactly as sent (origin form: path plus optional `?query`).
    public var target: String
    /// Percent-encoded path part of the target (before `?`).
    public var path: String
    /// Raw query string after `?`, without the `?`; nil when absent.
    public var query: String?
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    public var versionMinor: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whether the connection may stay open after the response (version, `Connection` header).
    public var keepAlive: Bool

    public init(
        method: String, target: String, versionMinor: Int = 1, headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = [], keepAlive: Bool = true
    ) {
        self.method = method
        self.target = target
        if let q = target.firstIndex(of: "?") {
            self.path = String(target[..<q])
            self.query = String(target[target.index(after: q)...])
        } else {
            self.path = target
            self.query = nil
        }
        self.versionMinor = versionMinor
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }
}

/// Why a request was refused before it reached a handler; `status` is what the client is told.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case malformed  // 400
        case headTooLarge  // 431
        case tooManyHeaders  // 431
        case bodyTooLarge  // 413
        case smuggling  // 400: CL with TE, conflicting CL, unsupported TE
        case methodNotImplemented  // 501
        case versionNotSupported  // 505
    }
    public var kind: Kind
    /// One line that names the cause, safe to show the client (never echoes header values).
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var status: Int {
        switch kind {
        case .malformed, .smuggling: 400
        case .headTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .methodNotImplemented: 501
        case .versionNotSupported: 505
        }
    }

    /// After any parse error the byte stream cannot be trusted, so the connection closes.
    public var closesConnection: Bool { true }

    public var description: String { "\(status) \(reason)" }
}

/// Hard limits of the request parser. Every one is configurable.
public struct HTTPLimits: Sendable, Equatable {
    /// Request line plus all header lines, including CRLFs.
    public var maxHeadBytes: Int = 16 * 1024
    public var maxHeaderCount: Int = 100
    public var maxBodyBytes: Int = 1024 * 1024
    /// Methods the server implements; others get 501.
    public var methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]

    public init() {}
}

/// The standard reason phrase for a status code.
public func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: "Continue"
    case 200: "OK"
    case 204: "No Content"
    case 206: "Partial Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 408: "Request Timeout"
    case 409: "Conflict"
    case 411: "Length Required"
    case 412: "Precondition Failed"
    case 413: "Content Too Large"
    case 416: "Range Not Satisfiable"
    case 417: "Expectation Failed"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    case 505: "HTTP Version Not Supported"
    default: "Status \(status)"
    }
}

extension HTTPRequest {
    /// Built by the parser, which has already split the target: skips the character-level split.
    init(parsedMethod method: String, target: String, versionMinor: Int, headers: HTTPHeaders, keepAlive: Bool) {
        self.method = method
        self.target = target
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            self.path = String(target[..<q])
            self.query = String(target[target.utf8.index(after: q)...])
        } else {
            self.path = target
            self.query = nil
        }
        self.versionMinor = versionMinor
        self.headers = headers
        self.body = []
        self.keepAlive = keepAlive
    }
}
