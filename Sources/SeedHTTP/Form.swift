/// Decodes `application/x-www-form-urlencoded` text, also usable for a query string: pairs split on `&`,
/// name and value on the first `=`, `+` is a space, `%XX` a byte; the bytes must be UTF-8.
///
/// Empty pairs (`a=1&&b=2`) are skipped; a pair without `=` has an empty value. A malformed escape or
/// invalid UTF-8 throws `.malformed` naming the pair's position (values are never echoed: they may be tokens).
public func decodeFormURLEncoded(_ s: Substring) throws(HTTPParseError) -> [(name: String, value: String)] {
    var result: [(name: String, value: String)] = []
    var index = 0
    for pair in s.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
        index += 1
        let eq = pair.firstIndex(of: UInt8(ascii: "="))
        let rawName = eq.map { pair[..<$0] } ?? pair[...]
        let rawValue = eq.map { pair[pair.index(after: $0)...] } ?? pair[pair.endIndex...]
        let name: String
        let value: String
        switch decodePercent(Substring(rawName), plusAsSpace: true) {
        case .success(let n): name = n
        case .failure(let f): throw f.error(part: "name", pair: index)
        }
        switch decodePercent(Substring(rawValue), plusAsSpace: true) {
        case .success(let v): value = v
        case .failure(let f): throw f.error(part: "value", pair: index)
        }
        result.append((name, value))
    }
    return result
}

/// Decodes `%XX` escapes (and `+` as space when asked); nil when an escape is malformed or the bytes are
/// not UTF-8.
public func percentDecode(_ s: Substring, plusAsSpace: Bool) -> String? {
    if case .success(let r) = decodePercent(s, plusAsSpace: plusAsSpace) { return r }
    return nil
}

private enum PercentFailure: Error {
    case badEscape(offset: Int)
    case invalidUTF8

    func error(part: String, pair: Int) -> HTTPParseError {
        switch self {
        case .badEscape(let offset):
            HTTPParseError(
                .malformed, "malformed percent escape at byte \(offset) of the \(part) of form field \(pair)")
        case .invalidUTF8:
            HTTPParseError(.malformed, "the \(part) of form field \(pair) is not valid UTF-8")
        }
    }
}

private func decodePercent(_ s: Substring, plusAsSpace: Bool) -> Result<String, PercentFailure> {
    let utf8 = s.utf8
    // Fast path: nothing to decode (the input is a Substring, so it is already valid UTF-8).
    if !utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) {
        return .success(String(s))
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(utf8.count)
    var i = utf8.startIndex
    var offset = 0
    while i != utf8.endIndex {
        let b = utf8[i]
        if b == UInt8(ascii: "%") {
            let h1 = utf8.index(after: i)
            guard h1 != utf8.endIndex, let hi = hexValue(utf8[h1]) else { return .failure(.badEscape(offset: offset)) }
            let h2 = utf8.index(after: h1)
            guard h2 != utf8.endIndex, let lo = hexValue(utf8[h2]) else { return .failure(.badEscape(offset: offset)) }
            bytes.append(UInt8(hi << 4 | lo))
            i = utf8.index(after: h2)
            offset += 3
            continue
        }
        bytes.append(plusAsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
        i = utf8.index(after: i)
        offset += 1
    }
    guard let decoded = String(validating: bytes, as: UTF8.self) else { return .failure(.invalidUTF8) }
    return .success(decoded)
}

/// The request target with the value of every `token` query parameter (name compared case-insensitively,
/// after percent-decoding) replaced by `REDACTED`, for logs. Everything else is kept byte for byte.
///
/// Works on UTF-8 bytes, as the form decoder does: a combining or prepended character next to `&` must
/// not hide a pair from redaction that the decoder would see.
public func redactTokens(inTarget target: String) -> String {
    var target = target
    return target.withUTF8 { u -> String? in
        guard let q = u.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        // First pass: the length of the answer (each redacted value becomes `REDACTED`); none, no copy.
        var length = u.count
        var redacted = 0
        forEachTokenValue(u, after: q) { start, end in
            length += 8 - (end - start)
            redacted += 1
        }
        if redacted == 0 { return nil }
        // Second pass: written straight into the String's storage (one allocation).
        return String(unsafeUninitializedCapacity: length) { out in
            var written = 0
            var copied = 0  // bytes of `u` already copied
            func copy(_ from: Int, _ to: Int) {
                for i in from..<to { out[written + i - from] = u[i] }
                written += to - from
            }
            forEachTokenValue(u, after: q) { start, end in
                copy(copied, start)
                for b in "REDACTED".utf8 {
                    out[written] = b
                    written += 1
                }
                copied = end
            }
            copy(copied, u.count)
            return written
        }
    } ?? target
}

/// Calls `body` with the byte range of each `token` value (pairs after the `?` at `q`), in order.
private func forEachTokenValue(_ u: UnsafeBufferPointer<UInt8>, after q: Int, _ body: (Int, Int) -> Void) {
    var i = q + 1
    while i <= u.count {
        var end = i
        while end < u.count && u[end] != UInt8(ascii: "&") { end += 1 }
        var eq = i
        while eq < end && u[eq] != UInt8(ascii: "=") { eq += 1 }
        if eq < end, isTokenName(UnsafeBufferPointer(rebasing: u[i..<eq])) { body(eq + 1, end) }
        i = end + 1
    }
}

/// Whether a raw (encoded) form name decodes to `token` in any case; plain ASCII names without escapes are
/// compared in place.
private func isTokenName(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
    guard raw.count >= 5 else { return false }
    let plain = raw.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "+") }
    if plain {
        guard raw.count == 5 else { return false }
        func lower(_ c: UInt8) -> UInt8 { (65...90).contains(c) ? c | 0x20 : c }
        return lower(raw[0]) == UInt8(ascii: "t") && lower(raw[1]) == UInt8(ascii: "o")
            && lower(raw[2]) == UInt8(ascii: "k") && lower(raw[3]) == UInt8(ascii: "e")
            && lower(raw[4]) == UInt8(ascii: "n")
    }
    let rawName = String(decoding: raw, as: UTF8.self)
    let name = percentDecode(rawName[...], plusAsSpace: true) ?? rawName
    return name.lowercased() == "token"
}

