// TEMPORARY stand-in for the SeedHTTP parser another helper is writing; deleted when it lands on main.
// Only what the transport needs to run: Content-Length and chunked bodies, Expect: 100-continue, limits.

public enum ParseEvent: Sendable {
    case continueExpected
    case request(HTTPRequest)
    case error(HTTPParseError)
}

public struct RequestParser: Sendable {
    private var buffer: [UInt8] = []
    private var head: (HTTPRequest, Int)?  // request, body length
    private var sentContinue = false
    private var failed = false
    let limits: HTTPLimits

    public init(limits: HTTPLimits) { self.limits = limits }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) { buffer.append(contentsOf: bytes) }

    public var bufferedByteCount: Int { buffer.count }

    public mutating func next() -> ParseEvent? {
        if failed { return nil }
        if head == nil {
            guard let end = findHeadEnd() else {
                if buffer.count > limits.maxHeadBytes { return fail(.headTooLarge, "request head is larger than the limit") }
                return nil
            }
            if end > limits.maxHeadBytes { return fail(.headTooLarge, "request head is larger than the limit") }
            let text = String(decoding: buffer[0..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
            let start = lines.removeFirst().split(separator: " ")
            guard start.count == 3, start[2] == "HTTP/1.1" || start[2] == "HTTP/1.0" else {
                return fail(.malformed, "malformed request line")
            }
            guard limits.methods.contains(String(start[0])) else {
                return fail(.methodNotImplemented, "method not implemented")
            }
            if lines.count > limits.maxHeaderCount { return fail(.tooManyHeaders, "too many header fields") }
            var headers = HTTPHeaders()
            for l in lines {
                guard let c = l.firstIndex(of: ":") else { return fail(.malformed, "malformed header line") }
                headers.add(String(l[..<c]), String(l[l.index(after: c)...]).trimmingSpaces)
            }
            let minor = start[2] == "HTTP/1.1" ? 1 : 0
            let conn = headers["Connection"]?.lowercased()
            let keep = minor == 1 ? conn != "close" : conn == "keep-alive"
            var length = Int(headers["Content-Length"] ?? "0") ?? -2
            if headers["Transfer-Encoding"]?.lowercased() == "chunked" { length = -1 }
            if length < -1 { return fail(.malformed, "invalid Content-Length") }
            if length > limits.maxBodyBytes { return fail(.bodyTooLarge, "request body is larger than the limit") }
            head = (
                HTTPRequest(
                    method: String(start[0]), target: String(start[1]), versionMinor: minor, headers: headers,
                    keepAlive: keep), length
            )
            sentContinue = false
            if headers["Expect"]?.lowercased() == "100-continue", buffer.isEmpty, length != 0 {
                sentContinue = true
                return .continueExpected
            }
        }
        guard var (request, length) = head else { return nil }
        if length == -1 {
            var body: [UInt8] = []
            var i = 0
            while true {
                guard let lineEnd = find([13, 10], from: i) else { return nil }
                guard let size = Int(String(decoding: buffer[i..<lineEnd], as: UTF8.self), radix: 16) else {
                    return fail(.malformed, "bad chunk size")
                }
                if body.count + size > limits.maxBodyBytes { return fail(.bodyTooLarge, "request body too large") }
                let dataStart = lineEnd + 2
                if size == 0 {
                    guard buffer.count >= dataStart + 2 else { return nil }
                    buffer.removeFirst(dataStart + 2)
                    break
                }
                guard buffer.count >= dataStart + size + 2 else { return nil }
                body += buffer[dataStart..<dataStart + size]
                i = dataStart + size + 2
            }
            request.body = body
        } else {
            guard buffer.count >= length else { return nil }
            request.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        head = nil
        return .request(request)
    }

    private mutating func fail(_ kind: HTTPParseError.Kind, _ reason: String) -> ParseEvent {
        failed = true
        return .error(HTTPParseError(kind, reason))
    }

    private func findHeadEnd() -> Int? { find([13, 10, 13, 10], from: 0) }

    private func find(_ needle: [UInt8], from: Int) -> Int? {
        guard buffer.count >= needle.count + from else { return nil }
        var i = from
        while i + needle.count <= buffer.count {
            if buffer[i] == needle[0] && Array(buffer[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

public func encodeResponseHead(status: Int, headers: HTTPHeaders, into out: inout [UInt8]) {
    out.append(contentsOf: "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n".utf8)
    for f in headers.fields {
        out.append(contentsOf: f.name.utf8)
        out.append(contentsOf: ": ".utf8)
        out.append(contentsOf: f.value.utf8)
        out.append(contentsOf: "\r\n".utf8)
    }
    out.append(contentsOf: "\r\n".utf8)
}

public enum RangeResult: Sendable, Equatable {
    case full
    case partial(start: UInt64, end: UInt64)
    case unsatisfiable
}

public func ifRangeMatches(_ ifRange: String?, etag: String?) -> Bool {
    guard let ifRange else { return true }
    guard let etag, etag.hasPrefix("\""), ifRange.hasPrefix("\"") else { return false }
    return ifRange == etag
}

public func evaluateRange(_ header: String?, length: UInt64) -> RangeResult {
    guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .full }
    let spec = header.dropFirst(6)
    guard let dash = spec.firstIndex(of: "-") else { return .full }
    let a = spec[..<dash]
    let b = spec[spec.index(after: dash)...]
    if a.isEmpty {
        guard let n = UInt64(b), n > 0 else { return .unsatisfiable }
        if length == 0 { return .unsatisfiable }
        return .partial(start: length - min(n, length), end: length - 1)
    }
    guard let s = UInt64(a) else { return .full }
    if s >= length { return .unsatisfiable }
    let e = b.isEmpty ? length - 1 : min(UInt64(b) ?? (length - 1), length - 1)
    if e < s { return .full }
    return .partial(start: s, end: e)
}

public func redactTokens(inTarget target: String) -> String {
    guard let q = target.firstIndex(of: "?") else { return target }
    let parts = target[target.index(after: q)...].split(separator: "&", omittingEmptySubsequences: false).map {
        p -> String in p.hasPrefix("token=") ? "token=REDACTED" : String(p)
    }
    return String(target[..<q]) + "?" + parts.joined(separator: "&")
}
