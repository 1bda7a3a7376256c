import Foundation
import SeedCompression
import SeedTestSupport
import SeedZip
import Testing

/// Hand-built archives with knobs for lying headers; `ZipPlanner` is what the product uses.
struct CraftedEntry {
    var name: [UInt8]
    var data: [UInt8]  // uncompressed
    var method: UInt16 = 8
    var flags: UInt16 = 0
    var centralUncompressed: UInt64? = nil
    var localUncompressed: UInt64? = nil
    var centralCompressed: UInt64? = nil
    var crc: UInt32? = nil
    init(_ name: String, _ data: [UInt8], method: UInt16 = 8) {
        self.name = Array(name.utf8)
        self.data = data
        self.method = method
    }
}

func craft(_ entries: [CraftedEntry], comment: [UInt8] = []) throws -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    for e in entries {
        let payload = e.method == 8 ? try RawDeflater.compress(e.data) : e.data
        let crc = e.crc ?? CRC32.checksum(e.data)
        let offset = UInt32(out.count)
        func header(_ b: inout [UInt8], usize: UInt64, csize: UInt64) {
            w16(&b, 20)
            w16(&b, e.flags)
            w16(&b, e.method)
            w16(&b, 0)
            w16(&b, 0x5821)
            w32(&b, crc)
            w32(&b, UInt32(csize))
            w32(&b, UInt32(usize))
            w16(&b, UInt16(e.name.count))
            w16(&b, 0)
        }
        w32(&out, 0x0403_4b50)
        header(&out, usize: e.localUncompressed ?? UInt64(e.data.count), csize: UInt64(payload.count))
        out += e.name
        out += payload
        w32(&central, 0x0201_4b50)
        w16(&central, 0x0314)
        header(
            &central, usize: e.centralUncompressed ?? UInt64(e.data.count),
            csize: e.centralCompressed ?? UInt64(payload.count))
        w16(&central, 0)
        w16(&central, 0)
        w16(&central, 0)
        w32(&central, 0o100644 << 16)
        w32(&central, offset)
        central += e.name
    }
    let cdOffset = UInt32(out.count)
    out += central
    w32(&out, 0x0605_4b50)
    w16(&out, 0)
    w16(&out, 0)
    w16(&out, UInt16(entries.count))
    w16(&out, UInt16(entries.count))
    w32(&out, UInt32(central.count))
    w32(&out, cdOffset)
    w16(&out, UInt16(comment.count))
    out += comment
    return out
}

func w16(_ b: inout [UInt8], _ v: UInt16) { b += [UInt8(v & 0xFF), UInt8(v >> 8)] }
func w32(_ b: inout [UInt8], _ v: UInt32) {
    w16(&b, UInt16(v & 0xFFFF))
    w16(&b, UInt16(v >> 16))
}

func refusal(_ bytes: [UInt8], limits: ZipLimits = ZipLimits()) -> ZipError? {
    do {
        let a = try ZipArchive(source: ZipBytes(bytes), limits: limits)
        for e in a.entries { _ = try a.contents(of: e, from: ZipBytes(bytes)) }
        return nil
    } catch { return error }
}

func text(_ n: Int, seed: Int = 0) -> [UInt8] {
    Array((0..<n).map { i in "rule \(seed)-\(i % 97): detect suspicious activity\n" }.joined().utf8.prefix(n))
}

func assembled(_ members: [(ZipPlanMember, [UInt8])]) throws -> [UInt8] {
    let layout = try ZipPlanner.plan(members.map { $0.0 })
    let out = render(layout, members)
    #expect(UInt64(out.count) == layout.totalLength)
    return out
}

/// The bytes of `layout`, member data taken from `members`.
func render(_ layout: ZipLayout, _ members: [(ZipPlanMember, [UInt8])]) -> [UInt8] {
    var out: [UInt8] = []
    for s in layout.segments {
        switch s {
        case .bytes(let b): out += b
        case .member(let i, let off, let len): out += members[i].1[Int(off)..<Int(off + len)]
        }
    }
    return out
}

