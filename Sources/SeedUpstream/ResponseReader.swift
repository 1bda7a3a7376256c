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

/// Reads one HTTP/1.1 response from a connection: the head, then the body framed by `Content-Length`,
/// chunked transfer coding or connection close. Minimal and private until SeedHTTP's ResponseParser lands.
final class ResponseReader {
    private enum Framing {
        case none
        case length(remaining: UInt64)
        case chunked(ChunkState)
        case untilClose
        case done
    }

    private enum ChunkState {
        case size
        case data(remaining: UInt64)
        case dataEnd
        case trailers
    }

    private let connection: any ResponseByteSource
    private var buffer: [UInt8] = []
    private var start = 0
    private var framing: Framing = .none
    private let limit: UInt64
    private(set) var delivered: UInt64 = 0
    var endpoint: String { connection.endpoint }

    init(connection: any ResponseByteSource, bodyLimit: UInt64) {
        self.connection = connection
        self.limit = bodyLimit
    }

    /// Unblocks a reader stuck on the socket (from any thread).
    func abort() { connection.abort() }

    private var available: Int { buffer.count - start }

    /// Reads more bytes into the buffer; false at end of stream.
    private func fill() throws(UpstreamError) -> Bool {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 256 * 1024 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let result = chunk.withUnsafeMutableBytes { p -> Result<Int, UpstreamError> in
            do throws(UpstreamError) { return .success(try connection.read(into: p)) } catch { return .failure(error) }
        }
        let n = try result.get()
        if n == 0 { return false }
        buffer.append(contentsOf: chunk[..<n])
        return true
    }

    private func malformed(_ detail: String) -> UpstreamError {
        UpstreamError(.malformedResponse, stage: .outcomeUnknown, endpoint: endpoint, detail: detail)
    }

    private func truncated(_ detail: String) -> UpstreamError {
        UpstreamError(.connectionLost, stage: .outcomeUnknown, endpoint: endpoint, detail: detail)
    }

    /// Reads a CRLF-terminated line (without the CRLF), bounded by `maxBytes`.
    private func readLine(maxBytes: Int) throws(UpstreamError) -> [UInt8] {
        var searched = start
        while true {
            if let i = buffer[searched...].firstIndex(of: 10) {
                var end = i
                if end > start && buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[start..<end])
                start = i + 1
                return line
            }
            searched = buffer.count
            if available > maxBytes { throw malformed("line longer than \(maxBytes) bytes") }
            let base = start
            guard try fill() else { throw truncated("connection closed inside a line") }
            searched -= base - start  // fill may have compacted the buffer
        }
    }

    /// Reads the response head, skipping interim 1xx answers.
    func readHead(requestMethod: String, maxHeadBytes: Int) throws(UpstreamError) -> UpstreamResponseHead {
        while true {
            var used = 0
            var line = try readLine(maxBytes: maxHeadBytes)
            used += line.count + 2
            let statusLine = String(decoding: line, as: UTF8.self)
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", parts[1].count == 3,
                let status = Int(parts[1]), (100..<600).contains(status)
            else {
                throw malformed("bad status line")
            }
            var headers = HTTPHeaders()
            while true {
                line = try readLine(maxBytes: maxHeadBytes)
                used += line.count + 2
                if used > maxHeadBytes { throw malformed("response head larger than \(maxHeadBytes) bytes") }
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                    throw malformed("header line without a colon")
                }
                let name = String(decoding: line[..<colon], as: UTF8.self)
                let value = String(decoding: line[(colon + 1)...], as: UTF8.self)
                    .trimmedSpaces()
                headers.add(name, value)
            }
            if (100..<200).contains(status) { continue }
            var contentLength: UInt64?
            let lengths = Set(headers.values("Content-Length"))
            if lengths.count > 1 { throw malformed("conflicting Content-Length headers") }
            if let cl = lengths.first {
                guard let n = UInt64(cl) else { throw malformed("bad Content-Length") }
                contentLength = n
            }
            let chunked = headers.values("Transfer-Encoding").contains { $0.lowercased().contains("chunked") }
            if requestMethod == "HEAD" || status == 204 || status == 304 {
                framing = .none
            } else if chunked {
                framing = .chunked(.size)
                contentLength = nil
            } else if let n = contentLength {
                framing = .length(remaining: n)
            } else {
                framing = .untilClose
            }
            let reason = parts.count > 2 ? String(parts[2]) : ""
            return UpstreamResponseHead(status: status, reason: reason, headers: headers, contentLength: contentLength)
        }
    }

    /// The next piece of the body (at most `maxBytes`), or nil once the body is complete.
    func readBody(maxBytes: Int) throws(UpstreamError) -> [UInt8]? {
        let piece = try nextPiece(maxBytes: max(1, maxBytes))
        if let piece {
            delivered += UInt64(piece.count)
            if delivered > limit {
                throw UpstreamError(
                    .bodyTooLarge(limit: limit), stage: .answered, endpoint: endpoint,
                    detail: "body grew past \(limit) bytes")
            }
        }
        return piece
    }

    private func take(_ n: Int) -> [UInt8] {
        let piece = Array(buffer[start..<(start + n)])
        start += n
        return piece
    }

    private func nextPiece(maxBytes: Int) throws(UpstreamError) -> [UInt8]? {
        while true {
            switch framing {
            case .none, .done:
                framing = .done
                return nil
            case .untilClose:
                if available == 0 {
                    guard try fill() else {
                        framing = .done
                        return nil
                    }
                }
                return take(min(available, maxBytes))
            case .length(let remaining):
                if remaining == 0 {
                    framing = .done
                    return nil
                }
                if available == 0 {
                    guard try fill() else {
                        throw truncated("body ended after \(delivered) bytes, \(remaining) missing")
                    }
                }
                let n = Int(min(UInt64(min(available, maxBytes)), remaining))
                framing = .length(remaining: remaining - UInt64(n))
                return take(n)
            case .chunked(let state):
                switch state {
                case .size:
                    let line = try readLine(maxBytes: 4096)
                    let hex = String(decoding: line.prefix(while: { $0 != UInt8(ascii: ";") }), as: UTF8.self)
                        .trimmedSpaces()
                    guard !hex.isEmpty, hex.count <= 15, let size = UInt64(hex, radix: 16) else {
                        throw malformed("bad chunk size")
                    }
                    framing = .chunked(size == 0 ? .trailers : .data(remaining: size))
                case .data(let remaining):
                    if available == 0 {
                        guard try fill() else { throw truncated("body ended inside a chunk") }
                    }
                    let n = Int(min(UInt64(min(available, maxBytes)), remaining))
                    let left = remaining - UInt64(n)
                    framing = .chunked(left == 0 ? .dataEnd : .data(remaining: left))
                    return take(n)
                case .dataEnd:
                    guard try readLine(maxBytes: 2).isEmpty else { throw malformed("chunk not followed by CRLF") }
                    framing = .chunked(.size)
                case .trailers:
                    if try readLine(maxBytes: 8192).isEmpty { framing = .done }
                }
            }
        }
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
