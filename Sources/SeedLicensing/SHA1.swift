/// SHA-1 (FIPS 180-4), here only for the portal's host-name HMAC (PROTOCOL.md §5); not used for security.
public struct SHA1 {
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0
    )
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    public init() { buffer.reserveCapacity(64) }

    public mutating func update(_ data: some Sequence<UInt8>) {
        for b in data {
            buffer.append(b)
            length &+= 1
            if buffer.count == 64 {
                compress(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    public mutating func finalize() -> [UInt8] {
        let bitLength = length &* 8
        update([0x80])
        while buffer.count != 56 { update([0]) }
        for i in (0..<8).reversed() { buffer.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
        compress(buffer)
        buffer.removeAll()
        var out: [UInt8] = []
        for v in [h.0, h.1, h.2, h.3, h.4] {
            out += [
                UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8),
                UInt8(truncatingIfNeeded: v),
            ]
        }
        return out
    }

    public static func hash(_ data: some Sequence<UInt8>) -> [UInt8] {
        var s = SHA1()
        s.update(data)
        return s.finalize()
    }

    private mutating func compress(_ block: [UInt8]) {
        var w = [UInt32](repeating: 0, count: 80)
        for i in 0..<16 {
            w[i] =
                UInt32(block[i * 4]) << 24 | UInt32(block[i * 4 + 1]) << 16 | UInt32(block[i * 4 + 2]) << 8
                | UInt32(block[i * 4 + 3])
        }
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = (x << 1) | (x >> 31)
        }
        var (a, b, c, d, e) = h
        for i in 0..<80 {
            let f: UInt32
            let k: UInt32
            switch i {
            case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
            case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
            case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
            default: f = b ^ c ^ d; k = 0xCA62_C1D6
            }
            let t = ((a << 5) | (a >> 27)) &+ f &+ e &+ k &+ w[i]
            e = d
            d = c
            c = (b << 30) | (b >> 2)
            b = a
            a = t
        }
        h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
    }
}

/// HMAC (RFC 2104) over SHA-1.
public func hmacSHA1(key: [UInt8], message: some Sequence<UInt8>) -> [UInt8] {
    var k = key.count > 64 ? SHA1.hash(key) : key
    k += [UInt8](repeating: 0, count: 64 - k.count)
    var inner = SHA1()
    inner.update(k.map { $0 ^ 0x36 })
    inner.update(message)
    var outer = SHA1()
    outer.update(k.map { $0 ^ 0x5C })
    outer.update(inner.finalize())
    return outer.finalize()
}

/// base64url (RFC 4648 §5) without `=` padding.
public func base64URLUnpadded(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var out: [UInt8] = []
    var i = 0
    while i + 3 <= bytes.count {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
        i += 3
    }
    let rest = bytes.count - i
    if rest == 1 {
        let v = UInt32(bytes[i]) << 16
        out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)]]
    } else if rest == 2 {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)]]
    }
    return String(decoding: out, as: UTF8.self)
}

/// The host-name hash the vendor portal's license API takes instead of the name (PROTOCOL.md §5).
///
/// The key is the published hex string *decoded to its 64 bytes*: the THOR manual's own command is
/// `openssl dgst -sha1 -mac hmac -macopt hexkey:b190…` (`hexkey:` decodes hex), so the ASCII text of
/// the hex string would give different hashes than the portal expects.
public enum PortalHMAC {
    public static let keyHex =
        "b190dd4a98456999b6d9c7e4e1ac1f231b978c3e7652898d7db2fcdede34613dbc7909c9fc8b3177bb904871b8b7fc7a30cb1582ce9b0089397836dcc209e2d6"

    public static let key: [UInt8] = {
        let digits = Array(keyHex.utf8)
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
        return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
    }()

    /// `base64url(HMAC-SHA1(key, lowercase(shortHost)))` without padding.
    public static func hash(shortHost: String) -> String {
        base64URLUnpadded(hmacSHA1(key: key, message: Array(shortHost.lowercased().utf8)))
    }
}
