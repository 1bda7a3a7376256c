internal import CSeedZlib

/// A deterministic stand-in for the THOR program folder, built once per version as ZIP member entries.
///
/// Same seed, size and version give the same bytes. Binaries (stored, incompressible) never change between
/// versions; each version rewrites about a third of the signature files (deflated text), so consecutive
/// versions share roughly 90% of their bytes. A per-request ZIP is `prefix` + that host's license entry +
/// a regenerated central directory (`zip(licenseName:license:)`).
public struct SimulatedPackage: Sendable {
    public let version: Int
    /// Every member's local header and data, in order.
    public let prefix: [UInt8]
    /// Member paths in order.
    public let memberNames: [String]
    /// Uncompressed bytes of the program folder (without the license).
    public let uncompressedBytes: UInt64
    private let centralEntries: [UInt8]

    /// Builds the members for `version`, about `totalBytes` of uncompressed content.
    public init(seed: UInt64, totalBytes: Int, version: Int) {
        self.version = version
        var writer = ZipWriter()
        var total: UInt64 = 0
        for file in SimulatedPackage.files(seed: seed, totalBytes: totalBytes, version: version) {
            writer.add(name: file.path, data: file.data, deflate: file.compressible)
            total += UInt64(file.data.count)
        }
        prefix = writer.output
        centralEntries = writer.central
        memberNames = writer.names
        uncompressedBytes = total
    }

    /// The tail that completes `prefix` into a ZIP holding one more stored member (the license).
    public func zipSuffix(licenseName: String, license: [UInt8]) -> [UInt8] {
        var writer = ZipWriter(continuingAfter: prefix.count, central: centralEntries, count: memberNames.count)
        writer.add(name: licenseName, data: license, deflate: false)
        writer.finish()
        return writer.output
    }

    /// The whole ZIP for one host (prefix + suffix), for tests.
    public func zip(licenseName: String, license: [UInt8]) -> [UInt8] {
        prefix + zipSuffix(licenseName: licenseName, license: license)
    }

    struct File {
        var path: String
        var data: [UInt8]
        var compressible: Bool
    }

    static func files(seed: UInt64, totalBytes: Int, version: Int) -> [File] {
        let total = max(totalBytes, 64 * 1024)
        var out: [File] = []
        // Binaries: about 72% of the folder, identical in every version.
        let binaries: [(String, Double)] = [
            ("thor64.exe", 0.32), ("thor.exe", 0.22), ("thor64-lite.exe", 0.08), ("thor-util.exe", 0.06),
            ("tools/7za.exe", 0.03), ("tools/thor-lite-util.exe", 0.01),
        ]
        var binaryBytes = 0
        for (name, share) in binaries {
            let n = Int(Double(total) * share)
            binaryBytes += n
            out.append(File(path: name, data: randomBytes(seed: mix(seed, name, 0), count: n), compressible: false))
        }
        out.append(
            File(
                path: "config/thor.yml",
                data: Array("# THOR simulated configuration\nversion: \(version)\nlog-level: info\n".utf8),
                compressible: true))
        out.append(
            File(path: "config/version.txt", data: Array("THOR 10.7.\(version) (simulated)\n".utf8), compressible: true))
        out.append(
            File(
                path: "tools/README.txt", data: Array("Helper tools shipped with the simulated THOR package.\n".utf8),
                compressible: true))
        // Signatures: the rest, as many files of about 40 KB of rule text.
        let signatureBytes = max(total - binaryBytes, 16 * 1024)
        let fileSize = 40 * 1024
        let count = max(8, signatureBytes / fileSize)
        for i in 0..<count {
            let ext = i % 4 == 3 ? "sig" : "yar"
            let dir = i % 4 == 3 ? "signatures/iocs" : "signatures/yara"
            let path = "\(dir)/sim-\(String(i, radix: 10)).\(ext)"
            let epoch = (2...max(2, version)).filter { v in v <= version && mix(seed, "change", UInt64(i * 1000 + v)) % 3 == 0 }.count
            let size = fileSize / 2 + Int(mix(seed, path, 7) % UInt64(fileSize))
            let data = ruleText(seed: mix(seed, path, UInt64(epoch)), count: size, ioc: ext == "sig")
            out.append(File(path: path, data: data, compressible: true))
        }
        return out
    }
}

/// SplitMix64: small, fast, deterministic.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func mix(_ seed: UInt64, _ label: String, _ n: UInt64) -> UInt64 {
    // FNV-1a over the label, folded with the seed and counter through SplitMix64.
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in label.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    var r = SplitMix64(state: seed ^ h ^ (n &* 0x9E37_79B9_7F4A_7C15))
    return r.next()
}