func planMember(_ name: String, _ data: [UInt8], deflate: Bool = true) throws -> (ZipPlanMember, [UInt8]) {
    let payload = deflate ? try RawDeflater.compress(data) : data
    return (
        ZipPlanMember(
            name: name, method: deflate ? 8 : 0, crc32: CRC32.checksum(data), compressedSize: UInt64(payload.count),
            uncompressedSize: UInt64(data.count), dosTime: 0x6000, dosDate: 0x5821, externalAttributes: 0o100644 << 16),
        payload
    )
}

@Test func deflateInflateRoundTripAndCap() throws {
    let data = text(300_000)
    let packed = try RawDeflater.compress(data, level: 9)
    #expect(packed.count < data.count / 5)
    #expect(try RawInflater.inflate(packed, limit: UInt64(data.count)) == data)
    #expect(throws: CompressionError.self) { try RawInflater.inflate(packed, limit: UInt64(data.count - 1)) }
    // Streaming: fed one small piece at a time.
    let inf = try RawInflater(outputLimit: .max)
    var out: [UInt8] = []
    for start in stride(from: 0, to: packed.count, by: 777) {
        try Array(packed[start..<min(start + 777, packed.count)]).withUnsafeBytes { b in
            try inf.inflate(b) { out += $0 }
        }
    }
    try inf.finish()
    #expect(out == data)
    #expect(throws: CompressionError.self) {
        try RawInflater.inflate(Array(packed.prefix(packed.count / 2)), limit: .max)
    }
}

@Test func crcKnownAnswerAndCombine() {
    #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    var a = CRC32()
    a.update(Array("12345".utf8))
    var b = CRC32()
    b.update(Array("6789".utf8))
    #expect(a.combined(with: b).value == 0xCBF4_3926)
}

@Test func plannedArchiveReadsBackAndIsDeterministic() throws {
    let members = [
        try planMember(
            "thor64.exe", (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }, deflate: false),
        try planMember("signatures/yara/rules.yar", text(40_000)),
        try planMember("docs/Übersicht.txt", text(100)),
        try planMember("empty.txt", [], deflate: false),
    ]
    let bytes = try assembled(members)
    #expect(try assembled(members) == bytes)
    let archive = try ZipArchive(source: ZipBytes(bytes))
    #expect(archive.entries.map(\.name) == members.map(\.0.name))
    for (e, m) in zip(archive.entries, members) {
        let content = try archive.contents(of: e, from: ZipBytes(bytes))
        #expect(CRC32.checksum(content) == m.0.crc32)
        #expect(UInt64(content.count) == m.0.uncompressedSize)
    }
    #expect(archive.entries[2].flags & 0x0800 != 0)  // UTF-8 name
    #expect(archive.entries[0].flags & 0x0800 == 0)
    try withTempFile(bytes) { path in
        #expect(runTool("/usr/bin/env", ["python3", "-c", pythonCheck, path]).status == 0)
        #expect(runTool("/usr/bin/env", ["unzip", "-tq", path]).status == 0)
    }
}

/// A package prefix sealed once and copied per host gives the same bytes as the unsealed builder, with the
/// prefix's central directory one shared segment (not copied into each host's layout).
@Test func sealedPrefixGivesTheSameArchiveAndSharesItsCentralDirectory() throws {
    let package = [
        try planMember("thor64.exe", (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, deflate: false),
        try planMember("signatures/rules.yar", text(30_000)),
        try planMember("empty.txt", [], deflate: false),
    ]
    var prefix = ZipLayoutBuilder()
    for m in package { try prefix.add(m.0) }
    prefix.seal()
    var centrals: [UnsafeRawPointer?] = []
    for host in ["alpha", "beta"] {
        let license = try planMember("\(host).lic", Array("license of \(host)".utf8))
        var perHost = prefix
        try perHost.add(license.0)
        let layout = perHost.finish()
        let members = package + [license]
        let bytes = render(layout, members)
        #expect(bytes == (try assembled(members)))
        #expect(UInt64(bytes.count) == layout.totalLength)
        let archive = try ZipArchive(source: ZipBytes(bytes))
        #expect(archive.entries.map(\.name) == members.map(\.0.name))
        // The sealed central directory: the segment before the host's own entry and the end records.
        guard case .bytes(let central) = layout.segments[layout.segments.count - 2] else {
            Issue.record("no sealed central directory segment")
            return
        }
        #expect(central.count > 3 * 46)
        centrals.append(central.withUnsafeBytes { UnsafeRawPointer($0.baseAddress) })
    }
    #expect(centrals.count == 2 && centrals[0] != nil && centrals[0] == centrals[1])
}

@Test func zip64WhenMoreThan65534Members() throws {
    let members = try (0..<65_536).map { try planMember(String(format: "f/%05d", $0), [], deflate: false) }
    let layout = try ZipPlanner.plan(members.map(\.0))
    var bytes: [UInt8] = []
    for case .bytes(let b) in layout.segments { bytes += b }
    // The ZIP64 record and locator precede a saturated EOCD.
    #expect(Array(bytes.suffix(22 + 20).prefix(4)) == [0x50, 0x4b, 0x06, 0x07])
    #expect(Array(bytes.suffix(22)[bytes.count - 22 + 8..<bytes.count - 22 + 12]) == [0xFF, 0xFF, 0xFF, 0xFF])
    let archive = try ZipArchive(source: ZipBytes(bytes), limits: ZipLimits(maxMembers: 70_000))
    #expect(archive.entries.count == 65_536)
    #expect(archive.entries.last?.name == "f/65535")
    try withTempFile(bytes) { path in
        #expect(
            runTool(
                "/usr/bin/env",
                [
                    "python3", "-c", "import zipfile,sys; assert len(zipfile.ZipFile(sys.argv[1]).infolist())==65536",
                    path,
                ]
            ).status == 0)
    }
}

