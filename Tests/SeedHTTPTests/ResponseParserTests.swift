import SeedHTTP
import Testing

private func render(_ event: ResponseEvent) -> String {
    switch event {
    case .head(let status, let headers):
        return "head \(status) [\(headers.map { "\($0.name)=\($0.value)" }.joined(separator: ";"))]"
    case .body(let bytes):
        return "body " + String(decoding: bytes, as: UTF8.self)
    case .end:
        return "end"
    case .error(let e):
        return "error \(e.kind)"
    }
}

/// Runs the parser over `chunks`, then closes if asked; body events are merged so feeds compare equal.
private func run(_ chunks: [[UInt8]], close: Bool, expectBody: Bool = true) -> (events: [String], reusable: Bool) {
    var p = ResponseParser()
    p.expectBody = expectBody
    var out: [String] = []
    func drain() {
        while let e = p.next() {
            let r = render(e)
            if r.hasPrefix("body "), let last = out.last, last.hasPrefix("body ") {
                out[out.count - 1] = last + r.dropFirst(5)
            } else {
                out.append(r)
            }
        }
    }
    for c in chunks {
        p.append(c)
        drain()
    }
    if close {
        p.finishOnClose()
        drain()
    }
    return (out, p.canReuseConnection)
}

private func expectAllFeeds(
    _ text: String, close: Bool, expectBody: Bool = true, _ expected: [String],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let input = Array(text.utf8)
    #expect(run([input], close: close, expectBody: expectBody).events == expected, sourceLocation: sourceLocation)
    #expect(
        run(input.map { [$0] }, close: close, expectBody: expectBody).events == expected, "byte by byte",
        sourceLocation: sourceLocation)
    for k in 0...input.count {
        let got = run([Array(input[..<k]), Array(input[k...])], close: close, expectBody: expectBody).events
        if got != expected {
            Issue.record("split at \(k): \(got)", sourceLocation: sourceLocation)
            return
        }
    }
}

@Test func contentLengthResponse() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello", close: false,
        ["head 200 [Content-Length=5;X=y]", "body hello", "end"])
    #expect(run([Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)], close: false).reusable)
}

@Test func chunkedResponseWithTrailers() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nDigest: x\r\n\r\n",
        close: false, ["head 200 [Transfer-Encoding=chunked]", "body abcde", "end"])
}

@Test func closeDelimitedResponse() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", close: true,
        ["head 200 [Connection=close]", "body all of it", "end"])
    let r = run([Array("HTTP/1.1 200 OK\r\n\r\nabc".utf8)], close: true)
    #expect(r.reusable == false)
}

@Test func truncatedBodiesAreErrors() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close: true,
        ["head 200 [Content-Length=10]", "body short", "error malformed"])
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", close: true,
        ["head 200 [Transfer-Encoding=chunked]", "body ab", "error malformed"])
    #expect(run([Array("HTTP/1.1 200 OK\r\nContent-".utf8)], close: true).events == ["error malformed"])
    #expect(run([], close: true).events == [], "a clean close between responses is no error")
}

@Test func interimContinueIsSkipped() {
    expectAllFeeds(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        close: false, ["head 201 [Content-Length=2]", "body ok", "end"])
}

@Test func responsesWithoutBody() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nContent-Length: 70000000\r\n\r\n", close: false, expectBody: false,
        ["head 200 [Content-Length=70000000]", "end"])
    expectAllFeeds(
        "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", close: false,
        ["head 204 []", "end", "head 304 [Content-Length=9]", "end"])
}

@Test func keepAliveResponsesFollowEachOther() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
        close: false, ["head 200 [Content-Length=1]", "body a", "end", "head 404 [Content-Length=2]", "body no", "end"])
    // HTTP/1.0 without keep-alive: the connection is done after the response.
    let r = run([Array("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na".utf8)], close: false)
    #expect(r.events == ["head 200 [Content-Length=1]", "body a", "end"])
    #expect(!r.reusable)
}

@Test func largeBodiesStreamWithoutBuffering() {
    var p = ResponseParser()
    p.append(Array("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".utf8))
    guard case .head(200, _) = p.next() else {
        Issue.record("no head")
        return
    }
    let piece = [UInt8](repeating: 7, count: 10_000)
    var total = 0
    for _ in 0..<100 {
        p.append(piece)
        while let e = p.next() {
            if case .body(let b) = e { total += b.count }
        }
        #expect(p.bufferedByteCount == 0)
    }
    #expect(total == 1_000_000)
}

@Test(arguments: [
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/1.1 099 Low\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
    "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
    "HTTP/1.1 200 O\u{0}K\r\n\r\n",
])
func badResponsesAreErrors(_ text: String) {
    var p = ResponseParser()
    p.append(Array(text.utf8))
    guard case .error = p.next() else {
        Issue.record("accepted: \(text.debugDescription)")
        return
    }
    #expect(p.next() == nil)
}

@Test func identicalRepeatedContentLengthIsToleratedFromServers() {
    expectAllFeeds(
        "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", close: false,
        ["head 200 [Content-Length=2, 2]", "body ok", "end"])
}

@Test func responseHeadLimits() {
    var p = ResponseParser(maxHeadBytes: 100, maxHeaderCount: 2)
    p.append(Array(("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 100)).utf8))
    guard case .error(let e) = p.next() else {
        Issue.record("no error")
        return
    }
    #expect(e.kind == .headTooLarge)
    var q = ResponseParser(maxHeadBytes: 1000, maxHeaderCount: 2)
    q.append(Array("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".utf8))
    guard case .error(let e2) = q.next() else {
        Issue.record("no error")
        return
    }
    #expect(e2.kind == .tooManyHeaders)
}
