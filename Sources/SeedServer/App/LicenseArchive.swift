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
        local.le32(0x0403_4b50)
        local.le16(20)  // version needed
        local.le16(0x0800)  // UTF-8 names
        local.le16(0)  // stored
        local.le16(dosTime)
        local.le16(dosDate)
        local.le32(crc)
        local.le32(UInt32(m.bytes.count))
        local.le32(UInt32(m.bytes.count))
        local.le16(UInt16(name.count))
        local.le16(0)
        out += local
        out += name
        out += m.bytes

        central.le32(0x0201_4b50)
        central.le16(20)  // made by: MS-DOS, 2.0
        central.le16(20)
        central.le16(0x0800)
        central.le16(0)
        central.le16(dosTime)
        central.le16(dosDate)
        central.le32(crc)
        central.le32(UInt32(m.bytes.count))
        central.le32(UInt32(m.bytes.count))
        central.le16(UInt16(name.count))
        central.le16(0)  // extra
        central.le16(0)  // comment
        central.le16(0)  // disk
        central.le16(0)  // internal attributes
        central.le32(0)  // external attributes
        central.le32(offset)
        central += name
    }
    let cdOffset = UInt32(out.count)
    out += central
    out.le32(0x0605_4b50)
    out.le16(0)
    out.le16(0)
    out.le16(UInt16(members.count))
    out.le16(UInt16(members.count))
    out.le32(UInt32(central.count))
    out.le32(cdOffset)
    out.le16(0)
    return out
}

extension Array where Element == UInt8 {
    fileprivate mutating func le16(_ v: UInt16) {
        append(UInt8(v & 0xff))
        append(UInt8(v >> 8))
    }
    fileprivate mutating func le32(_ v: UInt32) {
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
