/// Escapes a string for use inside a JSON string literal (RFC 8259 §7), without the quotes.
public func jsonEscaped(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count + 2)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

/// Lower-case hexadecimal of bytes.
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Compares two byte sequences in time that depends only on their lengths (for secrets).
public func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    var diff: UInt8 = a.count == b.count ? 0 : 1
    var ia = a.makeIterator()
    var ib = b.makeIterator()
    // Walk the longer length so the time does not reveal where they differ.
    for _ in 0..<max(a.count, b.count) {
        let x = ia.next() ?? 0
        let y = ib.next() ?? 0
        diff |= x ^ y
    }
    return diff == 0
}
