// Byte-level helpers shared by the request and response parsers (RFC 9110 §5.6, RFC 9112 §2–7).

@inline(__always) func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

/// Field-value bytes: VCHAR, obs-text, SP and HTAB; every other control byte (NUL, CR, LF, DEL) is refused.
@inline(__always) func isFieldValueByte(_ b: UInt8) -> Bool {
    b == 0x09 || (b >= 0x20 && b != 0x7F)
}

@inline(__always) func hexValue(_ b: UInt8) -> Int? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b &- UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b &- UInt8(ascii: "a") &+ 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(b &- UInt8(ascii: "A") &+ 10)
    default: nil
    }
}

/// ASCII case-insensitive comparison of `buf[range]` with a lower-case literal.
@inline(__always) func equalsLowercase(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ lower: StaticString)
    -> Bool
{
    guard range.count == lower.utf8CodeUnitCount else { return false }
    let l = lower.utf8Start
    var i = 0
    for p in range {
        var b = buf[p]
        if b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") { b |= 0x20 }
        if b != l[i] { return false }
        i += 1
    }
    return true
}

@inline(__always) func makeString(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: buf[range]), as: UTF8.self)
}

/// Finds the end of a head (the empty line) in bytes that arrive piecemeal, refusing bare LF.
///
/// Offsets are relative to the first byte of the head, so the caller may move its buffer between calls.
struct HeadScanner {
    let maxHeadBytes: Int
    /// Lines allowed before the empty line (start line plus fields).
    let maxLines: Int
    let tooManyLines: HTTPParseError
    private var scanned = 0
    private var lineStart = 0
    private var lines = 0

    init(maxHeadBytes: Int, maxLines: Int, tooManyLines: HTTPParseError) {
        self.maxHeadBytes = maxHeadBytes
        self.maxLines = maxLines
        self.tooManyLines = tooManyLines
    }

    mutating func reset() {
        scanned = 0
        lineStart = 0
        lines = 0
    }

