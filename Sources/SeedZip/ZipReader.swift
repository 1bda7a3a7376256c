import SeedCompression

/// Where the reader gets archive bytes: the caller does the I/O (a file, a byte array).
public protocol ZipByteSource {
    var size: UInt64 { get }
    /// Returns exactly `count` bytes at `offset`, or throws (`.truncated` / `.io`).
    func read(at offset: UInt64, count: Int) throws(ZipError) -> [UInt8]
}

/// An archive held in memory.
public struct ZipBytes: ZipByteSource, Sendable {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: UInt64 { UInt64(bytes.count) }
    public func read(at offset: UInt64, count: Int) throws(ZipError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw ZipError(.truncated("wanted \(count) bytes at offset \(offset) of \(size)"))
        }
        return Array(bytes[Int(offset)..<Int(offset) + count])
    }
}

/// Bounds applied while reading an untrusted archive.
public struct ZipLimits: Sendable, Equatable {
    public var maxMembers: Int
    /// Sum of all declared uncompressed sizes.
    public var maxTotalUncompressedBytes: UInt64
    /// Largest uncompressed/compressed ratio accepted for a member bigger than `ratioExemptBytes`.
    public var maxCompressionRatio: UInt64
    /// Members at most this large are not ratio-checked (a tiny file may compress very well).
    public var ratioExemptBytes: UInt64

    public init(
        maxMembers: Int = 100_000, maxTotalUncompressedBytes: UInt64 = 16 << 30, maxCompressionRatio: UInt64 = 200,
        ratioExemptBytes: UInt64 = 1 << 20
    ) {
        self.maxMembers = maxMembers
        self.maxTotalUncompressedBytes = maxTotalUncompressedBytes
        self.maxCompressionRatio = maxCompressionRatio
        self.ratioExemptBytes = ratioExemptBytes
    }
}

/// One member of an archive, as the central directory (checked against the local header) declares it.
public struct ZipEntry: Sendable, Equatable {
    public var name: String
    public var versionMadeBy: UInt16
    public var flags: UInt16
    public var method: UInt16
    public var dosTime: UInt16
    public var dosDate: UInt16
    public var crc32: UInt32
    public var compressedSize: UInt64
    public var uncompressedSize: UInt64
    public var externalAttributes: UInt32
    public var localHeaderOffset: UInt64
    /// Where the member's (compressed) data starts in the archive.
    public var dataOffset: UInt64

    public var isDirectory: Bool { name.hasSuffix("/") || name.hasSuffix("\\") }
}

/// A validated view of an archive's members. See docs/design.md, "ZIP reading".
public struct ZipArchive: Sendable {
    public let entries: [ZipEntry]
    public let limits: ZipLimits

    static let eocdSignature: UInt32 = 0x0605_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let localSignature: UInt32 = 0x0403_4b50
    static let descriptorSignature: UInt32 = 0x0807_4b50