// MARK: - Scanning without Strings

/// Walks form-encoded bytes (`application/x-www-form-urlencoded`, or a query string) pair by pair, with the
/// rules and the errors of `decodeFormURLEncoded`, but without building a String per name and value:
/// `visit` gets each pair's raw (still encoded) name and value, in order, once both were checked.
///
/// `text` must be valid UTF-8 (a String's bytes, or a body checked with `isValidUTF8`): a part without
/// `%` is then valid as it is, and only parts with escapes are decoded to be checked. Every pair is
/// checked, also those the caller ignores, so a malformed pair anywhere fails as it does in
/// `decodeFormURLEncoded`. `visit` may have seen earlier pairs when a later one throws.
public func scanFormURLEncoded(
    _ text: UnsafeBufferPointer<UInt8>,
    _ visit: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Void
) throws(HTTPParseError) {
    let n = text.count
    var start = 0
    var index = 0
    while start < n {
        var end = start
        while end < n && text[end] != UInt8(ascii: "&") { end += 1 }
        if end > start {
            index += 1
            var eq = start
            while eq < end && text[eq] != UInt8(ascii: "=") { eq += 1 }
            let name = UnsafeBufferPointer(rebasing: text[start..<eq])
            let value = UnsafeBufferPointer(rebasing: text[(eq < end ? eq + 1 : end)..<end])
            if let f = checkFormPart(name) { throw f.error(part: "name", pair: index) }
            if let f = checkFormPart(value) { throw f.error(part: "value", pair: index) }
            visit(name, value)
        }
        start = end + 1
    }
}

/// Whether a checked raw name or value (see `scanFormURLEncoded`) decodes to `word` (`+` as space).
public func formPartEquals(_ raw: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
    let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
    // Decoding never makes a part longer, and an escape shortens it by two bytes.
    guard raw.count >= w.count else { return false }
    var i = 0
    var j = 0
    while i < raw.count {
        guard j < w.count else { return false }
        var b = raw[i]
        if b == UInt8(ascii: "%"), i + 2 < raw.count, let hi = hexValue(raw[i + 1]), let lo = hexValue(raw[i + 2]) {
            b = UInt8(hi << 4 | lo)
            i += 3
        } else {
            if b == UInt8(ascii: "+") { b = UInt8(ascii: " ") }
            i += 1
        }
        if b != w[j] { return false }
        j += 1
    }
    return j == w.count
}

/// The decoded text of a checked raw name or value (see `scanFormURLEncoded`), `+` as space.
public func formPartString(_ raw: UnsafeBufferPointer<UInt8>) -> String {
    if !raw.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
        return String(decoding: raw, as: UTF8.self)
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(raw.count)
    var i = 0
    while i < raw.count {
        let b = raw[i]
        if b == UInt8(ascii: "%"), i + 2 < raw.count, let hi = hexValue(raw[i + 1]), let lo = hexValue(raw[i + 2]) {
            bytes.append(UInt8(hi << 4 | lo))
            i += 3
            continue
        }
        bytes.append(b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
        i += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Whether `bytes` are valid UTF-8 (as `String(validating:as:)` judges), without building a String when
/// they are all ASCII.
public func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    if !bytes.contains(where: { $0 >= 0x80 }) { return true }
    return String(validating: bytes, as: UTF8.self) != nil
}

/// Checks one raw part of a valid UTF-8 text: escapes well-formed, decoded bytes UTF-8.
private func checkFormPart(_ raw: UnsafeBufferPointer<UInt8>) -> PercentFailure? {
    guard raw.contains(UInt8(ascii: "%")) else { return nil }
    switch decodePercent(Substring(decoding: raw, as: UTF8.self), plusAsSpace: true) {
    case .success: return nil
    case .failure(let f): return f
    }
}