@Test func commentContainingSignatureIsSkipped() throws {
    let fake: [UInt8] = [0x50, 0x4b, 0x05, 0x06] + [UInt8](repeating: 0, count: 30)
    let bytes = try craft([CraftedEntry("a.txt", text(1000))], comment: fake)
    let a = try ZipArchive(source: ZipBytes(bytes))
    #expect(a.entries.map(\.name) == ["a.txt"])
    #expect(try a.contents(of: a.entries[0], from: ZipBytes(bytes)) == text(1000))
}

@Test(arguments: [
    ("../evil.exe", "\"..\" segment"), ("a/../../evil", "\"..\" segment"), ("/etc/passwd", "absolute path"),
    ("C:/Windows/x.dll", "drive letter"), ("..\\evil.exe", "\"..\" segment"), ("a\\..\\..\\b", "\"..\" segment"),
    ("\\server\\share", "absolute path"), ("ok.txt\u{0}.exe", "NUL byte"),
])
func unsafeNamesAreRefused(name: String, why: String) throws {
    let err = refusal(try craft([CraftedEntry("fine.txt", [1]), CraftedEntry(name, text(10))]))
    #expect(err?.member == name)
    #expect(err?.description.contains(why) == true, "\(String(describing: err))")
}

@Test func duplicatesAsWindowsSeesThemAreRefused() throws {
    for (a, b) in [("a/b.txt", "A\\B.TXT"), ("Thor64.exe", "thor64.EXE"), ("dir/x", "dir/x")] {
        let err = refusal(try craft([CraftedEntry(a, [1]), CraftedEntry(b, [2])]))
        #expect(err?.kind == .duplicateName(a))
        #expect(err?.member == b)
        #expect(err?.description.contains(b) == true)
    }
}

@Test func encryptedAndUnknownMethodsAreRefused() throws {
    var enc = CraftedEntry("secret.bin", text(100))
    enc.flags = 1
    #expect(refusal(try craft([enc]))?.kind == .encrypted)
    #expect(refusal(try craft([enc]))?.member == "secret.bin")
    var bz = CraftedEntry("x.bz2", text(100), method: 0)
    bz.method = 12
    let e = refusal(try craft([bz]))
    #expect(e?.kind == .unsupportedMethod(12))
    #expect(e?.description.contains("x.bz2") == true)
}