    /// Reads and checks the whole directory: every refusal rule runs here, before any data is inflated.
    public init(source: some ZipByteSource, limits: ZipLimits = ZipLimits()) throws(ZipError) {
        self.limits = limits
        let size = source.size
        guard size >= 22 else { throw ZipError(.noEndOfCentralDirectory) }
        let tailCount = Int(min(size, 22 + 0xFFFF))
        let tailStart = size - UInt64(tailCount)
        let tail = try source.read(at: tailStart, count: tailCount)
        // The EOCD is followed only by its comment, so search backwards for a record whose comment
        // length lands exactly on the end of the file.
        var eocdIndex: Int? = nil
        var i = tailCount - 22
        while i >= 0 {
            if le32(tail, i) == Self.eocdSignature && i + 22 + Int(le16(tail, i + 20)) == tailCount {
                eocdIndex = i
                break
            }
            i -= 1
        }
        guard let e = eocdIndex else { throw ZipError(.noEndOfCentralDirectory) }
        let eocdOffset = tailStart + UInt64(e)
        let diskNumber = le16(tail, e + 4)
        let cdDisk = le16(tail, e + 6)
        var count = UInt64(le16(tail, e + 10))
        var cdSize = UInt64(le32(tail, e + 12))
        var cdOffset = UInt64(le32(tail, e + 16))
        var cdEnd = eocdOffset
        if count != UInt64(le16(tail, e + 8)) { throw ZipError(.multiDisk) }

        // ZIP64 (APPNOTE 4.3.14-15): a locator sits just before the EOCD.
        if eocdOffset >= 20 {
            let loc = try source.read(at: eocdOffset - 20, count: 20)
            if le32(loc, 0) == Self.zip64LocatorSignature {
                let recordOffset = le64(loc, 8)
                guard recordOffset <= eocdOffset - 20, eocdOffset - 20 - recordOffset >= 56 else {
                    throw ZipError(.corrupt("ZIP64 end-of-central-directory locator points outside the archive"))
                }
                let rec = try source.read(at: recordOffset, count: 56)
                guard le32(rec, 0) == Self.zip64EOCDSignature else {
                    throw ZipError(.corrupt("ZIP64 end-of-central-directory record missing"))
                }
                if le32(rec, 16) != 0 || le32(rec, 20) != 0 || le64(rec, 24) != le64(rec, 32) {
                    throw ZipError(.multiDisk)
                }
                count = le64(rec, 32)
                cdSize = le64(rec, 40)
                cdOffset = le64(rec, 48)
                cdEnd = recordOffset
            } else if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
                throw ZipError(.corrupt("end-of-central-directory needs ZIP64 but the ZIP64 locator is missing"))
            }
        }
        if diskNumber != 0 || cdDisk != 0 { throw ZipError(.multiDisk) }
        if count > UInt64(limits.maxMembers) { throw ZipError(.tooManyMembers(count: count, limit: limits.maxMembers)) }
        guard cdOffset <= cdEnd, cdSize <= cdEnd - cdOffset else {
            throw ZipError(.truncated("central directory (\(cdSize) bytes at \(cdOffset)) lies outside the archive"))
        }
        // Each central record is at least 46 bytes; a count the directory cannot hold is corruption.
        guard count * 46 <= cdSize else {
            throw ZipError(.corrupt("central directory of \(cdSize) bytes cannot hold \(count) members"))
        }
        let cd = try source.read(at: cdOffset, count: Int(cdSize))

        var entries: [ZipEntry] = []
        entries.reserveCapacity(Int(count))
        var seen: [String: String] = [:]
        var total: UInt64 = 0
        var p = 0
        for n in 0..<count {
            guard p + 46 <= cd.count, le32(cd, p) == Self.centralSignature else {
                throw ZipError(.corrupt("central directory record \(n) is missing or damaged"))
            }
            let madeBy = le16(cd, p + 4)
            let flags = le16(cd, p + 8)
            let method = le16(cd, p + 10)
            let time = le16(cd, p + 12)
            let date = le16(cd, p + 14)
            let crc = le32(cd, p + 16)
            var csize = UInt64(le32(cd, p + 20))
            var usize = UInt64(le32(cd, p + 24))
            let nameLen = Int(le16(cd, p + 28))
            let extraLen = Int(le16(cd, p + 30))
            let commentLen = Int(le16(cd, p + 32))
            let disk = le16(cd, p + 34)
            let external = le32(cd, p + 38)
            var localOffset = UInt64(le32(cd, p + 42))
            let recordEnd = p + 46 + nameLen + extraLen + commentLen
            guard recordEnd <= cd.count else {
                throw ZipError(.truncated("central directory record \(n) runs past the directory"))
            }
            let nameBytes = Array(cd[(p + 46)..<(p + 46 + nameLen)])
            let name = decodeName(nameBytes)
            // ZIP64 extra field (APPNOTE 4.5.3): only the fields whose 32-bit value is saturated appear.
            if usize == 0xFFFF_FFFF || csize == 0xFFFF_FFFF || localOffset == 0xFFFF_FFFF {
                guard let z = findExtra(cd, from: p + 46 + nameLen, count: extraLen, id: 1) else {
                    throw ZipError(.corrupt("sizes need a ZIP64 extra field, which is missing"), member: name)
                }
                var q = z.lowerBound
                func take() throws(ZipError) -> UInt64 {
                    guard q + 8 <= z.upperBound else {
                        throw ZipError(.corrupt("ZIP64 extra field too short"), member: name)
                    }
                    defer { q += 8 }
                    return le64(cd, q)
                }
                if usize == 0xFFFF_FFFF { usize = try take() }
                if csize == 0xFFFF_FFFF { csize = try take() }
                if localOffset == 0xFFFF_FFFF { localOffset = try take() }
            }
            p = recordEnd
            if disk != 0 && disk != 0xFFFF { throw ZipError(.multiDisk, member: name) }
            let entry = ZipEntry(
                name: name, versionMadeBy: madeBy, flags: flags, method: method, dosTime: time, dosDate: date,
                crc32: crc, compressedSize: csize, uncompressedSize: usize, externalAttributes: external,
                localHeaderOffset: localOffset, dataOffset: 0)
            try Self.checkDeclared(entry, nameBytes: nameBytes, limits: limits)
            let key = windowsKey(name)
            if let other = seen[key] { throw ZipError(.duplicateName(other), member: name) }
            seen[key] = name
            total += usize
            if total > limits.maxTotalUncompressedBytes {
                throw ZipError(.tooLarge(bytes: total, limit: limits.maxTotalUncompressedBytes), member: name)
            }
            entries.append(entry)
        }

