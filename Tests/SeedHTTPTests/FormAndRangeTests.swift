import SeedHTTP
import Testing

private func pairs(_ s: String) throws(HTTPParseError) -> [String] {
    try decodeFormURLEncoded(s[...]).map { "\($0.name)=\($0.value)" }
}

@Test func formDecodingKnownAnswers() throws {
    #expect(
        try pairs("hostnames=WS01&hostnames=WS02&type=server") == ["hostnames=WS01", "hostnames=WS02", "type=server"])
    #expect(try pairs("a=1+2&b=%41%42%2b&c") == ["a=1 2", "b=AB+", "c="])
    #expect(try pairs("&&x=&=y&") == ["x=", "=y"])
    #expect(try pairs("n=J%C3%BCrgen&e=a%3Db%26c") == ["n=Jürgen", "e=a=b&c"])
    #expect(
        try pairs("scanner=thor10%40latest&iocs=%5B%22default%22%5D") == [
            "scanner=thor10@latest", "iocs=[\"default\"]",
        ])
    #expect(try pairs("") == [])
    #expect(try pairs("k=a=b") == ["k=a=b"])
}

@Test(arguments: ["a=%", "a=%4", "a=%G1", "a=%4g", "%zz=1", "a=1&b=%%41", "a=%\u{E9}1"])
func malformedEscapesAreNamed(_ input: String) {
    #expect(throws: HTTPParseError.self) { try decodeFormURLEncoded(input[...]) }
    do {
        _ = try decodeFormURLEncoded(input[...])
    } catch {
        #expect(error.kind == .malformed)
        #expect(error.reason.contains("percent escape"))
        #expect(error.status == 400)
    }
}

@Test func invalidUTF8IsRefused() {
    for input in ["a=%FF", "a=%C3", "%80=1", "a=%ED%A0%80"] {
        do {
            _ = try decodeFormURLEncoded(input[...])
            Issue.record("accepted \(input)")
        } catch {
            #expect(error.reason.contains("UTF-8"))
        }
    }
}

@Test func percentDecodeHonoursPlusFlag() {
    #expect(percentDecode("a+b%20c", plusAsSpace: true) == "a b c")
    #expect(percentDecode("a+b%20c", plusAsSpace: false) == "a+b c")
    #expect(percentDecode("%2F%2f", plusAsSpace: false) == "//")
    #expect(percentDecode("100%", plusAsSpace: false) == nil)
    #expect(percentDecode("%FE", plusAsSpace: false) == nil)
    #expect(percentDecode("plain", plusAsSpace: true) == "plain")
}

@Test func tokensAreRedactedAnywhereInTheQuery() {
    #expect(
        redactTokens(inTarget: "/api/v1/downloads/thor?os=windows&token=abc123&hostname=H")
            == "/api/v1/downloads/thor?os=windows&token=REDACTED&hostname=H")
    #expect(redactTokens(inTarget: "/x?TOKEN=abc") == "/x?TOKEN=REDACTED")
    #expect(redactTokens(inTarget: "/x?a=1&Token=") == "/x?a=1&Token=REDACTED")
    #expect(redactTokens(inTarget: "/x?token=a&token=b") == "/x?token=REDACTED&token=REDACTED")
    #expect(redactTokens(inTarget: "/x?%74oken=secret") == "/x?%74oken=REDACTED")
    #expect(redactTokens(inTarget: "/x?mytoken=keep&tokens=keep") == "/x?mytoken=keep&tokens=keep")
    #expect(redactTokens(inTarget: "/x?token") == "/x?token")
    #expect(redactTokens(inTarget: "/token=abc") == "/token=abc", "only the query is touched")
    #expect(redactTokens(inTarget: "/x?&&token=a=b&") == "/x?&&token=REDACTED&")
    #expect(!redactTokens(inTarget: "/x?a=1&token=s3cr3t%20x").contains("s3cr3t"))
}

@Test func rangeForms() {
    #expect(evaluateRange(nil, length: 100) == .full)
    #expect(evaluateRange("bytes=0-9", length: 100) == .partial(start: 0, end: 9))
    #expect(evaluateRange("bytes=10-", length: 100) == .partial(start: 10, end: 99))
    #expect(evaluateRange("bytes=-10", length: 100) == .partial(start: 90, end: 99))
    #expect(evaluateRange("bytes=-1000", length: 100) == .partial(start: 0, end: 99))
    #expect(evaluateRange("bytes=50-1000", length: 100) == .partial(start: 50, end: 99))
    #expect(evaluateRange("bytes=99-99", length: 100) == .partial(start: 99, end: 99))
    #expect(evaluateRange("Bytes=1-2", length: 100) == .partial(start: 1, end: 2))
    #expect(evaluateRange(" bytes=1-2 ", length: 100) == .partial(start: 1, end: 2))
    #expect(evaluateRange("bytes=1-2,", length: 100) == .partial(start: 1, end: 2))
    #expect(evaluateRange("bytes=0-99999999999999999999999", length: 100) == .partial(start: 0, end: 99))
}

@Test func unsatisfiableRanges() {
    #expect(evaluateRange("bytes=100-", length: 100) == .unsatisfiable)
    #expect(evaluateRange("bytes=100-200", length: 100) == .unsatisfiable)
    #expect(evaluateRange("bytes=-0", length: 100) == .unsatisfiable)
    #expect(evaluateRange("bytes=0-", length: 0) == .unsatisfiable)
    #expect(evaluateRange("bytes=-5", length: 0) == .unsatisfiable)
    #expect(evaluateRange("bytes=99999999999999999999999-", length: 100) == .unsatisfiable)
}

@Test(arguments: [
    "bytes=0-1,5-6", "bytes=5-1", "bytes=a-b", "bytes=", "bytes=-", "bytes=--1", "bytes=1", "items=0-1",
    "bytes 0-1", "bytes=1 -2", "bytes=+1-2", "bytes=0x1-2", "=0-1", "",
])
func malformedOrMultipleRangesServeFull(_ header: String) {
    #expect(evaluateRange(header, length: 100) == .full)
}

@Test func ifRangeUsesStrongComparison() {
    #expect(ifRangeMatches(nil, etag: "\"a\""))
    #expect(ifRangeMatches(nil, etag: nil))
    #expect(ifRangeMatches("\"abc\"", etag: "\"abc\""))
    #expect(ifRangeMatches(" \"abc\" ", etag: "\"abc\""))
    #expect(!ifRangeMatches("\"abc\"", etag: "\"abd\""))
    #expect(!ifRangeMatches("W/\"abc\"", etag: "W/\"abc\""))
    #expect(!ifRangeMatches("W/\"abc\"", etag: "\"abc\""))
    #expect(!ifRangeMatches("\"abc\"", etag: "W/\"abc\""))
    #expect(!ifRangeMatches("\"abc\"", etag: nil))
    #expect(!ifRangeMatches("Thu, 03 Dec 2026 10:00:00 GMT", etag: "\"abc\""))
    #expect(!ifRangeMatches("abc", etag: "abc"), "an unquoted value is no entity tag")
}

@Test func redactionSplitsOnBytesNotCharacters() {
    // U+0600 is a prepended mark: as Characters, "\u{600}&" is one cluster, which once hid the next pair.
    #expect(redactTokens(inTarget: "/x?a=\u{600}&token=secret") == "/x?a=\u{600}&token=REDACTED")
    #expect(redactTokens(inTarget: "/x\u{301}?token=s\u{301}") == "/x\u{301}?token=REDACTED")
    #expect(redactTokens(inTarget: "/x?\u{301}token=s") == "/x?\u{301}token=s", "a different name")
}
