import SeedCompression
import SeedZip

/// The license-only route's ZIP of `HOSTNAME.lic` files, laid out by SeedZip (the one ZIP writer of the
/// product). Members are stored, not deflated: licenses are encrypted blobs that do not compress.
/// Deterministic: fixed timestamps (1980-01-01 00:00), members in the given order.
func licenseZip(_ members: [(name: String, bytes: [UInt8])]) throws(ZipError) -> [UInt8] {
    let planned = members.map { m in
        ZipPlanMember(
            name: m.name, method: 0, crc32: CRC32.checksum(m.bytes), compressedSize: UInt64(m.bytes.count),
            uncompressedSize: UInt64(m.bytes.count), dosTime: 0, dosDate: 0x21,
            externalAttributes: UInt32(0o100644) << 16)
    }
    let layout = try ZipPlanner.plan(planned)
    var out: [UInt8] = []
    out.reserveCapacity(Int(layout.totalLength))
    for segment in layout.segments {
        switch segment {
        case .bytes(let b): out += b
        case .member(let i, let offset, let length): out += members[i].bytes[Int(offset)..<Int(offset + length)]
        }
    }
    return out
}
