/// What the request parser has for the server next.
public enum ParseEvent: Sendable {
    /// A head with `Expect: 100-continue` and a body still to come is complete: send `100 Continue` now.
    case continueExpected
    case request(HTTPRequest)
    /// The stream is unusable from here on; answer with `error.status` and close.
    case error(HTTPParseError)
}

/// Incremental HTTP/1.1 request parser with hard limits (RFC 9112). Pure: bytes in, events out.
///
/// Feed bytes with `append`, then call `next()` until it returns nil (more bytes needed). Pipelined
/// requests come out in order. After an `.error` the parser is dead: `next()` returns nil and later
/// bytes are dropped. One parser per connection; not thread-safe.
public struct RequestParser {
    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkedBody(ChunkedDecoder)
        case dead
    }

    public let limits: HTTPLimits
    private var buffer = ByteBuffer()
    private var state = State.head
    private var scanner: HeadScanner
    private var pending: HTTPRequest?
    private var body: [UInt8] = []
    /// The error that killed the parser, if any.
    public private(set) var failure: HTTPParseError?

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
        scanner = HeadScanner(
            maxHeadBytes: limits.maxHeadBytes, maxLines: limits.maxHeaderCount + 1,
            tooManyLines: HTTPParseError(.tooManyHeaders, "more than \(limits.maxHeaderCount) header fields"))
    }

    /// Bytes received but not yet turned into events (a partial head, or pipelined requests).
    public var bufferedByteCount: Int { buffer.readableCount }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if case .dead = state { return }
        buffer.append(bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next event, or nil when more bytes are needed (or the parser is dead).
    public mutating func next() -> ParseEvent? {
        if case .dead = state { return nil }
        do {
            return try step()
        } catch {
            state = .dead
            failure = error
            pending = nil
            buffer.release()
            return .error(error)
        }
    }

    private mutating func step() throws(HTTPParseError) -> ParseEvent? {
        while true {
            switch state {
            case .dead:
                return nil
            case .head:
                skipLeadingEmptyLines()
                var sc = scanner
                let found = try buffer.withReadable { (raw) throws(HTTPParseError) -> Int? in try sc.scan(raw) }
                scanner = sc
                guard let headLength = found else { return nil }
                scanner.reset()
                let limits = self.limits
                let (request, framing, expectsContinue) = try buffer.withReadable {
                    (raw) throws(HTTPParseError) in
                    try Self.parseHead(UnsafeRawBufferPointer(rebasing: raw[0..<headLength]), limits)
                }
                buffer.consume(headLength)
                switch framing {
                case .none:
                    return .request(request)
                case .length(let n):
                    pending = request
                    // A client can announce a large body and send nothing: grow with the bytes that arrive.
                    body.reserveCapacity(min(n, 64 * 1024))
                    state = .fixedBody(remaining: n)
                case .chunked:
                    pending = request
                    state = .chunkedBody(
                        ChunkedDecoder(
                            maxBodyBytes: limits.maxBodyBytes, maxTrailerBytes: limits.maxHeadBytes,
                            maxTrailerCount: limits.maxHeaderCount))
                }
                if expectsContinue { return .continueExpected }
            case .fixedBody(let remaining):
                let n = min(remaining, buffer.readableCount)
                if n > 0 {
                    var b = takeBody()
                    buffer.withReadable { raw in b.append(contentsOf: raw[0..<n]) }
                    body = b
                    buffer.consume(n)
                }
                if n < remaining {
                    state = .fixedBody(remaining: remaining - n)
                    return nil
                }
                state = .head
                return .request(finishRequest())
            case .chunkedBody(var decoder):
                state = .dead  // avoid a copy of the decoder while it is mutated
                var b = takeBody()
                let (consumed, output) = try buffer.withReadable {
                    (raw) throws(HTTPParseError) -> (Int, ChunkedDecoder.Output) in
                    let r = try decoder.decode(raw)
                    if case .data(let range) = r.output { b.append(contentsOf: raw[range]) }
                    return r
                }
                body = b
                buffer.consume(consumed)
                switch output {
                case .needMore:
                    state = .chunkedBody(decoder)
                    return nil
                case .data:
                    state = .chunkedBody(decoder)
                case .done:
                    state = .head
                    return .request(finishRequest())
                }
            }
        }
    }

    private mutating func takeBody() -> [UInt8] {
        var b: [UInt8] = []
        swap(&b, &body)
        return b
    }

    private mutating func finishRequest() -> HTTPRequest {
        var r = pending.take()!
        r.body = takeBody()
        return r
    }

    /// RFC 9112 §2.2: a server should ignore at least one empty line before a request line.
    private mutating func skipLeadingEmptyLines() {
        while buffer.readableCount >= 2
            && buffer.withReadable({ $0[0] == 0x0D && $0[1] == 0x0A })
        {
            buffer.consume(2)
            // The scanner's offsets are relative to the old start.
            scanner.reset()
        }
    }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    private static func parseHead(_ buf: UnsafeRawBufferPointer, _ limits: HTTPLimits) throws(HTTPParseError) -> (
        HTTPRequest, Framing, Bool
    ) {
        // The scanner guarantees CRLF line ends and a final empty line.
        var lineEnd = 0
        while buf[lineEnd] != 0x0D || buf[lineEnd + 1] != 0x0A { lineEnd += 1 }
        let (method, target, minor) = try parseRequestLine(buf, 0..<lineEnd, limits)

        // Room for a typical head's fields up front (no regrowth at 1, 2, 4 and 8 fields).
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(12)
        var contentLength: Int?
        var contentLengthCount = 0
        var transferEncoding: [String] = []
        var hostCount = 0
        var connection: [String] = []
        var expect: [String] = []
        var p = lineEnd + 2
        while true {
            var e = p
            while buf[e] != 0x0D || buf[e + 1] != 0x0A { e += 1 }
            if e == p { break }
            let (nameRange, valueRange) = try parseFieldLine(buf, p..<e)
            let name = makeString(buf, nameRange)
            let value = makeString(buf, valueRange)
            switch nameRange.count {
            case 4 where equalsLowercase(buf, nameRange, "host"):
                hostCount += 1
            case 6 where equalsLowercase(buf, nameRange, "expect"):
                expect.append(value)
            case 10 where equalsLowercase(buf, nameRange, "connection"):
                connection.append(value)
            case 14 where equalsLowercase(buf, nameRange, "content-length"):
                contentLengthCount += 1
                contentLength = try parseContentLength(buf, valueRange, cap: limits.maxBodyBytes)
            case 17 where equalsLowercase(buf, nameRange, "transfer-encoding"):
                transferEncoding.append(value)
            default:
                break
            }
            fields.append((name, value))
            p = e + 2
        }

        if minor == 1 {
            if hostCount == 0 { throw HTTPParseError(.malformed, "HTTP/1.1 request without Host header") }
        }
        if hostCount > 1 { throw HTTPParseError(.malformed, "more than one Host header") }

        let framing: Framing
        if !transferEncoding.isEmpty {
            if contentLengthCount > 0 {
                throw HTTPParseError(.smuggling, "both Content-Length and Transfer-Encoding present")
            }
            let codings = transferEncoding.flatMap(listTokens)
            guard codings == ["chunked"] else {
                throw HTTPParseError(.smuggling, "Transfer-Encoding other than chunked")
            }
            if minor == 0 {
                throw HTTPParseError(.smuggling, "Transfer-Encoding in an HTTP/1.0 request")
            }
            framing = .chunked
        } else if let n = contentLength {
            if contentLengthCount > 1 { throw HTTPParseError(.smuggling, "more than one Content-Length header") }
            if n > limits.maxBodyBytes {
                throw HTTPParseError(.bodyTooLarge, "Content-Length exceeds \(limits.maxBodyBytes) bytes")
            }
            framing = n == 0 ? .none : .length(n)
        } else {
            framing = .none
        }

        var expectsContinue = false
        if !expect.isEmpty {
            let tokens = expect.flatMap(listTokens)
            guard tokens == ["100-continue"] else {
                throw HTTPParseError(.malformed, "unsupported Expect value")
            }
            // RFC 9110 §10.1.1: an HTTP/1.0 client cannot handle 100 Continue.
            if minor == 1 {
                if case .none = framing {} else { expectsContinue = true }
            }
        }

        var keepAlive = minor == 1
        for token in connection.flatMap(listTokens) {
            if token == "close" {
                keepAlive = false
                break
            }
            if token == "keep-alive" { keepAlive = true }
        }

        let request = HTTPRequest(
            parsedMethod: method, target: target, versionMinor: minor, headers: HTTPHeaders(fields), keepAlive: keepAlive)
        return (request, framing, expectsContinue)
    }

    private static func parseRequestLine(
        _ buf: UnsafeRawBufferPointer, _ line: Range<Int>, _ limits: HTTPLimits
    ) throws(HTTPParseError) -> (
        String, String, Int
    ) {
        var p = line.lowerBound
        while p < line.upperBound && isTokenByte(buf[p]) { p += 1 }
        guard p > line.lowerBound, p < line.upperBound, buf[p] == 0x20 else {
            throw HTTPParseError(.malformed, "malformed request line: bad method")
        }
        let methodRange = line.lowerBound..<p
        p += 1
        let targetStart = p
        while p < line.upperBound && buf[p] > 0x20 && buf[p] < 0x7F { p += 1 }
        guard p > targetStart, p < line.upperBound, buf[p] == 0x20 else {
            throw HTTPParseError(.malformed, "malformed request line: bad request target")
        }
        let targetRange = targetStart..<p
        p += 1
        let v = p..<line.upperBound
        guard v.count == 8, buf[v.lowerBound] == UInt8(ascii: "H"), buf[v.lowerBound + 1] == UInt8(ascii: "T"),
            buf[v.lowerBound + 2] == UInt8(ascii: "T"), buf[v.lowerBound + 3] == UInt8(ascii: "P"),
            buf[v.lowerBound + 4] == UInt8(ascii: "/"), buf[v.lowerBound + 6] == UInt8(ascii: "."),
            let major = decimalDigit(buf[v.lowerBound + 5]), let minor = decimalDigit(buf[v.lowerBound + 7])
        else {
            throw HTTPParseError(.malformed, "malformed request line: bad HTTP version")
        }
        guard major == 1, minor <= 1 else {
            throw HTTPParseError(.versionNotSupported, "only HTTP/1.0 and HTTP/1.1 are supported")
        }
        let method = makeString(buf, methodRange)
        guard limits.methods.contains(method) else {
            throw HTTPParseError(.methodNotImplemented, "method not implemented")
        }
        let isAsterisk = targetRange.count == 1 && buf[targetRange.lowerBound] == UInt8(ascii: "*")
        if isAsterisk {
            guard method == "OPTIONS" else {
                throw HTTPParseError(.malformed, "asterisk request target is only allowed with OPTIONS")
            }
        } else if buf[targetRange.lowerBound] != UInt8(ascii: "/") {
            throw HTTPParseError(.malformed, "request target is not in origin form")
        }
        return (method, makeString(buf, targetRange), minor)
    }
}

@inline(__always) private func decimalDigit(_ b: UInt8) -> Int? {
    b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") ? Int(b &- UInt8(ascii: "0")) : nil
}
