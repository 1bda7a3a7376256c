/// Why a query string or form body could not be decoded.
struct FormDecodeError: Error {
    var reason: String
}

/// Decodes `application/x-www-form-urlencoded` bytes (also used for query strings): `&`-separated
/// `name=value` pairs, `+` as space, `%XX` escapes, UTF-8. Interim: replaced by SeedHTTP's
/// `decodeFormURLEncoded` when that lands.
func formPairs(_ bytes: [UInt8]) throws(FormDecodeError) -> [(name: String, value: String)] {
    var out: [(name: String, value: String)] = []
    for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
        let eq = part.firstIndex(of: UInt8(ascii: "="))
        let rawName = eq.map { part[part.startIndex..<$0] } ?? part[...]
        let rawValue = eq.map { part[part.index(after: $0)...] } ?? []
        out.append((try formUnescape(rawName), try formUnescape(rawValue)))
    }
    return out
}

private func formUnescape(_ s: ArraySlice<UInt8>) throws(FormDecodeError) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(s.count)
    var i = s.startIndex
    while i < s.endIndex {
        let c = s[i]
        if c == UInt8(ascii: "+") {
            out.append(UInt8(ascii: " "))
        } else if c == UInt8(ascii: "%") {
            guard i + 2 < s.endIndex, let hi = hexValue(s[i + 1]), let lo = hexValue(s[i + 2])
            else { throw FormDecodeError(reason: "bad percent escape") }
            out.append(hi << 4 | lo)
            i += 2
        } else {
            out.append(c)
        }
        i += 1
    }
    guard let text = String(validating: out, as: UTF8.self) else { throw FormDecodeError(reason: "not valid UTF-8") }
    return text
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}
