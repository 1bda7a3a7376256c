import SeedHTTP
import Testing

/// `scanFormURLEncoded` + `formPartString` against `decodeFormURLEncoded`: the same pairs, or the same error.
private func scanned(_ s: String) -> Result<[String], HTTPParseError> {
    var s = s
    return s.withUTF8 { u in
        var out: [String] = []
        do throws(HTTPParseError) {
            try scanFormURLEncoded(u) { n, v in out.append(formPartString(n) + "=" + formPartString(v)) }
        } catch {
            return .failure(error)
        }
        return .success(out)
    }
}

private func decoded(_ s: String) -> Result<[String], HTTPParseError> {
    do throws(HTTPParseError) {
        return .success(try decodeFormURLEncoded(s[...]).map { $0.name + "=" + $0.value })
    } catch {
        return .failure(error)
    }
}

private let trickyForms = [
    "", "&", "&&", "=", "==", "a", "a=", "=b", "a=b=c", "a=1&&b=2&", "hostnames=WS01&hostnames=WS02&type=server",
    "a=1+2&b=%41%42%2b&c", "n=J%C3%BCrgen&e=a%3Db%26c", "%74oken=x", "to%6Ben=y&token=z", "t+o=1", "a=%", "a=%4",
    "a=%G1", "a=%4g", "%zz=1", "a=1&b=%%41", "a=%\u{E9}1", "a=%FF", "a=%C3", "%80=1", "a=%ED%A0%80", "é=ü&ü=%C3%A9",
    "k=%2B+%20", "a=ok&b=%zz&c=%FF", "x=%FF&y=%zz", "+=+", "%2=1", "a=%0", "a=%00",
]

@Test(arguments: trickyForms)
func scanningMatchesTheDecoder(_ input: String) {
    let a = scanned(input)
    let b = decoded(input)
    switch (a, b) {
    case (.success(let x), .success(let y)): #expect(x == y, "\(input.debugDescription)")
    case (.failure(let x), .failure(let y)): #expect(x == y, "\(input.debugDescription)")
    default: Issue.record("\(input.debugDescription): scan \(a), decoder \(b)")
    }
}

@Test func scanningMatchesTheDecoderOnGeneratedInputs() {
    // Deterministic pseudo-random strings over the pieces that matter (escapes good and bad, '+', '&', '=').
    let pieces = [
        "a", "t", "o", "k", "e", "n", "=", "&", "+", "%", "%2", "%41", "%zz", "%C3", "%A9", "%26", "%3D", "%2b", "é", " ",
        "%7", "%FF",
    ]
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: state >> 33)
    }
    for _ in 0..<3000 {
        var s = ""
        for _ in 0..<(next() % 12) { s += pieces[next() % pieces.count] }
        let a = scanned(s)
        let b = decoded(s)
        switch (a, b) {
        case (.success(let x), .success(let y)): #expect(x == y, "\(s.debugDescription)")
        case (.failure(let x), .failure(let y)): #expect(x == y, "\(s.debugDescription)")
        default: Issue.record("\(s.debugDescription): scan \(a), decoder \(b)")
        }
    }
}

@Test func formPartEqualsComparesTheDecodedText() {
    func eq(_ raw: String, _ word: StaticString) -> Bool {
        var raw = raw
        return raw.withUTF8 { formPartEquals($0, word) }
    }
    #expect(eq("token", "token"))
    #expect(eq("%74oken", "token"))
    #expect(eq("to%6Ben", "token"))
    #expect(eq("hostnames%5B%5D", "hostnames[]"))
    #expect(eq("a+b", "a b"))
    #expect(!eq("tokens", "token"))
    #expect(!eq("toke", "token"))
    #expect(!eq("Token", "token"), "names compare exactly, as the decoded Strings did")
    #expect(!eq("", "token"))
    #expect(eq("", ""))
}

@Test func utf8CheckAgreesWithTheStandardLibrary() {
    let samples: [[UInt8]] = [[], [0x61], [0xC3, 0xA9], [0xC3], [0xFF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x7F]]
    for s in samples {
        let ours = s.withUnsafeBufferPointer { isValidUTF8($0) }
        #expect(ours == (String(validating: s, as: UTF8.self) != nil), "\(s)")
    }
}

/// The two-pass `redactTokens` against the array-building version it replaced, on generated targets.
@Test func redactionMatchesTheArrayVersion() {
    func legacy(_ target: String) -> String {
        let u = Array(target.utf8)
        guard let q = u.firstIndex(of: UInt8(ascii: "?")) else { return target }
        var out: [UInt8]?
        var i = q + 1
        var copied = 0
        while i <= u.count {
            var end = i
            while end < u.count && u[end] != UInt8(ascii: "&") { end += 1 }
            var eq = i
            while eq < end && u[eq] != UInt8(ascii: "=") { eq += 1 }
            let rawName = String(decoding: u[i..<eq], as: UTF8.self)
            let name = (percentDecode(rawName[...], plusAsSpace: true) ?? rawName).lowercased()
            if eq < end, name == "token" {
                if out == nil { out = [] }
                out!.append(contentsOf: u[copied...eq])
                out!.append(contentsOf: "REDACTED".utf8)
                copied = end
            }
            i = end + 1
        }
        guard var o = out else { return target }
        o.append(contentsOf: u[copied..<u.count])
        return String(decoding: o, as: UTF8.self)
    }
    let pieces = ["/p", "?", "token", "TOKEN", "%74oken", "=", "&", "abc", "", "x", "é", "%zz", "+"]
    var state: UInt64 = 99
    func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: state >> 33)
    }
    for _ in 0..<3000 {
        var s = ""
        for _ in 0..<(next() % 12) { s += pieces[next() % pieces.count] }
        #expect(redactTokens(inTarget: s) == legacy(s), "\(s.debugDescription)")
    }
    #expect(redactTokens(inTarget: "/x?token=abc&a=1&Token=") == "/x?token=REDACTED&a=1&Token=REDACTED")
}