    /// The length of the complete head including its final CRLF CRLF, or nil while more bytes are needed.
    mutating func scan(_ buf: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int? {
        let limit = min(buf.count, maxHeadBytes)
        var p = scanned
        while p < limit {
            if buf[p] == 0x0A {
                if p == lineStart || buf[p - 1] != 0x0D {
                    throw HTTPParseError(.malformed, "line ends in a bare LF instead of CRLF")
                }
                if p - 1 == lineStart {
                    if lines == 0 {
                        throw HTTPParseError(.malformed, "empty start line")
                    }
                    return p + 1
                }
                lines += 1
                if lines > maxLines { throw tooManyLines }
                lineStart = p + 1
            }
            p += 1
        }
        scanned = p
        if buf.count >= maxHeadBytes {
            throw HTTPParseError(.headTooLarge, "head exceeds \(maxHeadBytes) bytes")
        }
        return nil
    }
}

/// Splits one field line (without its CRLF) into name and trimmed value ranges, validating every byte.
func parseFieldLine(_ buf: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPParseError) -> (
    name: Range<Int>, value: Range<Int>
) {
    let first = buf[line.lowerBound]
    if first == 0x20 || first == 0x09 {
        throw HTTPParseError(.malformed, "obsolete line folding in header section")
    }
    var p = line.lowerBound
    while p < line.upperBound {
        let b = buf[p]
        if b == UInt8(ascii: ":") { break }
        if !isTokenByte(b) {
            if b == 0x20 || b == 0x09 {
                throw HTTPParseError(.malformed, "whitespace between header name and colon")
            }
            throw HTTPParseError(.malformed, "invalid character in header name")
        }
        p += 1
    }
    if p == line.upperBound { throw HTTPParseError(.malformed, "header line without colon") }
    if p == line.lowerBound { throw HTTPParseError(.malformed, "empty header name") }
    let name = line.lowerBound..<p
    var vs = p + 1
    var ve = line.upperBound
    for q in vs..<ve where !isFieldValueByte(buf[q]) {
        throw HTTPParseError(.malformed, "control character in header value")
    }
    while vs < ve && (buf[vs] == 0x20 || buf[vs] == 0x09) { vs += 1 }
    while ve > vs && (buf[ve - 1] == 0x20 || buf[ve - 1] == 0x09) { ve -= 1 }
    return (name, vs..<ve)
}

/// Parses a Content-Length value: digits only, no list. Values above `cap` come back as `cap + 1` (saturating).
func parseContentLength(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, cap: Int) throws(HTTPParseError) -> Int {
    if range.isEmpty { throw HTTPParseError(.malformed, "empty Content-Length") }
    var n = 0
    for p in range {
        let b = buf[p]
        if b == UInt8(ascii: ",") {
            throw HTTPParseError(.smuggling, "Content-Length holds a list of values")
        }
        guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else {
            throw HTTPParseError(.malformed, "Content-Length is not a non-negative decimal number")
        }
        if n <= cap {
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (r, o2) = m.addingReportingOverflow(Int(b &- UInt8(ascii: "0")))
            n = o1 || o2 ? Int.max : r
        }
    }
    return n > cap ? (cap == Int.max ? cap : cap + 1) : n
}

/// Comma-separated tokens of a list header (Connection, Transfer-Encoding, Expect), trimmed and ASCII
/// lower-cased. Split on bytes: a combining character after a comma must not glue two tokens together.
func listTokens(_ value: String) -> [String] {
    var tokens: [String] = []
    for item in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
        var t = item[...]
        while let f = t.first, f == 0x20 || f == 0x09 { t = t.dropFirst() }
        while let l = t.last, l == 0x20 || l == 0x09 { t = t.dropLast() }
        if t.isEmpty { continue }
        let lower = t.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }
        tokens.append(String(decoding: lower, as: UTF8.self))
    }
    return tokens
}

/// Decodes a chunked body (RFC 9112 §7.1) from bytes that arrive piecemeal; extensions and trailers are dropped.
struct ChunkedDecoder {
    enum Output {
        case needMore
        /// Body bytes at this range of the buffer passed in (already counted as consumed).
        case data(Range<Int>)
        case done
    }
    private enum State {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
        case done
    }
    static let maxSizeLineBytes = 1024
    private var state = State.size
    private var lineScanned = 0
    private var trailerBytes = 0
    private var trailerCount = 0
    private(set) var total = 0
    let maxBodyBytes: Int
    let maxTrailerBytes: Int
    let maxTrailerCount: Int

    init(maxBodyBytes: Int, maxTrailerBytes: Int, maxTrailerCount: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxTrailerBytes = maxTrailerBytes
        self.maxTrailerCount = maxTrailerCount
    }

    var isDone: Bool { if case .done = state { true } else { false } }

