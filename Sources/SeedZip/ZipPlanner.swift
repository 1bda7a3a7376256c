/// One member to place in an assembled archive; its data (already compressed with `method`) comes
/// from the caller, referred to by its index in the list given to `ZipPlanner.plan`.
public struct ZipPlanMember: Sendable, Equatable {
    public var name: String
    public var method: UInt16
    public var crc32: UInt32
    public var compressedSize: UInt64
    public var uncompressedSize: UInt64
    public var dosTime: UInt16
    public var dosDate: UInt16
    public var externalAttributes: UInt32
    /// Host system and spec version; the host byte tells readers how to read `externalAttributes`.
    public var versionMadeBy: UInt16

    public init(
        name: String, method: UInt16, crc32: UInt32, compressedSize: UInt64, uncompressedSize: UInt64,
        dosTime: UInt16, dosDate: UInt16, externalAttributes: UInt32, versionMadeBy: UInt16 = 0x0314
    ) {
        self.name = name
        self.method = method
        self.crc32 = crc32
        self.compressedSize = compressedSize
        self.uncompressedSize = uncompressedSize
        self.dosTime = dosTime
        self.dosDate = dosDate
        self.externalAttributes = externalAttributes
        self.versionMadeBy = versionMadeBy
    }
}

/// A piece of an assembled archive: literal header bytes, or a range of member `index`'s data.
public enum ZipSegment: Sendable, Equatable {
    case bytes([UInt8])
    /// `offset` and `length` are within the member's compressed data (the whole member: 0, compressedSize).
    case member(index: Int, offset: UInt64, length: UInt64)

    public var length: UInt64 {
        switch self {
        case .bytes(let b): UInt64(b.count)
        case .member(_, _, let l): l
        }
    }
}

/// A complete archive as an ordered list of segments.
public struct ZipLayout: Sendable, Equatable {
    public var segments: [ZipSegment]
    public var totalLength: UInt64
}

/// Builds an archive layout member by member. A value: copy it after a common prefix of members
/// (a package) and add per-host members to the copy, without redoing the prefix.
public struct ZipLayoutBuilder: Sendable {
    public private(set) var segments: [ZipSegment] = []
    /// Central directory entries frozen by `seal()`: shared (not copied) by every copy of the builder and every
    /// layout finished from one, each array one segment of the output.
    private var sealedCentral: [[UInt8]] = []
    /// Central directory entries added since the last `seal()`.
    private var central: [UInt8] = []
    private var offset: UInt64 = 0
    private var count = 0
    private var seen: [String: String] = [:]

    public init() {}

    public mutating func add(_ m: ZipPlanMember) throws(ZipError) {
        let index = count
        if let why = unsafePathReason(m.name) { throw ZipError(.unsafePath(why), member: m.name) }
        if m.method != 0 && m.method != 8 { throw ZipError(.unsupportedMethod(m.method), member: m.name) }
        if m.method == 0 && m.compressedSize != m.uncompressedSize {
            throw ZipError(.sizeMismatch("stored member with different sizes"), member: m.name)
        }
        let key = windowsKey(m.name)
        if let other = seen[key] { throw ZipError(.duplicateName(other), member: m.name) }
        let name = Array(m.name.utf8)
        guard name.count <= 0xFFFF else { throw ZipError(.corrupt("name longer than 65535 bytes"), member: m.name) }
        seen[key] = m.name
        count += 1
        let flags: UInt16 = name.allSatisfy({ $0 < 0x80 }) ? 0 : 0x0800
        let sizes64 = m.compressedSize >= 0xFFFF_FFFF || m.uncompressedSize >= 0xFFFF_FFFF
        let offset64 = offset >= 0xFFFF_FFFF
        let needs64 = sizes64 || offset64
        let version: UInt16 = needs64 ? 45 : 20

        var local: [UInt8] = []
        local.reserveCapacity(30 + name.count + 20)
        put32(&local, 0x0403_4b50)
        put16(&local, version)
        put16(&local, flags)
        put16(&local, m.method)
        put16(&local, m.dosTime)
        put16(&local, m.dosDate)
        put32(&local, m.crc32)
        // In a local header the ZIP64 extra must hold both sizes (APPNOTE 4.5.3).
        put32(&local, sizes64 ? 0xFFFF_FFFF : UInt32(m.compressedSize))
        put32(&local, sizes64 ? 0xFFFF_FFFF : UInt32(m.uncompressedSize))
        put16(&local, UInt16(name.count))
        put16(&local, sizes64 ? 20 : 0)
        local += name
        if sizes64 {
            put16(&local, 1)
            put16(&local, 16)
            put64(&local, m.uncompressedSize)
            put64(&local, m.compressedSize)
        }
        segments.append(.bytes(local))
        if m.compressedSize > 0 { segments.append(.member(index: index, offset: 0, length: m.compressedSize)) }

        var extra: [UInt8] = []
        if needs64 {
            var body: [UInt8] = []
            if sizes64 {
                put64(&body, m.uncompressedSize)
                put64(&body, m.compressedSize)
            }
            if offset64 { put64(&body, offset) }
            put16(&extra, 1)
            put16(&extra, UInt16(body.count))
            extra += body
        }
        put32(&central, 0x0201_4b50)
        put16(&central, m.versionMadeBy)
        put16(&central, version)
        put16(&central, flags)
        put16(&central, m.method)
        put16(&central, m.dosTime)
        put16(&central, m.dosDate)
        put32(&central, m.crc32)
        put32(&central, sizes64 ? 0xFFFF_FFFF : UInt32(m.compressedSize))
        put32(&central, sizes64 ? 0xFFFF_FFFF : UInt32(m.uncompressedSize))
        put16(&central, UInt16(name.count))
        put16(&central, UInt16(extra.count))
        put16(&central, 0)  // comment
        put16(&central, 0)  // disk
        put16(&central, 0)  // internal attributes
        put32(&central, m.externalAttributes)
        put32(&central, offset64 ? 0xFFFF_FFFF : UInt32(offset))
        central += name
        central += extra

        offset += UInt64(local.count) + m.compressedSize
    }