@Test func lyingSizesAreRefused() throws {
    var local = CraftedEntry("lie.txt", text(5000))
    local.localUncompressed = 4000
    let e1 = refusal(try craft([local]))
    #expect(e1?.member == "lie.txt")
    if case .sizeMismatch = e1?.kind {} else { Issue.record("expected size mismatch, got \(String(describing: e1))") }

    // Declares 1,000 bytes but inflates to 10 MB: stopped at the declared size, never expanded.
    var bomb = CraftedEntry("small.txt", [UInt8](repeating: 0, count: 10_000_000))
    bomb.centralUncompressed = 1000
    bomb.localUncompressed = 1000
    let bytes = try craft([bomb])
    let archive = try ZipArchive(source: ZipBytes(bytes))
    var produced = 0
    #expect(throws: ZipError.self) {
        try archive.extract(archive.entries[0], from: ZipBytes(bytes)) { produced += $0.count }
    }
    #expect(produced <= 1000)
    let e2 = refusal(bytes)
    #expect(e2?.member == "small.txt")
    #expect(e2?.description.contains("more than the declared 1000") == true)

    var crc = CraftedEntry("bad-crc.txt", text(2000))
    crc.crc = 0x1234_5678
    let e3 = refusal(try craft([crc]))
    #expect(e3?.kind == .crcMismatch(expected: 0x1234_5678, actual: CRC32.checksum(text(2000))))
    #expect(e3?.member == "bad-crc.txt")
}

@Test func zipBombIsRefusedBeforeInflating() throws {
    // 200 MB of zeros deflates to ~200 KB: a 1000:1 ratio, refused from the directory alone.
    let zeros = [UInt8](repeating: 0, count: 50_000_000)
    let bytes = try craft([CraftedEntry("bomb.bin", zeros)])
    let err = refusal(bytes)
    if case .compressionRatio(let r, 200) = err?.kind {
        #expect(r > 200)
    } else {
        Issue.record("expected ratio refusal, got \(String(describing: err))")
    }
    #expect(err?.member == "bomb.bin")
    // The check runs while reading the directory: no inflation happens at all.
    #expect(throws: ZipError.self) { _ = try ZipArchive(source: ZipBytes(bytes)) }
}

@Test func memberAndByteLimits() throws {
    let bytes = try craft((0..<5).map { CraftedEntry("f\($0)", text(1000)) })
    #expect(refusal(bytes, limits: ZipLimits(maxMembers: 4))?.kind == .tooManyMembers(count: 5, limit: 4))
    let e = refusal(bytes, limits: ZipLimits(maxTotalUncompressedBytes: 2500))
    #expect(e?.kind == .tooLarge(bytes: 3000, limit: 2500))
    #expect(e?.member == "f2")
    #expect(refusal(bytes, limits: ZipLimits(maxMembers: 5, maxTotalUncompressedBytes: 5000)) == nil)
}

@Test func truncatedAndCorruptArchivesAreRefused() throws {
    let bytes = try craft([CraftedEntry("a.txt", text(3000)), CraftedEntry("b.txt", text(3000, seed: 1))])
    for cut in [1, 10, 22, 60, bytes.count / 2, bytes.count - 5] {
        #expect(refusal(Array(bytes.prefix(bytes.count - cut))) != nil, "cut \(cut)")
    }
    // Chopping the front shifts every offset: local headers are no longer where the directory says.
    #expect(refusal(Array(bytes.dropFirst(7))) != nil)
    var flipped = bytes
    flipped[40] ^= 0xFF  // inside a.txt's deflate data
    let e = refusal(flipped)
    #expect(e?.member == "a.txt")
    #expect(refusal(Array("not a zip at all, just some text".utf8))?.kind == .noEndOfCentralDirectory)
}

let pythonCheck = """
    import sys, zipfile
    z = zipfile.ZipFile(sys.argv[1])
    bad = z.testzip()
    assert bad is None, bad
    """

func withTempFile(_ bytes: [UInt8], _ body: (String) throws -> Void) throws {
    let path = NSTemporaryDirectory() + "seedzip-" + UUID().uuidString + ".zip"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    try body(path)
}

@Test func dataDescriptorsFromAStreamingWriterAreRead() throws {
    let path = NSTemporaryDirectory() + "seedzip-stream-" + UUID().uuidString + ".zip"
    defer { try? FileManager.default.removeItem(atPath: path) }
    // Writing to a pipe makes zipfile use data descriptors (flag bit 3, sizes after the data).
    let script = """
        import sys, zipfile
        with zipfile.ZipFile(sys.stdout.buffer, 'w', zipfile.ZIP_DEFLATED) as z:
            z.writestr('a.txt', b'hello ' * 1000)
            with z.open('b.bin', 'w') as f: f.write(bytes(range(256)) * 100)
        """
    #expect(runTool("/bin/sh", ["-c", "python3 -c \"$0\" | cat > \"$1\"", script, path]).status == 0)
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let a = try ZipArchive(source: ZipBytes(bytes))
    #expect(a.entries.contains { $0.flags & 8 != 0 })
    #expect(try a.contents(of: a.entries[1], from: ZipBytes(bytes)) == Array((0..<25600).map { UInt8($0 % 256) }))
    #expect(
        try a.contents(of: a.entries[0], from: ZipBytes(bytes)) == Array(String(repeating: "hello ", count: 1000).utf8))
}

