import Foundation
import Glibc
import SeedCompression
import SeedServer
import SeedTestSupport
import Testing

/// A ZIP built member by member, with the knobs hostile archives need: deflate, a lying declared size,
/// a central directory entry pointing at another member's data.
func hostileZip(_ members: [(name: String, bytes: [UInt8], deflate: Bool)], overlapLastWithFirst: Bool = false) throws -> [UInt8] {
    func le16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    func le32(_ v: UInt32, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
    var out: [UInt8] = []
    var central: [UInt8] = []
    var offsets: [UInt32] = []
    for (i, m) in members.enumerated() {
        let name = Array(m.name.utf8)
        let data = m.deflate ? try RawDeflater.compress(m.bytes, level: 9) : m.bytes
        let method = m.deflate ? 8 : 0
        let crc = crc32(m.bytes)
        var offset = UInt32(out.count)
        offsets.append(offset)
        le32(0x0403_4b50, &out); le16(20, &out); le16(0x800, &out); le16(method, &out); le16(0, &out); le16(0x21, &out)
        le32(crc, &out); le32(UInt32(data.count), &out); le32(UInt32(m.bytes.count), &out)
        le16(name.count, &out); le16(0, &out)
        out += name + data
        if overlapLastWithFirst && i == members.count - 1 { offset = offsets[0] }
        le32(0x0201_4b50, &central); le16(20, &central); le16(20, &central); le16(0x800, &central); le16(method, &central)
        le16(0, &central); le16(0x21, &central); le32(crc, &central); le32(UInt32(data.count), &central)
        le32(UInt32(m.bytes.count), &central); le16(name.count, &central); le16(0, &central); le16(0, &central)
        le16(0, &central); le16(0, &central); le32(0, &central); le32(offset, &central)
        central += name
    }
    let cdOffset = UInt32(out.count)
    out += central
    le32(0x0605_4b50, &out); le16(0, &out); le16(0, &out); le16(members.count, &out); le16(members.count, &out)
    le32(UInt32(central.count), &out); le32(cdOffset, &out); le16(0, &out)
    return out
}

/// Hostile archives handed to `seed-mirror import`: each refused with a line naming the cause, nothing
/// written outside the store, the store unchanged, and a good import still works afterwards.
@Suite(.serialized) struct HostileImportTests {
    @Test func hostileArchivesAreRefusedAndLeaveTheStoreUnchanged() async throws {
        guard let binary = ServeProcessLab.builtBinary() else {
            print("import tests skipped: .build/debug/seed-mirror is not built")
            return
        }
        try await withTemporaryDirectory { dir in
            let root = dir + "/m"
            let initResult = try InitCommand.run(dir: root, names: ["localhost"], force: true)
            let config = initResult.configPath
            let program = [UInt8](repeating: 0x4D, count: 4096) + hostileBytes(60_000, seed: 5)
            let good = try hostileZip([("thor/thor64.exe", program, false), ("thor/config/thor.yml", Array("a: 1\n".utf8), true)])
            let zero = [UInt8](repeating: 0, count: 4 << 20)
            var corrupted = good
            corrupted[200] ^= 0xFF
            let cases: [(String, [UInt8], String)] = [
                ("zip slip ../", try hostileZip([("thor/../../../evil-slip.txt", Array("pwned".utf8), false)]), "escape"),
                ("absolute path", try hostileZip([("/tmp/evil-absolute.txt", Array("pwned".utf8), false)]), "escape"),
                ("backslash traversal", try hostileZip([("thor\\..\\..\\evil-bs.txt", Array("pwned".utf8), false)]), "escape"),
                ("zip bomb (4 MiB of zeros deflated, ratio about 1000:1)", try hostileZip([("thor/bomb.bin", zero, true)]), "ratio"),
                ("overlapping members", try hostileZip([("thor/a.bin", program, false), ("thor/b.bin", program, false)], overlapLastWithFirst: true), "corrupt"),
                ("duplicate names", try hostileZip([("thor/a.txt", Array("1".utf8), false), ("thor/a.txt", Array("2".utf8), false)]), "duplicate"),
                ("truncated", Array(good.prefix(good.count / 2)), "truncated"),
                ("corrupted member data", corrupted, "CRC"),
                ("not a ZIP", hostileBytes(10_000, seed: 9), "not a ZIP"),
                ("empty file", [], "not a ZIP"),
            ]
            func snapshot() -> [String: Int] {
                var out: [String: Int] = [:]
                let cache = root + "/cache"
                guard let e = FileManager.default.enumerator(atPath: cache) else { return out }
                while let rel = e.nextObject() as? String {
                    if rel.hasPrefix("tmp") || rel.hasPrefix("ledger") || rel.hasSuffix(".lock") { continue }
                    let attrs = try? FileManager.default.attributesOfItem(atPath: cache + "/" + rel)
                    if (attrs?[.type] as? FileAttributeType) == .typeRegular { out[rel] = (attrs?[.size] as? Int) ?? -1 }
                }
                return out
            }
            // A first good import, so "unchanged" covers a store with content.
            try Data(good).write(to: URL(fileURLWithPath: dir + "/good.zip"))
            let first = try runChild(binary, ["import", "--config", config, "--os", "windows", "--arch", "amd64", dir + "/good.zip"], directory: root)
            #expect(first.status == 0, "\(first.output)")
            let before = snapshot()
            #expect(!before.isEmpty)
            for (name, bytes, word) in cases {
                let path = dir + "/case.zip"
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let (status, output) = try await onThread {
                    try runChild(binary, ["import", "--config", config, "--os", "windows", "--arch", "amd64", path], directory: root)
                }
                #expect(status != 0, "\(name) was imported: \(output)")
                #expect(!output.isEmpty && output.localizedCaseInsensitiveContains(word), "\(name): \(output)")
                #expect(snapshot() == before, "\(name): the store changed")
            }
            for escaped in ["/tmp/evil-absolute.txt", dir + "/evil-slip.txt", root + "/evil-slip.txt", dir + "/evil-bs.txt"] {
                #expect(!FileManager.default.fileExists(atPath: escaped), "\(escaped) was written")
            }
            let verify = try runChild(binary, ["verify", "--config", config], directory: root)
            #expect(verify.status == 0, "\(verify.output)")
            print("hostile archive cases: \(cases.count)")
        }
    }
}
