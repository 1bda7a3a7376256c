import SeedHTTP
import Testing

@Test func headerLookupIgnoresCase() {
    var h = HTTPHeaders()
    h.add("Content-Length", "12")
    h.add("X-Token", "a")
    h.add("x-token", "b")
    #expect(h["content-length"] == "12")
    #expect(h.values("X-TOKEN") == ["a", "b"])
    #expect(h["missing"] == nil)
}

@Test func requestSplitsPathAndQuery() {
    let r = HTTPRequest(method: "GET", target: "/api/v1/downloads/thor?os=windows&token=x")
    #expect(r.path == "/api/v1/downloads/thor")
    #expect(r.query == "os=windows&token=x")
    #expect(HTTPRequest(method: "GET", target: "/healthz").query == nil)
}
