import SeedHTTP

/// Feeds a response stream whole and in pieces and checks both give the same events; then checks that
/// any header value, once encoded by `encodeResponseHead`, parses back as exactly one field.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = input.first else { return 0 }
    let step = Int(first % 16) + 1
    let expectBody = first & 0x80 == 0
    let close = first & 0x40 == 0
    let bytes = Array(input.dropFirst())

    let whole = run([bytes], expectBody: expectBody, close: close)
    var pieces: [[UInt8]] = []
    var i = 0
    while i < bytes.count {
        pieces.append(Array(bytes[i..<min(i + step, bytes.count)]))
        i += step
    }
    precondition(whole == run(pieces, expectBody: expectBody, close: close), "split feed changed the events")

    // Header injection: whatever the value, the encoded head must carry exactly these two fields.
    let value = String(decoding: bytes, as: UTF8.self)
    var head: [UInt8] = []
    encodeResponseHead(status: 200, headers: HTTPHeaders([("X-Fuzz", value), ("Content-Length", "0")]), into: &head)
    var parser = ResponseParser(maxHeadBytes: 1 << 20)
    parser.append(head)
    guard case .head(200, let headers) = parser.next() else { preconditionFailure("encoded head did not parse") }
    precondition(headers.count == 2, "a header value injected a field")
    precondition(isSafeFieldValue(headers["x-fuzz"]!), "sanitized value is not stable")
    return 0
}

private func run(_ pieces: [[UInt8]], expectBody: Bool, close: Bool) -> [String] {
    var parser = ResponseParser(maxHeadBytes: 512, maxHeaderCount: 8)
    parser.expectBody = expectBody
    var events: [String] = []
    var body: [UInt8] = []
    func drain() {
        while let event = parser.next() {
            switch event {
            case .head(let status, let headers):
                precondition((200...999).contains(status), "interim or invalid status surfaced")
                events.append("head \(status) \(headers.count)")
            case .body(let b):
                precondition(!b.isEmpty, "empty body event")
                body += b
            case .end:
                events.append("end \(body)")
                body = []
            case .error(let e):
                events.append("error \(e.kind) \(body)")
                body = []
            }
        }
    }
    for piece in pieces {
        parser.append(piece)
        drain()
    }
    if close {
        parser.finishOnClose()
        drain()
    }
    if !body.isEmpty { events.append("partial \(body)") }
    return events
}
