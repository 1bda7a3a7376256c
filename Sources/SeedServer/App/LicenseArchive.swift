/// A small ZIP of stored (uncompressed) members, for the license-only route's `HOSTNAME.lic` files.
/// Deterministic: fixed timestamps, members in the given order. Licenses are encrypted blobs that do not
/// compress, so storing them costs nothing and needs no deflate.
func storedZip(_ members: [(name: String, bytes: [UInt8])]) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    // 1980-01-01 00:00:00 in MS-DOS format: date (1980-1980)<<9 | 1<<5 | 1, time 0.
    let dosTime: UInt16 = 0
    let dosDate: UInt16 = 0x21
    for m in members {
        let name = Array(m.name.utf8)
        let crc = crc32(m.bytes)
        let offset = UInt32(out.count)
        var local: [UInt8] = []
        local.appendLE32(0x0403_4b50)
        local.appendLE16(20)  // version needed
        local.appendLE16(0x0800)  // UTF-8 names
        local.appendLE16(0)  // stored
        local.appendLE16(dosTime)
        local.appendLE16(dosDate)
        local.appendLE32(crc)
        local.appendLE32(UInt32(m.bytes.count))
        local.appendLE32(UInt32(m.bytes.count))
        local.appendLE16(UInt16(name.count))
        local.appendLE16(0)
        out += local
        out += name
        out += m.bytes

        central.appendLE32(0x0201_4b50)
        central.appendLE16(20)  // made by: MS-DOS, 2.0
        central.appendLE16(20)
        central.appendLE16(0x0800)
        central.appendLE16(0)
        central.appendLE16(dosTime)
        central.appendLE16(dosDate)
        central.appendLE32(crc)
        central.appendLE32(UInt32(m.bytes.count))
        central.appendLE32(UInt32(m.bytes.count))
        central.appendLE16(UInt16(name.count))
        central.appendLE16(0)  // extra
        central.appendLE16(0)  // comment
        central.appendLE16(0)  // disk
        central.appendLE16(0)  // internal attributes
        central.appendLE32(0)  // external attributes
        central.appendLE32(offset)
        central += name
    }
    let cdOffset = UInt32(out.count)
    out += central
    out.appendLE32(0x0605_4b50)
    out.appendLE16(0)
    out.appendLE16(0)
    out.appendLE16(UInt16(members.count))
    out.appendLE16(UInt16(members.count))
    out.appendLE32(UInt32(central.count))
    out.appendLE32(cdOffset)
    out.appendLE16(0)
    return out
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendLE16(_ v: UInt16) {
        append(UInt8(v & 0xff))
        append(UInt8(v >> 8))
    }
    fileprivate mutating func appendLE32(_ v: UInt32) {
        for i in 0..<4 { append(UInt8((v >> (8 * UInt32(i))) & 0xff)) }
    }
}

private let crcTable: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

/// CRC-32 (ISO-HDLC), as ZIP uses it.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}
