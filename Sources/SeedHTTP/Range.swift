/// What a `Range` header asks of a representation of known length (RFC 9110 §14).
public enum RangeResult: Equatable, Sendable {
    /// No usable range: serve the whole representation with 200.
    case full
    /// Serve bytes `start...end` (inclusive) with 206.
    case partial(start: UInt64, end: UInt64)
    /// Answer 416 with `Content-Range: bytes */length`.
    case unsatisfiable
}

/// Evaluates a `Range` header against a representation of `length` bytes.
///
/// Only one `bytes=` range is honoured: `a-b`, `a-` or the suffix `-n`. Multiple ranges, other units and
/// syntax errors yield `.full` (RFC 9110 §14.2 lets a server ignore Range). A first position at or past
/// the end, a zero-length suffix, or any range of an empty representation is `.unsatisfiable`; the last
/// position is clamped to `length - 1`.
public func evaluateRange(_ header: String?, length: UInt64) -> RangeResult {
    guard let header else { return .full }
    var s = trimOWS(Substring(header))
    guard s.utf8.count > 6, s.prefix(6).lowercased() == "bytes=" else { return .full }
    s = s.dropFirst(6)
    let specs = s.split(separator: ",", omittingEmptySubsequences: false).map(trimOWS).filter { !$0.isEmpty }
    guard specs.count == 1, let dash = specs[0].firstIndex(of: "-") else { return .full }
    let first = specs[0][..<dash]
    let last = specs[0][specs[0].index(after: dash)...]
    if first.isEmpty {
        guard let n = saturatingDecimal(last) else { return .full }
        if n == 0 || length == 0 { return .unsatisfiable }
        return .partial(start: length - min(n, length), end: length - 1)
    }
    guard let a = saturatingDecimal(first) else { return .full }
    var b = UInt64.max
    if !last.isEmpty {
        guard let parsed = saturatingDecimal(last), parsed >= a else { return .full }
        b = parsed
    }
    if a >= length { return .unsatisfiable }
    return .partial(start: a, end: min(b, length - 1))
}

/// Whether a `Range` may be honoured given `If-Range` (RFC 9110 §13.1.5): true when there is no
/// `If-Range`; otherwise only when it is a strong entity tag equal to the current strong `etag`.
/// Weak tags and HTTP dates never match (strong comparison only), so the full representation is sent.
public func ifRangeMatches(_ ifRange: String?, etag: String?) -> Bool {
    guard let ifRange else { return true }
    guard let etag else { return false }
    let tag = trimOWS(Substring(ifRange))
    guard isStrongEntityTag(tag), isStrongEntityTag(Substring(etag)) else { return false }
    return tag == Substring(etag)
}

private func isStrongEntityTag(_ s: Substring) -> Bool {
    let u = s.utf8
    guard u.count >= 2, u.first == UInt8(ascii: "\""), u.last == UInt8(ascii: "\"") else { return false }
    // etagc = %x21 / %x23-7E / obs-text
    return u.dropFirst().dropLast().allSatisfy { $0 == 0x21 || ($0 >= 0x23 && $0 != 0x7F) }
}

private func trimOWS(_ s: Substring) -> Substring {
    var t = s
    while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
    return t
}

/// Decimal digits only; values beyond UInt64 saturate (a huge position is still a position).
private func saturatingDecimal(_ s: Substring) -> UInt64? {
    guard !s.isEmpty else { return nil }
    var n: UInt64 = 0
    for b in s.utf8 {
        guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
        let (m, o1) = n.multipliedReportingOverflow(by: 10)
        let (r, o2) = m.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
        n = (o1 || o2) ? UInt64.max : r
    }
    return n
}
