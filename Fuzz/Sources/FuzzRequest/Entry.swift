import SeedHTTP

/// Feeds the input whole and in pieces (sizes taken from its first byte); both must give the same events,
/// no event may break the parser's invariants, and nothing may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = input.first else { return 0 }
    let step = Int(first % 16) + 1
    let bytes = Array(input.dropFirst())
    var limits = HTTPLimits()
    limits.maxHeadBytes = 512
    limits.maxHeaderCount = 8
    limits.maxBodyBytes = 256

    let whole = run([bytes], limits)
    var pieces: [[UInt8]] = []
    var i = 0
    while i < bytes.count {
        pieces.append(Array(bytes[i..<min(i + step, bytes.count)]))
        i += step
    }
    let split = run(pieces, limits)
    precondition(whole == split, "feeding in pieces of \(step) changed the events")
    return 0
}

private func run(_ pieces: [[UInt8]], _ limits: HTTPLimits) -> [String] {
    var parser = RequestParser(limits: limits)
    var events: [String] = []
    var dead = false
    for piece in pieces {
        parser.append(piece)
        while let event = parser.next() {
            precondition(!dead, "event after an error")
            switch event {
            case .continueExpected:
                events.append("continue")
            case .request(let r):
                precondition(r.body.count <= limits.maxBodyBytes, "body over the limit")
                precondition(r.headers.count <= limits.maxHeaderCount, "too many headers")
                precondition(r.target.hasPrefix("/") || r.target == "*", "target not in origin form")
                precondition(limits.methods.contains(r.method), "method outside the list")
                for (name, value) in r.headers {
                    precondition(!name.isEmpty && !name.contains(":"), "bad header name")
                    precondition(
                        !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }), "CR/LF/NUL in value")
                }
                events.append("\(r.method) \(r.target) \(r.versionMinor) \(r.keepAlive) \(r.headers.count) \(r.body)")
            case .error(let e):
                precondition(!e.reason.contains("\n"), "multi-line reason")
                dead = true
                events.append("error \(e.kind)")
            }
        }
    }
    return events
}
