import SeedHTTP
import Testing

@testable import SeedServer

/// The one-pass query and form decoding of the seed routes against what they replaced: the whole text
/// decoded into pairs by `decodeFormURLEncoded`, then the last value of each name (the same values, or
/// the same 400 reason).
@Suite struct SeedCallDecodingTests {
    func legacyQuery(_ q: String?) -> Result<SeedQuery, RouteError> {
        guard let q, !q.isEmpty else { return .success(SeedQuery()) }
        let pairs: [(name: String, value: String)]
        do throws(HTTPParseError) { pairs = try decodeFormURLEncoded(q[...]) } catch {
            return .failure(RouteError(400, "malformed query string: \(error.reason)"))
        }
        func last(_ n: String) -> String? { pairs.last(where: { $0.name == n })?.value }
        return .success(
            SeedQuery(
                token: last("token"), hostname: last("hostname"), type: last("type"), os: last("os"), arch: last("arch"),
                comment: last("comment")))
    }

    func legacyForm(_ body: [UInt8]) -> Result<[String], RouteError> {
        guard let text = String(validating: body, as: UTF8.self) else {
            return .failure(RouteError(400, "malformed form body: not valid UTF-8"))
        }
        let fields: [(name: String, value: String)]
        do throws(HTTPParseError) { fields = try decodeFormURLEncoded(text[...]) } catch {
            return .failure(RouteError(400, "malformed form body: \(error.reason)"))
        }
        var out = fields.filter { $0.name == "hostnames" || $0.name == "hostnames[]" }.map { "h:" + $0.value }
        out.append("t:" + (fields.last(where: { $0.name == "type" })?.value ?? "-"))
        out.append("c:" + (fields.last(where: { $0.name == "comment" })?.value ?? "-"))
        return .success(out)
    }

    func newQuery(_ q: String?) -> Result<SeedQuery, RouteError> {
        do throws(RouteError) { return .success(try decodeSeedQuery(q)) } catch { return .failure(error) }
    }

    func newForm(_ body: [UInt8]) -> Result<[String], RouteError> {
        do throws(RouteError) {
            let f = try decodeLicenseForm(body)
            return .success(f.hostnames.map { "h:" + $0 } + ["t:" + (f.type ?? "-"), "c:" + (f.comment ?? "-")])
        } catch {
            return .failure(error)
        }
    }

    static let tricky = [
        "", "token=abc", "token=a&token=b", "%74oken=esc&type=server", "to%6Ben=x", "hostname=PC+7&os=Windows",
        "hostname=&type=", "type=client&type=server", "comment=a%20b+c", "token=%zz", "a=%FF&token=t", "arch=x64&os",
        "=&&=", "hostnames=WS01&hostnames%5B%5D=WS02&type=workstation", "hostnames[]=a,b,,c&comment=%E2%9C%93",
        "hostnames=ws01%2Cws02,WS01,&type=server", "hostnames=a%0D%0Ab", "hostnames=%", "type=server&hostnames=%C3",
        "hostnames=a&hostnames=&type=server&type=workstation", "HOSTNAMES=a", "hostnames+=a", "hostnames=x&comment",
    ]

    @Test(arguments: tricky)
    func queryDecodingMatches(_ q: String) {
        #expect(newQuery(q) == legacyQuery(q), "\(q.debugDescription)")
    }

    @Test(arguments: tricky)
    func formDecodingMatches(_ body: String) {
        #expect(newForm(Array(body.utf8)) == legacyForm(Array(body.utf8)), "\(body.debugDescription)")
    }

    @Test func invalidUTF8BodyIsTheSame400() {
        for body: [UInt8] in [[0xFF], [0x61, 0x3D, 0xC3], [0x68, 0x3D, 0xED, 0xA0, 0x80]] {
            #expect(newForm(body) == legacyForm(body))
            #expect(newForm(body) == .failure(RouteError(400, "malformed form body: not valid UTF-8")))
        }
    }

    @Test func generatedQueriesAndFormsMatch() {
        let pieces = [
            "token", "type", "hostnames", "hostname", "os", "comment", "%74", "=", "&", "+", "%", "%zz", "%2C", "a", "B",
            ",", "%C3", "%A9", "é", "[]", "%5B%5D",
        ]
        var state: UInt64 = 7
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        for _ in 0..<3000 {
            var s = ""
            for _ in 0..<(next() % 10) { s += pieces[next() % pieces.count] }
            #expect(newQuery(s) == legacyQuery(s), "\(s.debugDescription)")
            #expect(newForm(Array(s.utf8)) == legacyForm(Array(s.utf8)), "\(s.debugDescription)")
        }
    }

    @Test func hostPiecesSplitAsCharactersDid() {
        for v in [
            "a", "a,b", "a,,b,", ",", "", "a\nb", "a\rb", "a\r\nb", "a,\r\n", " a , b ", "é,a", "a,\u{301}b", "a\n\n",
        ] {
            let legacy = v.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r" }).map { String($0) }
            #expect(hostNamePieces(v) == legacy, "\(v.debugDescription)")
        }
    }
}
