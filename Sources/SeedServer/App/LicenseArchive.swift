import SeedCompression
import SeedZip
import SeedCore

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

/// Single-member license ZIPs (one host asking for its license without `Accept: application/octet-stream`),
/// kept per member name with the license bytes they were built from: an entry is used only when the
/// license is byte-for-byte the same, so a renewed (or revoked and reissued) license is never answered with
/// the old ZIP. Bounded: when full, the table starts over.
final class LicenseZipCache: Sendable {
    static let shared = LicenseZipCache(capacity: 4096)

    private struct Entry {
        var license: [UInt8]
        var zip: [UInt8]
    }
    private let entries = Lock<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// `licenseZip([member])`, from the table when the same license was zipped before.
    func zip(_ member: (name: String, bytes: [UInt8])) throws(ZipError) -> [UInt8] {
        if let e = entries.withLock({ $0[member.name] }), e.license == member.bytes { return e.zip }
        let zip = try licenseZip([member])
        entries.withLock { t in
            if t.count >= capacity && t[member.name] == nil { t.removeAll(keepingCapacity: true) }
            t[member.name] = Entry(license: member.bytes, zip: zip)
        }
        return zip
    }

    var count: Int { entries.withLock { $0.count } }
}