    /// Freezes the central directory entries added so far into a chunk that copies of this builder share
    /// and that `finish` emits as its own segment, so a common prefix (a package) copied once per host does
    /// not copy its central directory again for each host. The archive's bytes do not change.
    public mutating func seal() {
        if central.isEmpty { return }
        sealedCentral.append(central)
        central = []
    }

    /// Appends the central directory and end records (ZIP64 ones when needed).
    public func finish() -> ZipLayout {
        var segments = self.segments
        let cdOffset = offset
        let sealedSize = UInt64(sealedCentral.reduce(0) { $0 + $1.count })
        let cdSize = sealedSize + UInt64(central.count)
        let count = UInt64(self.count)
        segments.reserveCapacity(segments.count + sealedCentral.count + 1)
        for chunk in sealedCentral { segments.append(.bytes(chunk)) }
        var tail = central
        let needs64 = count >= 0xFFFF || cdOffset >= 0xFFFF_FFFF || cdSize >= 0xFFFF_FFFF
        if needs64 {
            let recordOffset = cdOffset + cdSize
            put32(&tail, 0x0606_4b50)
            put64(&tail, 44)
            put16(&tail, 45)
            put16(&tail, 45)
            put32(&tail, 0)
            put32(&tail, 0)
            put64(&tail, count)
            put64(&tail, count)
            put64(&tail, cdSize)
            put64(&tail, cdOffset)
            put32(&tail, 0x0706_4b50)
            put32(&tail, 0)
            put64(&tail, recordOffset)
            put32(&tail, 1)
        }
        put32(&tail, 0x0605_4b50)
        put16(&tail, 0)
        put16(&tail, 0)
        put16(&tail, needs64 ? 0xFFFF : UInt16(count))
        put16(&tail, needs64 ? 0xFFFF : UInt16(count))
        put32(&tail, needs64 ? 0xFFFF_FFFF : UInt32(cdSize))
        put32(&tail, needs64 ? 0xFFFF_FFFF : UInt32(cdOffset))
        put16(&tail, 0)
        segments.append(.bytes(tail))
        return ZipLayout(segments: segments, totalLength: offset + sealedSize + UInt64(tail.count))
    }
}

/// Lays out an archive deterministically (same members, same bytes). See docs/design.md, "ZIP assembly".
public enum ZipPlanner {
    public static func plan(_ members: [ZipPlanMember]) throws(ZipError) -> ZipLayout {
        var b = ZipLayoutBuilder()
        for m in members { try b.add(m) }
        return b.finish()
    }

    /// Encodes a calendar time as MS-DOS time and date (2-second resolution, 1980...2107).
    public static func dosTimestamp(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int)
        -> (time: UInt16, date: UInt16)
    {
        let y = min(max(year, 1980), 2107)
        let time = UInt16(hour << 11 | minute << 5 | second / 2)
        let date = UInt16((y - 1980) << 9 | month << 5 | day)
        return (time, date)
    }
}

@inline(__always) func put16(_ b: inout [UInt8], _ v: UInt16) {
    b.append(UInt8(v & 0xFF))
    b.append(UInt8(v >> 8))
}
@inline(__always) func put32(_ b: inout [UInt8], _ v: UInt32) {
    put16(&b, UInt16(v & 0xFFFF))
    put16(&b, UInt16(v >> 16))
}
@inline(__always) func put64(_ b: inout [UInt8], _ v: UInt64) {
    put32(&b, UInt32(v & 0xFFFF_FFFF))
    put32(&b, UInt32(v >> 32))
}