@Test func symlinkMembersAreRefused() throws {
    let path = NSTemporaryDirectory() + "seedzip-link-" + UUID().uuidString + ".zip"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let script = """
        import sys, zipfile
        with zipfile.ZipFile(sys.argv[1], 'w') as z:
            i = zipfile.ZipInfo('etc-link'); i.create_system = 3; i.external_attr = 0o120777 << 16
            z.writestr(i, '/etc')
        """
    #expect(runTool("/usr/bin/env", ["python3", "-c", script, path]).status == 0)
    let e = refusal([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    #expect(e?.kind == .unsafePath("symbolic link"))
    #expect(e?.member == "etc-link")
}

/// Reads an archive file at offsets (the test's own byte source over a sparse file).
struct FileSource: ZipByteSource {
    let handle: FileHandle
    let size: UInt64
    func read(at offset: UInt64, count: Int) throws(ZipError) -> [UInt8] {
        do {
            try handle.seek(toOffset: offset)
            let d = try handle.read(upToCount: count) ?? Data()
            guard d.count == count else { throw ZipError(.truncated("short read")) }
            return [UInt8](d)
        } catch let e as ZipError { throw e } catch { throw ZipError(.io("\(error)")) }
    }
}

@Test func zip64SizesAndOffsetsAboveFourGiB() throws {
    // A 5 GiB stored member of zeros (a hole in a sparse file), then a small member whose local
    // header lies beyond 4 GiB: ZIP64 extras for sizes (local and central) and for the offset.
    let big: UInt64 = 5 << 30
    var zeros = CRC32()
    zeros.update([UInt8](repeating: 0, count: 1 << 20))
    var crc = CRC32()
    for _ in 0..<(big >> 20) { crc = crc.combined(with: zeros) }
    let small = try planMember("after.txt", text(5000))
    let members = [
        (
            ZipPlanMember(
                name: "big.bin", method: 0, crc32: crc.value, compressedSize: big, uncompressedSize: big,
                dosTime: 0, dosDate: 0x5821, externalAttributes: 0o100644 << 16), [UInt8]()
        ),
        small,
    ]
    let layout = try ZipPlanner.plan(members.map(\.0))
    let path = NSTemporaryDirectory() + "seedzip-big-" + UUID().uuidString + ".zip"
    FileManager.default.createFile(atPath: path, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    var offset: UInt64 = 0
    for s in layout.segments {
        switch s {
        case .bytes(let b):
            try h.seek(toOffset: offset)
            h.write(Data(b))
        case .member(let i, _, let len):
            if i == 1 {
                try h.seek(toOffset: offset)
                h.write(Data(small.1))
            }
        }
        offset += s.length
    }
    try h.truncate(atOffset: layout.totalLength)
    let archive = try ZipArchive(source: FileSource(handle: h, size: layout.totalLength))
    #expect(archive.entries[0].uncompressedSize == big && archive.entries[0].compressedSize == big)
    #expect(archive.entries[1].localHeaderOffset > 0xFFFF_FFFF)
    #expect(
        try archive.contents(of: archive.entries[1], from: FileSource(handle: h, size: layout.totalLength))
            == text(5000))
    try h.close()
    let check = """
        import sys, zipfile
        z = zipfile.ZipFile(sys.argv[1])
        a, b = z.infolist()
        assert a.file_size == 5 << 30 and a.compress_size == 5 << 30, a
        assert b.header_offset > 0xFFFFFFFF, b.header_offset
        assert z.read('after.txt').startswith(b'rule 0-0')
        """
    let r = runTool("/usr/bin/env", ["python3", "-c", check, path])
    #expect(r.status == 0, "\(r.output)")
}
