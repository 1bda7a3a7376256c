/// Appends `HTTP/1.1 <status> <reason>\r\n`, each header as `Name: value\r\n`, and the final `\r\n` to `out`.
///
/// A header value may carry data a client chose (a host name in a file name, say), so it is sanitized,
/// never trusted: CR, LF, NUL and every other control byte except HTAB become a space, and surrounding
/// whitespace is trimmed, so no value can end the line or start a new header. A header name is always
/// chosen by code, so a name that is not a token is a bug and traps, as does a status outside 100...999.
public func encodeResponseHead(status: Int, headers: HTTPHeaders, into out: inout [UInt8]) {
    precondition((100...999).contains(status), "HTTP status \(status) out of range")
    out.append(contentsOf: "HTTP/1.1 ".utf8)
    out.append(UInt8(ascii: "0") + UInt8(status / 100))
    out.append(UInt8(ascii: "0") + UInt8(status / 10 % 10))
    out.append(UInt8(ascii: "0") + UInt8(status % 10))
    out.append(UInt8(ascii: " "))
    out.append(contentsOf: reasonPhrase(status).utf8)
    out.append(contentsOf: [0x0D, 0x0A])
    for (name, value) in headers {
        var name = name
        name.withUTF8 { n in
            precondition(!n.isEmpty && n.allSatisfy(isTokenByte), "header name is not a token")
            out.append(contentsOf: n)
        }
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendSanitizedFieldValue(value, to: &out)
        out.append(0x0D)
        out.append(0x0A)
    }
    out.append(0x0D)
    out.append(0x0A)
}

/// Whether `value` would reach the wire unchanged by `encodeResponseHead`.
public func isSafeFieldValue(_ value: String) -> Bool {
    var copy: [UInt8] = []
    appendSanitizedFieldValue(value, to: &copy)
    return copy.elementsEqual(value.utf8)
}

private func appendSanitizedFieldValue(_ value: String, to out: inout [UInt8]) {
    // Fast path: a value that is already clean (no control bytes, no surrounding blanks) is copied whole.
    var v = value
    let clean = v.withUTF8 { u -> Bool in
        if u.isEmpty { return true }
        if u[0] == 0x20 || u[0] == 0x09 || u[u.count - 1] == 0x20 || u[u.count - 1] == 0x09 { return false }
        for b in u where !isFieldValueByte(b) { return false }
        out.append(contentsOf: u)
        return true
    }
    if clean { return }
    let start = out.count
    for b in value.utf8 {
        let c = isFieldValueByte(b) ? b : UInt8(ascii: " ")
        if out.count == start && (c == 0x20 || c == 0x09) { continue }
        out.append(c)
    }
    while out.count > start, out[out.count - 1] == 0x20 || out[out.count - 1] == 0x09 { out.removeLast() }
}
