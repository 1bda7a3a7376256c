/// What the response parser has for the client next.
public enum ResponseEvent: Sendable {
    /// A final response head; interim 1xx heads are skipped.
    case head(status: Int, headers: HTTPHeaders)
    /// Body bytes as they arrive (de-chunked); a large body comes as many events.
    case body([UInt8])
    /// The response is complete; a next response may follow on the same connection if `canReuseConnection`.
    case end
    /// The stream is unusable from here on; close the connection.
    case error(HTTPParseError)
}

/// Incremental HTTP/1.1 response parser (RFC 9112 §4–7) for the upstream client and tests.
///
/// Bodies are framed by Content-Length, chunked coding or the end of the connection and are streamed,
/// never buffered whole. Set `expectBody = false` before the response to a HEAD request arrives; 1xx,
/// 204 and 304 responses never have a body. Call `finishOnClose()` when the peer closes: a
/// close-delimited body then ends, any other unfinished response becomes an error.
public struct ResponseParser {
    private enum State {
        case head
        case noBody
        case fixedBody(remaining: Int)
        case chunkedBody(ChunkedDecoder)
        case untilClose
        case closed
        case dead
    }

    public let maxHeadBytes: Int
    public let maxHeaderCount: Int
    /// Whether the response to the request now outstanding may have a body (false for HEAD).
    public var expectBody = true
    /// Whether the connection may carry another request after the last response that ended.
    public private(set) var canReuseConnection = false
    private var buffer = ByteBuffer()
    private var state = State.head
    private var scanner: HeadScanner
    private var eof = false
    private var keepAlive = false

    public init(maxHeadBytes: Int = 64 * 1024, maxHeaderCount: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        scanner = HeadScanner(
            maxHeadBytes: maxHeadBytes, maxLines: maxHeaderCount + 1,
            tooManyLines: HTTPParseError(.tooManyHeaders, "more than \(maxHeaderCount) header fields in response"))
    }

