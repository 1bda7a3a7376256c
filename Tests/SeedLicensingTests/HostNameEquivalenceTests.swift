import SeedLicensing
import Testing

/// The byte-at-a-time `HostName.normalize` against the array-based version it replaced (kept here as the
/// reference, verbatim but for the all-digit first label rule added since): the same key or the same reason
/// for every input.
private func legacyNormalize(_ raw: String) -> Result<String, HostNameError> {
    var bytes = Array(raw.utf8)
    while let f = bytes.first, f == 0x20 || f == 0x09 || f == 0x0A || f == 0x0D { bytes.removeFirst() }
    while let l = bytes.last, l == 0x20 || l == 0x09 || l == 0x0A || l == 0x0D { bytes.removeLast() }
    if bytes.isEmpty { return .failure(HostNameError("host name is empty")) }
    if bytes.count > HostName.maxRawLength {
        return .failure(HostNameError("host name is \(bytes.count) bytes long, more than \(HostName.maxRawLength)"))
    }
    for b in bytes {
        if b >= 0x80 {
            return .failure(HostNameError("host name contains a non-ASCII character (look-alikes are refused)"))
        }
        if b < 0x20 || b == 0x7F { return .failure(HostNameError("host name contains a control character")) }
        switch b {
        case UInt8(ascii: "%"), UInt8(ascii: "/"), UInt8(ascii: "\\"):
            return .failure(
                HostNameError("host name contains the forbidden character '\(Character(Unicode.Scalar(b)))'"))
        default: break
        }
    }
    if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
    let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    var allNumeric = true
    for label in labels {
        if label.isEmpty { return .failure(HostNameError("host name has an empty label ('..' or a leading dot)")) }
        if label.count > 63 {
            return .failure(HostNameError("host name label is \(label.count) characters long, more than 63"))
        }
        for b in label {
            let ok = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2D
            if !ok {
                return .failure(
                    HostNameError(
                        "host name contains '\(Character(Unicode.Scalar(b)))'; only letters, digits and '-' are allowed"
                    ))
            }
            if !(b >= 0x30 && b <= 0x39) { allNumeric = false }
        }
        if label.first == 0x2D { return .failure(HostNameError("host name label starts with '-'")) }
    }
    if allNumeric { return .failure(HostNameError("host name is a number or an address, not a host name")) }
    if labels[0].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
        return .failure(HostNameError("host name's first label is a number; a computer name cannot be all digits"))
    }
    let first = labels[0].map { b in (b >= 0x41 && b <= 0x5A) ? b + 0x20 : b }
    return .success(String(decoding: first, as: UTF8.self))
}

private let trickyHosts = [
    "", " ", ".", "..", "a.", "a..", ".a", "a..b", "WS01", " WS01.corp.example. ", "\tws01\r\n", "-ws", "ws-", "a.-b",
    "1.2.3.4", "1.2.3.4.", "123", "12a", "a_b", "a b", "a%b", "a/b", "a\\b", "a\u{7F}", "a\u{0}", "wѕ01", "Ws01.",
    "a.b.c.d", String(repeating: "a", count: 63), String(repeating: "a", count: 64), "x." + String(repeating: "b", count: 64),
    String(repeating: "a", count: 253), String(repeating: "a", count: 254), " " + String(repeating: "a", count: 253) + " ",
    "a..%", "%..", "-..", "ABCDEFGHIJKLMNOPQR.example", "0-1", "-1.a",
    "1.corp", "123.corp.example.", "1a.corp", "a.1", "0-1.corp",
]

@Test(arguments: trickyHosts)
func hostNormalizationMatchesTheReference(_ raw: String) {
    #expect(HostName.normalize(raw) == legacyNormalize(raw), "\(raw.debugDescription)")
}

@Test func hostNormalizationMatchesTheReferenceOnGeneratedNames() {
    let pieces = ["a", "Z", "0", "9", "-", ".", "_", " ", "\t", "%", "é", "\u{1}", "\r", "ab", "..", "x-"]
    var state: UInt64 = 42
    func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: state >> 33)
    }
    for _ in 0..<5000 {
        var s = ""
        for _ in 0..<(next() % 10) { s += pieces[next() % pieces.count] }
        #expect(HostName.normalize(s) == legacyNormalize(s), "\(s.debugDescription)")
    }
}