func randomBytes(seed: UInt64, count: Int) -> [UInt8] {
    var r = SplitMix64(state: seed)
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { p in
        var i = 0
        while i + 8 <= count {
            p.storeBytes(of: r.next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        var last = r.next()
        while i < count {
            p[i] = UInt8(truncatingIfNeeded: last)
            last >>= 8
            i += 1
        }
    }
    return out
}

private let ruleWords: [[UInt8]] = [
    "suspicious", "loader", "beacon", "dropper", "powershell", "encoded", "invoke", "mimikatz", "lsass", "dump",
    "webshell", "persistence", "registry", "scheduled", "task", "service", "rundll32", "regsvr32", "certutil",
    "download", "payload", "stager", "cobalt", "strike", "malleable", "profile", "credential", "access", "lateral",
    "movement", "exfiltration", "archive", "password", "token", "kerberos", "ticket", "golden", "silver",
].map { Array($0.utf8) }

/// Rule-like text: compressible like real signature files.
func ruleText(seed: UInt64, count: Int, ioc: Bool) -> [UInt8] {
    var r = SplitMix64(state: seed)
    var out: [UInt8] = []
    out.reserveCapacity(count + 256)
    let hex = Array("0123456789abcdef".utf8)
    while out.count < count {
        if ioc {
            for _ in 0..<32 { out.append(hex[Int(r.next() & 15)]) }
            out += Array(";".utf8)
            out += ruleWords[Int(r.next() % UInt64(ruleWords.count))]
            out.append(10)
        } else {
            out += Array("rule SIM_".utf8)
            for _ in 0..<8 { out.append(hex[Int(r.next() & 15)]) }
            out += Array(" {\n  meta:\n    description = \"".utf8)
            for _ in 0..<5 {
                out += ruleWords[Int(r.next() % UInt64(ruleWords.count))]
                out.append(32)
            }
            out += Array("\"\n  strings:\n    $s1 = \"".utf8)
            out += ruleWords[Int(r.next() % UInt64(ruleWords.count))]
            out += Array("\" ascii wide\n  condition:\n    1 of them\n}\n".utf8)
        }
    }
    return Array(out.prefix(count))
}

/// A minimal ZIP writer (APPNOTE 4.3): stored or deflated members, no ZIP64 (the simulator stays < 4 GB).
struct ZipWriter {
    var output: [UInt8] = []
    var central: [UInt8] = []
    var names: [String] = []
    private var offset: Int
    private var count: Int

    init() {
        offset = 0
        count = 0
    }

    init(continuingAfter offset: Int, central: [UInt8], count: Int) {
        self.offset = offset
        self.central = central
        self.count = count
    }

    // 2026-01-01 00:00:00 in DOS format, so builds are reproducible.
    private static let dosTime: UInt16 = 0
    private static let dosDate: UInt16 = UInt16((2026 - 1980) << 9 | 1 << 5 | 1)

    mutating func add(name: String, data: [UInt8], deflate: Bool) {
        let crc = UInt32(data.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
        let payload = deflate ? rawDeflate(data) : data
        let method: UInt16 = deflate ? 8 : 0
        let nameBytes = Array(name.utf8)
        let headerOffset = offset
        var h: [UInt8] = []
        h.le32(0x0403_4b50)
        h.le16(20)
        h.le16(0x0800)  // names are UTF-8
        h.le16(method)
        h.le16(ZipWriter.dosTime)
        h.le16(ZipWriter.dosDate)
        h.le32(crc)
        h.le32(UInt32(payload.count))
        h.le32(UInt32(data.count))
        h.le16(UInt16(nameBytes.count))
        h.le16(0)
        h += nameBytes
        output += h
        output += payload
        offset += h.count + payload.count

        var c: [UInt8] = []
        c.le32(0x0201_4b50)
        c.le16(20)
        c.le16(20)
        c.le16(0x0800)
        c.le16(method)
        c.le16(ZipWriter.dosTime)
        c.le16(ZipWriter.dosDate)
        c.le32(crc)
        c.le32(UInt32(payload.count))
        c.le32(UInt32(data.count))
        c.le16(UInt16(nameBytes.count))
        c.le16(0)
        c.le16(0)
        c.le16(0)
        c.le16(0)
        c.le32(0)
        c.le32(UInt32(headerOffset))
        c += nameBytes
        central += c
        names.append(name)
        count += 1
    }

    /// Appends the central directory and its end record to `output`.
    mutating func finish() {
        let cdOffset = offset
        output += central
        var e: [UInt8] = []
        e.le32(0x0605_4b50)
        e.le16(0)
        e.le16(0)
        e.le16(UInt16(count))
        e.le16(UInt16(count))
        e.le32(UInt32(central.count))
        e.le32(UInt32(cdOffset))
        e.le16(0)
        output += e
    }
}

extension [UInt8] {
    mutating func le16(_ v: UInt16) { append(UInt8(v & 0xff)); append(UInt8(v >> 8)) }
    mutating func le32(_ v: UInt32) { for i in 0..<4 { append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
}

/// Raw deflate (no zlib header), as a ZIP member holds it.
func rawDeflate(_ input: [UInt8]) -> [UInt8] {
    // zlib keeps the stream's address in its state, so the stream lives at a fixed address.
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    precondition(seed_deflate_init_raw(stream, 6) == Z_OK, "deflateInit2 failed")
    defer {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }
    let bound = Int(deflateBound(stream, UInt(input.count)))
    var out = [UInt8](repeating: 0, count: bound + 64)
    var input = input
    let produced: Int = input.withUnsafeMutableBufferPointer { inp in
        out.withUnsafeMutableBufferPointer { o in
            stream.pointee.next_in = inp.baseAddress
            stream.pointee.avail_in = UInt32(inp.count)
            stream.pointee.next_out = o.baseAddress
            stream.pointee.avail_out = UInt32(o.count)
            let rc = deflate(stream, Z_FINISH)
            precondition(rc == Z_STREAM_END, "deflate with a deflateBound buffer must finish")
            return o.count - Int(stream.pointee.avail_out)
        }
    }
    return Array(out[..<produced])
}
