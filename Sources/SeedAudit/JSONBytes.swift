/// Appends JSON text straight into a byte buffer: the hot log paths (access log, audit records) build their
/// lines without intermediate Strings. Output is byte-for-byte what `jsonEscaped` and string interpolation
/// produce.
public enum JSONBytes {
    /// `s` escaped as `jsonEscaped` does (quote, backslash, `\n`, `\r`, `\t`, other C0 controls and DEL as
    /// `\u00xx`), without the surrounding quotes.
    @inlinable
    public static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { u in
            var start = 0
            for i in 0..<u.count {
                let c = u[i]
                guard c < 0x20 || c == 0x22 || c == 0x5C || c == 0x7F else { continue }
                if start < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<i])) }
                start = i + 1
                switch c {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
                case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
                default:
                    out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
                    out.append(hexDigit(c >> 4))
                    out.append(hexDigit(c & 0xF))
                }
            }
            if start < u.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<u.count])) }
        }
    }

    /// `"` + escaped `s` + `"`.
    @inlinable
    public static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        appendEscaped(s, to: &out)
        out.append(0x22)
    }

    /// The bytes of `s` as they are.
    @inlinable
    public static func appendRaw(_ s: StaticString, to out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    /// Decimal digits of `v` (with a leading `-` when negative), as `String(v)` writes them.
    @inlinable
    public static func appendInteger<T: BinaryInteger>(_ v: T, to out: inout [UInt8]) {
        if v < 0 {
            out.append(UInt8(ascii: "-"))
            appendMagnitude(UInt64(v.magnitude), to: &out)
        } else {
            appendMagnitude(UInt64(v), to: &out)
        }
    }

    @inlinable
    static func appendMagnitude(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 {
            out.append(0x30 + UInt8(v))
            return
        }
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: room for 20 digits
        var n = v
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while n > 0 {
                count += 1
                buf[32 - count] = 0x30 + UInt8(n % 10)
                n /= 10
            }
            out.append(contentsOf: buf[(32 - count)...])
        }
    }

    /// Zero-padded to `width` digits (non-negative values).
    @inlinable
    public static func appendPadded(_ v: Int, width: Int, to out: inout [UInt8]) {
        var digits = 1
        var t = v
        while t >= 10 {
            t /= 10
            digits += 1
        }
        if digits < width { for _ in 0..<(width - digits) { out.append(0x30) } }
        appendMagnitude(UInt64(max(0, v)), to: &out)
    }

    @inlinable
    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x57 + v }
}