    /// Consumes a prefix of `buf` (which must start where the previous call stopped consuming).
    mutating func decode(_ buf: UnsafeRawBufferPointer) throws(HTTPParseError) -> (consumed: Int, output: Output) {
        var pos = 0
        while true {
            switch state {
            case .done:
                return (pos, .done)
            case .data(let remaining):
                let n = min(remaining, buf.count - pos)
                if n == 0 { return (pos, .needMore) }
                state = remaining == n ? .dataEnd : .data(remaining: remaining - n)
                return (pos + n, .data(pos..<(pos + n)))
            case .dataEnd:
                if buf.count - pos < 2 { return (pos, .needMore) }
                guard buf[pos] == 0x0D && buf[pos + 1] == 0x0A else {
                    throw HTTPParseError(.malformed, "chunk data not followed by CRLF")
                }
                pos += 2
                state = .size
            case .size:
                guard let lineEnd = try findLine(buf, from: pos, limit: Self.maxSizeLineBytes, inTrailers: false) else {
                    return (pos, .needMore)
                }
                let size = try parseSizeLine(buf, pos..<lineEnd)
                pos = lineEnd + 2
                if size == 0 {
                    state = .trailers
                } else {
                    if size > maxBodyBytes - total {
                        throw HTTPParseError(.bodyTooLarge, "chunked body exceeds \(maxBodyBytes) bytes")
                    }
                    total += size
                    state = .data(remaining: size)
                }
            case .trailers:
                let budget = maxTrailerBytes - trailerBytes
                guard let lineEnd = try findLine(buf, from: pos, limit: budget, inTrailers: true) else {
                    return (pos, .needMore)
                }
                trailerBytes += lineEnd + 2 - pos
                if lineEnd == pos {
                    state = .done
                    return (lineEnd + 2, .done)
                }
                _ = try parseFieldLine(buf, pos..<lineEnd)
                trailerCount += 1
                if trailerCount > maxTrailerCount {
                    throw HTTPParseError(.tooManyHeaders, "more than \(maxTrailerCount) trailer fields")
                }
                pos = lineEnd + 2
            }
        }
    }

    /// Index of the CR of the CRLF ending the line at `from`, or nil when it has not arrived yet.
    private mutating func findLine(
        _ buf: UnsafeRawBufferPointer, from: Int, limit: Int, inTrailers: Bool
    ) throws(HTTPParseError) -> Int? {
        var p = from + lineScanned
        let end = min(buf.count, from + max(limit, 0))
        while p < end {
            if buf[p] == 0x0A {
                guard p > from && buf[p - 1] == 0x0D else {
                    throw HTTPParseError(.malformed, "line ends in a bare LF instead of CRLF")
                }
                lineScanned = 0
                return p - 1
            }
            p += 1
        }
        if buf.count - from >= limit {
            throw inTrailers
                ? HTTPParseError(.headTooLarge, "trailer section exceeds \(maxTrailerBytes) bytes")
                : HTTPParseError(.malformed, "chunk-size line exceeds \(Self.maxSizeLineBytes) bytes")
        }
        lineScanned = p - from
        return nil
    }

    private func parseSizeLine(_ buf: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPParseError) -> Int {
        var p = line.lowerBound
        var size = 0
        while p < line.upperBound, let d = hexValue(buf[p]) {
            if size > (Int.max >> 4) { throw HTTPParseError(.malformed, "chunk size overflows") }
            size = size << 4 | d
            p += 1
        }
        if p == line.lowerBound { throw HTTPParseError(.malformed, "chunk size is not hexadecimal") }
        while p < line.upperBound && (buf[p] == 0x20 || buf[p] == 0x09) { p += 1 }
        if p < line.upperBound {
            guard buf[p] == UInt8(ascii: ";") else {
                throw HTTPParseError(.malformed, "invalid character after chunk size")
            }
            for q in p..<line.upperBound where !isFieldValueByte(buf[q]) {
                throw HTTPParseError(.malformed, "control character in chunk extension")
            }
        }
        return size
    }
}

/// A growable byte buffer with a read cursor that compacts only when most of it has been consumed.
struct ByteBuffer {
    private(set) var storage: [UInt8] = []
    private(set) var start = 0

    var readableCount: Int { storage.count - start }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start == storage.count {
            storage.removeAll(keepingCapacity: true)
            start = 0
        } else if start >= 4096 && start >= storage.count / 2 {
            storage.removeSubrange(0..<start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    mutating func consume(_ n: Int) {
        start += n
        if start == storage.count {
            storage.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    func withReadable<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let s = start
        // Array.withUnsafeBytes rethrows untyped errors; carry the typed one out in a Result.
        let result: Result<R, E> = storage.withUnsafeBytes { raw in
            do throws(E) {
                return .success(try body(UnsafeRawBufferPointer(rebasing: raw[s...])))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    mutating func release() {
        storage = []
        start = 0
    }
}