        // Local headers: must agree with the directory, and member data must not overlap
        // (overlapping members are a known zip-bomb construction).
        for k in entries.indices {
            entries[k].dataOffset = try Self.checkLocalHeader(entries[k], source: source, limit: cdOffset)
        }
        let order = entries.indices.sorted { entries[$0].localHeaderOffset < entries[$1].localHeaderOffset }
        for (a, b) in zip(order, order.dropFirst()) {
            let end = entries[a].dataOffset + entries[a].compressedSize
            if end > entries[b].localHeaderOffset {
                throw ZipError(.corrupt("member data overlaps \"\(entries[a].name)\""), member: entries[b].name)
            }
        }
        self.entries = entries
    }

    static func checkDeclared(_ e: ZipEntry, nameBytes: [UInt8], limits: ZipLimits) throws(ZipError) {
        if let why = unsafePathReason(e.name, rawBytes: nameBytes) { throw ZipError(.unsafePath(why), member: e.name) }
        if e.flags & 1 != 0 { throw ZipError(.encrypted, member: e.name) }
        // A Unix symlink member could point outside the folder and redirect later members through it.
        if e.versionMadeBy >> 8 == 3 && (e.externalAttributes >> 16) & 0o170000 == 0o120000 {
            throw ZipError(.unsafePath("symbolic link"), member: e.name)
        }
        if e.method != 0 && e.method != 8 { throw ZipError(.unsupportedMethod(e.method), member: e.name) }
        if e.method == 0 && e.compressedSize != e.uncompressedSize {
            throw ZipError(
                .sizeMismatch("stored member declares \(e.compressedSize) compressed vs \(e.uncompressedSize) bytes"),
                member: e.name)
        }
        if e.uncompressedSize > limits.ratioExemptBytes {
            let ratio = e.compressedSize == 0 ? UInt64.max : e.uncompressedSize / e.compressedSize
            if ratio > limits.maxCompressionRatio {
                throw ZipError(.compressionRatio(ratio: ratio, limit: limits.maxCompressionRatio), member: e.name)
            }
        }
        if e.uncompressedSize > limits.maxTotalUncompressedBytes {
            throw ZipError(
                .tooLarge(bytes: e.uncompressedSize, limit: limits.maxTotalUncompressedBytes), member: e.name)
        }
    }

    static func checkLocalHeader(_ e: ZipEntry, source: some ZipByteSource, limit: UInt64) throws(ZipError)
        -> UInt64
    {
        guard e.localHeaderOffset <= limit, limit - e.localHeaderOffset >= 30 else {
            throw ZipError(
                .truncated("local header offset \(e.localHeaderOffset) is outside the data area"), member: e.name)
        }
        let h = try source.read(at: e.localHeaderOffset, count: 30)
        guard le32(h, 0) == localSignature else {
            throw ZipError(.corrupt("local header signature missing at offset \(e.localHeaderOffset)"), member: e.name)
        }
        let flags = le16(h, 6)
        let method = le16(h, 8)
        let nameLen = Int(le16(h, 26))
        let extraLen = Int(le16(h, 28))
        let varStart = e.localHeaderOffset + 30
        guard UInt64(nameLen + extraLen) <= limit - varStart else {
            throw ZipError(.truncated("local header runs into the central directory"), member: e.name)
        }
        let v = try source.read(at: varStart, count: nameLen + extraLen)
        if decodeName(Array(v[0..<nameLen])) != e.name {
            throw ZipError(.corrupt("local header names a different file"), member: e.name)
        }
        if flags & 1 != 0 { throw ZipError(.encrypted, member: e.name) }
        if method != e.method {
            throw ZipError(
                .corrupt("local header method \(method) differs from directory method \(e.method)"), member: e.name)
        }
        let dataOffset = varStart + UInt64(nameLen + extraLen)
        guard dataOffset <= limit, e.compressedSize <= limit - dataOffset else {
            throw ZipError(.truncated("member data runs past the end of the data area"), member: e.name)
        }
        if flags & 8 == 0 {
            let crc = le32(h, 14)
            var csize = UInt64(le32(h, 18))
            var usize = UInt64(le32(h, 22))
            if csize == 0xFFFF_FFFF || usize == 0xFFFF_FFFF {
                if let z = findExtra(v, from: nameLen, count: extraLen, id: 1), z.count >= 16 {
                    usize = le64(v, z.lowerBound)
                    csize = le64(v, z.lowerBound + 8)
                }
            }
            if crc != e.crc32 {
                throw ZipError(
                    .corrupt("local header CRC \(hex32(crc)) differs from directory \(hex32(e.crc32))"), member: e.name)
            }
            if csize != e.compressedSize || usize != e.uncompressedSize {
                throw ZipError(
                    .sizeMismatch(
                        "local header says \(csize)/\(usize), directory says \(e.compressedSize)/\(e.uncompressedSize) (compressed/uncompressed)"
                    ),
                    member: e.name)
            }
        } else {
            // Data descriptor (APPNOTE 4.3.9): optional signature, then CRC and sizes of 4 or 8 bytes.
            let at = dataOffset + e.compressedSize
            let avail = Int(min(24, limit - at))
            let d = try source.read(at: at, count: avail)
            var candidates: [[UInt8]] = []
            if avail >= 4 && le32(d, 0) == descriptorSignature { candidates.append(Array(d[4...])) }
            candidates.append(d)
            var ok = false
            for c in candidates {
                if c.count >= 12 && le32(c, 0) == e.crc32 && UInt64(le32(c, 4)) == e.compressedSize
                    && UInt64(le32(c, 8)) == e.uncompressedSize
                {
                    ok = true
                }
                if c.count >= 20 && le32(c, 0) == e.crc32 && le64(c, 4) == e.compressedSize
                    && le64(c, 12) == e.uncompressedSize
                {
                    ok = true
                }
            }
            if !ok { throw ZipError(.sizeMismatch("data descriptor does not match the directory"), member: e.name) }
        }
        return dataOffset
    }

    /// Streams one member's uncompressed content to `sink` in chunks, checking CRC-32 and size.
    /// Inflation is capped at the declared size, so a lying header cannot expand the output.
    /// Returns the number of uncompressed bytes produced.
    @discardableResult
    public func extract(
        _ entry: ZipEntry, from source: some ZipByteSource, chunkSize: Int = 1 << 20,
        sink: (UnsafeRawBufferPointer) -> Void
    ) throws(ZipError) -> UInt64 {
        var crc = CRC32()
        var produced: UInt64 = 0
        var offset: UInt64 = 0
        let inflater: RawInflater?
        do {
            inflater = entry.method == 8 ? try RawInflater(outputLimit: entry.uncompressedSize) : nil
        } catch {
            throw ZipError(.inflate(error.description), member: entry.name)
        }
        while offset < entry.compressedSize {
            let n = Int(min(UInt64(chunkSize), entry.compressedSize - offset))
            let chunk = try source.read(at: entry.dataOffset + offset, count: n)
            offset += UInt64(n)
            if let inflater {
                let r: Result<Void, CompressionError> = chunk.withUnsafeBytes { b in
                    Result { () throws(CompressionError) in
                        try inflater.inflate(b) { out in
                            crc.update(out)
                            produced += UInt64(out.count)
                            sink(out)
                        }
                    }
                }
                do { try r.get() } catch {
                    if case .outputLimitExceeded = error.kind {
                        throw ZipError(
                            .sizeMismatch("inflates to more than the declared \(entry.uncompressedSize) bytes"),
                            member: entry.name)
                    }
                    throw ZipError(.inflate(error.description), member: entry.name)
                }
            } else {
                chunk.withUnsafeBytes { b in
                    crc.update(b)
                    sink(b)
                }
                produced += UInt64(n)
            }
        }
        if let inflater, !inflater.isFinished {
            throw ZipError(.inflate("the deflate stream ends early"), member: entry.name)
        }
        if produced != entry.uncompressedSize {
            throw ZipError(
                .sizeMismatch("inflates to \(produced) bytes, declared \(entry.uncompressedSize)"), member: entry.name)
        }
        if crc.value != entry.crc32 {
            throw ZipError(.crcMismatch(expected: entry.crc32, actual: crc.value), member: entry.name)
        }
        return produced
    }

    /// Extracts a member into memory (for small members only).
    public func contents(of entry: ZipEntry, from source: some ZipByteSource) throws(ZipError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(min(entry.uncompressedSize, 1 << 24)))
        try extract(entry, from: source) { out.append(contentsOf: $0) }
        return out
    }
}