    public var bufferedByteCount: Int { buffer.readableCount }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .dead, .closed: return
        default: if !eof { buffer.append(bytes) }
        }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The peer closed the connection: no more bytes will come.
    public mutating func finishOnClose() { eof = true }

    /// The next event, or nil when more bytes are needed (or nothing more will come).
    public mutating func next() -> ResponseEvent? {
        do {
            return try step()
        } catch {
            state = .dead
            buffer.release()
            return .error(error)
        }
    }

    private mutating func step() throws(HTTPParseError) -> ResponseEvent? {
        while true {
            switch state {
            case .dead, .closed:
                return nil
            case .head:
                var sc = scanner
                let found = try buffer.withReadable { (raw) throws(HTTPParseError) -> Int? in try sc.scan(raw) }
                scanner = sc
                guard let headLength = found else {
                    if eof {
                        if buffer.readableCount == 0 {
                            state = .closed
                            return nil
                        }
                        throw HTTPParseError(.malformed, "connection closed in the middle of a response head")
                    }
                    return nil
                }
                scanner.reset()
                let expectBody = self.expectBody
                let head = try buffer.withReadable { (raw) throws(HTTPParseError) in
                    try Self.parseHead(UnsafeRawBufferPointer(rebasing: raw[0..<headLength]), expectBody: expectBody)
                }
                buffer.consume(headLength)
                guard let head else { continue }  // interim 1xx
                keepAlive = head.keepAlive
                state = head.state
                return .head(status: head.status, headers: head.headers)
            case .noBody:
                return finish()
            case .fixedBody(let remaining):
                let n = min(remaining, buffer.readableCount)
                if n == 0 {
                    if eof { throw HTTPParseError(.malformed, "connection closed before the body was complete") }
                    return nil
                }
                let bytes = buffer.withReadable { Array($0[0..<n]) }
                buffer.consume(n)
                state = n == remaining ? .noBody : .fixedBody(remaining: remaining - n)
                return .body(bytes)
            case .chunkedBody(var decoder):
                state = .dead
                let (consumed, output, bytes) = try buffer.withReadable {
                    (raw) throws(HTTPParseError) -> (Int, ChunkedDecoder.Output, [UInt8]) in
                    let r = try decoder.decode(raw)
                    if case .data(let range) = r.output { return (r.consumed, r.output, Array(raw[range])) }
                    return (r.consumed, r.output, [])
                }
                buffer.consume(consumed)
                switch output {
                case .needMore:
                    if eof {
                        throw HTTPParseError(.malformed, "connection closed before the chunked body was complete")
                    }
                    state = .chunkedBody(decoder)
                    return nil
                case .data:
                    state = .chunkedBody(decoder)
                    return .body(bytes)
                case .done:
                    return finish()
                }
            case .untilClose:
                if buffer.readableCount > 0 {
                    let bytes = buffer.withReadable { Array($0) }
                    buffer.consume(bytes.count)
                    return .body(bytes)
                }
                if eof {
                    state = .closed
                    canReuseConnection = false
                    return .end
                }
                return nil
            }
        }
    }

    private mutating func finish() -> ResponseEvent {
        canReuseConnection = keepAlive
        state = keepAlive ? .head : .closed
        return .end
    }

    private struct Head {
        var status: Int
        var headers: HTTPHeaders
        var state: State
        var keepAlive: Bool
    }

    /// The parsed head, or nil for an interim 1xx response that is to be skipped.
    private static func parseHead(_ buf: UnsafeRawBufferPointer, expectBody: Bool) throws(HTTPParseError) -> Head? {
        var lineEnd = 0
        while buf[lineEnd] != 0x0D || buf[lineEnd + 1] != 0x0A { lineEnd += 1 }
        // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; the SP before an empty reason is tolerated.
        guard lineEnd >= 12, buf[0] == UInt8(ascii: "H"), buf[1] == UInt8(ascii: "T"), buf[2] == UInt8(ascii: "T"),
            buf[3] == UInt8(ascii: "P"), buf[4] == UInt8(ascii: "/"), buf[5] == UInt8(ascii: "1"),
            buf[6] == UInt8(ascii: "."), buf[7] == UInt8(ascii: "0") || buf[7] == UInt8(ascii: "1"),
            buf[8] == 0x20, (9..<12).allSatisfy({ buf[$0] >= UInt8(ascii: "0") && buf[$0] <= UInt8(ascii: "9") }),
            lineEnd == 12 || buf[12] == 0x20
        else {
            throw HTTPParseError(.malformed, "malformed status line")
        }
        for p in 12..<lineEnd where !isFieldValueByte(buf[p]) {
            throw HTTPParseError(.malformed, "control character in status line")
        }
        let minor = Int(buf[7] - UInt8(ascii: "0"))
        let status = (9..<12).reduce(0) { $0 * 10 + Int(buf[$1] - UInt8(ascii: "0")) }
        guard status >= 100 else { throw HTTPParseError(.malformed, "status code below 100") }

        var headers = HTTPHeaders()
        var contentLength: Int?
        var chunked = false
        var connection: [String] = []
        var p = lineEnd + 2
        while true {
            var e = p
            while buf[e] != 0x0D || buf[e + 1] != 0x0A { e += 1 }
            if e == p { break }
            let (nameRange, valueRange) = try parseFieldLine(buf, p..<e)
            let value = makeString(buf, valueRange)
            if equalsLowercase(buf, nameRange, "content-length") {
                // Identical repeats (`5, 5` or two fields) are tolerated from a server (RFC 9112 §6.3).
                var n: Int?
                for item in value.split(separator: ",") {
                    let t = item.trimmingOWS()
                    guard !t.isEmpty, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                        throw HTTPParseError(.malformed, "Content-Length is not a non-negative decimal number")
                    }
                    guard t.utf8.count <= 18, let v = Int(t) else {
                        throw HTTPParseError(.malformed, "Content-Length is too large")
                    }
                    if let prior = n ?? contentLength, prior != v {
                        throw HTTPParseError(.smuggling, "conflicting Content-Length values")
                    }
                    n = v
                }
                guard let n else { throw HTTPParseError(.malformed, "empty Content-Length") }
                contentLength = n
            } else if equalsLowercase(buf, nameRange, "transfer-encoding") {
                guard listTokens(value) == ["chunked"], !chunked else {
                    throw HTTPParseError(.smuggling, "Transfer-Encoding other than chunked")
                }
                chunked = true
            } else if equalsLowercase(buf, nameRange, "connection") {
                connection.append(value)
            }
            headers.add(makeString(buf, nameRange), value)
            p = e + 2
        }

        if status < 200 {
            if status == 101 { throw HTTPParseError(.malformed, "unexpected 101 Switching Protocols") }
            return nil
        }
        if chunked && contentLength != nil {
            throw HTTPParseError(.smuggling, "both Content-Length and Transfer-Encoding present")
        }
        var keepAlive = minor == 1
        for token in connection.flatMap(listTokens) {
            if token == "close" {
                keepAlive = false
                break
            }
            if token == "keep-alive" { keepAlive = true }
        }
        let state: State
        if !expectBody || status == 204 || status == 304 {
            state = .noBody
        } else if chunked {
            state = .chunkedBody(
                ChunkedDecoder(maxBodyBytes: Int.max, maxTrailerBytes: 64 * 1024, maxTrailerCount: 100))
        } else if let n = contentLength {
            state = n == 0 ? .noBody : .fixedBody(remaining: n)
        } else {
            state = .untilClose
            keepAlive = false
        }
        return Head(status: status, headers: headers, state: state, keepAlive: keepAlive)
    }
}

extension Substring {
    fileprivate func trimmingOWS() -> Substring {
        var t = self
        while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
        while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
        return t
    }
}
