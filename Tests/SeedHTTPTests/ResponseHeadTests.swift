import SeedHTTP
import Testing

@Test func responseHeadKnownAnswer() {
    var out: [UInt8] = []
    encodeResponseHead(
        status: 206, headers: HTTPHeaders([("Content-Length", "10"), ("Content-Range", "bytes 0-9/100")]), into: &out)
    #expect(
        String(decoding: out, as: UTF8.self)
            == "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\n\r\n")
    out.removeAll()
    encodeResponseHead(status: 599, headers: HTTPHeaders(), into: &out)
    #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 599 Status 599\r\n\r\n")
}

@Test func headerValuesWithLineBreaksNeverReachTheWire() {
    var out: [UInt8] = []
    let evil = "attachment; filename=\"a.lic\"\r\nSet-Cookie: x=1\r\n\r\n<html>"
    encodeResponseHead(
        status: 200, headers: HTTPHeaders([("Content-Disposition", evil), ("X", "a\nb\rc\u{0}d")]), into: &out)
    let text = String(decoding: out, as: UTF8.self)
    #expect(
        text
            == "HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"a.lic\"  Set-Cookie: x=1    <html>\r\n"
            + "X: a b c d\r\n\r\n")
    #expect(!isSafeFieldValue(evil))
    #expect(isSafeFieldValue("bytes 0-9/100"))
    #expect(!isSafeFieldValue(" padded "))
    // The encoded head parses back as exactly two fields.
    var p = ResponseParser()
    p.append(out)
    guard case .head(200, let headers) = p.next() else {
        Issue.record("head did not parse")
        return
    }
    #expect(headers.count == 2)
}

@Test func encodedHeadRoundTripsThroughTheResponseParser() {
    var out: [UInt8] = []
    let headers = HTTPHeaders([("Content-Length", "3"), ("ETag", "\"abc\""), ("X-Utf8", "Jürgen")])
    encodeResponseHead(status: 200, headers: headers, into: &out)
    out += Array("xyz".utf8)
    var p = ResponseParser()
    p.append(out)
    guard case .head(let status, let got) = p.next() else {
        Issue.record("head did not parse")
        return
    }
    #expect(status == 200)
    #expect(got.fields.map(\.name) == headers.fields.map(\.name))
    #expect(got.fields.map(\.value) == headers.fields.map(\.value))
}