/// Why a member name is unsafe to extract on Windows or Unix, or nil when it is fine.
public func unsafePathReason(_ name: String, rawBytes: [UInt8]? = nil) -> String? {
    if name.isEmpty { return "empty name" }
    if (rawBytes ?? Array(name.utf8)).contains(0) || name.unicodeScalars.contains("\0") { return "NUL byte in name" }
    if name.hasPrefix("/") || name.hasPrefix("\\") { return "absolute path" }
    let scalars = Array(name.unicodeScalars)
    if scalars.count >= 2 && scalars[1] == ":" { return "drive letter" }
    if name.contains(":") { return "colon in name (drive letter or alternate data stream)" }
    // Windows treats the backslash as a separator too, so "..\\x" escapes just like "../x".
    for seg in name.split(separator: "/", omittingEmptySubsequences: false).flatMap({
        $0.split(separator: "\\", omittingEmptySubsequences: false)
    }) {
        if seg == ".." { return "\"..\" segment" }
    }
    return nil
}

/// The name as Windows compares it: backslashes are slashes, case is folded, trailing slash dropped.
public func windowsKey(_ name: String) -> String {
    var s = name.replacingBackslashes().lowercased()
    while s.hasSuffix("/") { s.removeLast() }
    return s
}

extension String {
    fileprivate func replacingBackslashes() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\\" ? "/" : $0 }))
    }
}

/// UTF-8 when valid (bit 11 or not: modern tools write UTF-8 either way), otherwise bytes as Latin-1.
func decodeName(_ bytes: [UInt8]) -> String {
    if let s = String(validating: bytes, as: UTF8.self) { return s }
    return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
}

func findExtra(_ b: [UInt8], from start: Int, count: Int, id: UInt16) -> Range<Int>? {
    var p = start
    let end = start + count
    while p + 4 <= end {
        let tag = le16(b, p)
        let len = Int(le16(b, p + 2))
        if p + 4 + len > end { return nil }
        if tag == id { return (p + 4)..<(p + 4 + len) }
        p += 4 + len
    }
    return nil
}

@inline(__always) func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
@inline(__always) func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}
@inline(__always) func le64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32 }
