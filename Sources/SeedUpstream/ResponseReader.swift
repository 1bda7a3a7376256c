import SeedHTTP

/// Where a response's bytes come from: a TLS connection, or memory in tests.
protocol ResponseByteSource: AnyObject {
    var endpoint: String { get }
    /// Reads some bytes; 0 means the peer closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(UpstreamError) -> Int
    /// Unblocks a reader stuck in `read` (from any thread).
    func abort()
}

extension BlockingTLSConnection: ResponseByteSource {}

/// Reads one HTTP/1.1 response from a byte source with SeedHTTP's `ResponseParser`: the head, then the
/// body piece by piece, bounded by `bodyLimit`. Failures are `UpstreamError`s: a close before the answer is
/// complete is `.connectionLost`, anything the parser rejects is `.malformedResponse`.
final class ResponseReader {
    private let connection: any ResponseByteSource
    private var parser: ResponseParser
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    private var closed = false
    private var finished = false
    private let limit: UInt64
    private(set) var delivered: UInt64 = 0
    var endpoint: String { connection.endpoint }

    init(connection: any ResponseByteSource, bodyLimit: UInt64, maxHeadBytes: Int = 64 * 1024) {
        self.connection = connection
        self.limit = bodyLimit
        self.parser = ResponseParser(maxHeadBytes: maxHeadBytes)
    }

    /// Unblocks a reader stuck on the socket (from any thread).
    func abort() { connection.abort() }

    private func fill() throws(UpstreamError) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let result = chunk.withUnsafeMutableBytes { p -> Result<Int, UpstreamError> in
            do throws(UpstreamError) { return .success(try connection.read(into: p)) } catch { return .failure(error) }
        }
        let n = try result.get()
        if n == 0 {
            closed = true
            parser.finishOnClose()
        } else {
            chunk.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    private func failure(_ error: HTTPParseError) -> UpstreamError {
        // After the peer closed, the parser's complaint is a truncated answer, not a malformed one.
        let kind: UpstreamError.Kind = closed ? .connectionLost : .malformedResponse
        return UpstreamError(kind, stage: .outcomeUnknown, endpoint: endpoint, detail: error.reason)
    }

    /// Reads the response head (interim 1xx answers are skipped by the parser).
    func readHead(requestMethod: String) throws(UpstreamError) -> UpstreamResponseHead {
        parser.expectBody = requestMethod != "HEAD"
        while true {
            switch parser.next() {
            case .head(let status, let headers):
                let chunked = headers["Transfer-Encoding"] != nil
                let length = chunked ? nil : headers["Content-Length"].flatMap { UInt64($0.split(separator: ",")[0].trimmedSpaces()) }
                return UpstreamResponseHead(
                    status: status, reason: reasonPhrase(status), headers: headers, contentLength: length)
            case .error(let e):
                throw failure(e)
            case .body, .end:
                throw UpstreamError(
                    .malformedResponse, stage: .outcomeUnknown, endpoint: endpoint, detail: "body before a head")
            case nil:
                if closed {
                    throw UpstreamError(
                        .connectionLost, stage: .outcomeUnknown, endpoint: endpoint,
                        detail: "connection closed before any answer")
                }
                try fill()
            }
        }
    }

    /// The next piece of the body (at most `maxBytes`), or nil once the body is complete.
    func readBody(maxBytes: Int) throws(UpstreamError) -> [UInt8]? {
        let max = Swift.max(1, maxBytes)
        while pendingOffset >= pending.count {
            if finished { return nil }
            switch parser.next() {
            case .body(let bytes):
                pending = bytes
                pendingOffset = 0
            case .end:
                finished = true
                return nil
            case .error(let e):
                throw failure(e)
            case .head:
                throw UpstreamError(
                    .malformedResponse, stage: .outcomeUnknown, endpoint: endpoint, detail: "a second response head")
            case nil:
                if closed {
                    throw UpstreamError(
                        .connectionLost, stage: .outcomeUnknown, endpoint: endpoint,
                        detail: "body ended after \(delivered) bytes")
                }
                try fill()
            }
        }
        let n = min(max, pending.count - pendingOffset)
        let piece = Array(pending[pendingOffset..<(pendingOffset + n)])
        pendingOffset += n
        if pendingOffset == pending.count {
            pending = []
            pendingOffset = 0
        }
        delivered += UInt64(n)
        if delivered > limit {
            throw UpstreamError(
                .bodyTooLarge(limit: limit), stage: .answered, endpoint: endpoint, detail: "body grew past \(limit) bytes")
        }
        return piece
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (HTTP optional whitespace).
    func trimmedSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    func trimmedSpaces() -> String { String(self).trimmedSpaces() }
}
