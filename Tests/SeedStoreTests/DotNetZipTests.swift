import Foundation
import SeedCompression
import SeedStore
import SeedTestSupport
import SeedZip
import Testing

/// The seed unzips with .NET's `ZipFile.ExtractToDirectory` (PROTOCOL.md §1); these tests run Mono's
/// implementation of it (built from .NET's sources) on archives the store assembles.
@Suite(.enabled(if: DotNetZip.available, Comment(rawValue: DotNetZip.unavailableReason)))
struct DotNetZipTests {
    @Test func assembledPackageWithLicenseExtractsWithDotNetZipFile() async throws {
        try await withTemporaryDirectory { dir in
            let pkg = try PackageFixture(in: dir, name: "thor10-win", seed: 7)
            let store = try PackageStore(root: dir + "/cache")
            _ = try store.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64", variant: "full")
            let manifest = try #require(
                try store.currentManifest(PackageKey(product: "thor10", os: "windows", arch: "amd64", variant: "full")))
            let plan = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
            let zip = try materialize(plan)
            #expect(UInt64(zip.count) == plan.contentLength)
            let out = dir + "/host.zip"
            try write(zip, out)

            let target = dir + "/extracted"
            let r = DotNetZip.extract(out, into: target)
            #expect(r.status == 0, "\(r.output)")
            // Every package file arrives byte for byte, plus the host's license; nothing else.
            var seen: Set<String> = []
            let walker = FileManager.default.enumerator(atPath: target)
            while let rel = walker?.nextObject() as? String {
                var isDir: ObjCBool = false
                FileManager.default.fileExists(atPath: target + "/" + rel, isDirectory: &isDir)
                if !isDir.boolValue { seen.insert(rel) }
            }
            #expect(seen == Set(pkg.files.keys).union([license.name]))
            for (path, bytes) in pkg.files {
                #expect(FileManager.default.contents(atPath: target + "/" + path) == Data(bytes), "\(path)")
            }
            #expect(FileManager.default.contents(atPath: target + "/" + license.name) == Data(license.bytes))
        }
    }

    /// More than 65,534 members forces the ZIP64 end records; .NET must still find every entry.
    @Test func zip64EndRecordsAreReadByDotNet() async throws {
        try await withTemporaryDirectory { dir in
            let count = 65_540
            var members: [ZipPlanMember] = []
            var datas: [[UInt8]] = []
            for i in 0..<count {
                let data = Array("member \(i)\n".utf8)
                var crc = CRC32()
                crc.update(data)
                members.append(
                    ZipPlanMember(
                        name: "d\(i / 1000)/f\(i).txt", method: 0, crc32: crc.value,
                        compressedSize: UInt64(data.count), uncompressedSize: UInt64(data.count), dosTime: 0,
                        dosDate: 0x5A21, externalAttributes: 0o100644 << 16))
                datas.append(data)
            }
            let layout = try ZipPlanner.plan(members)
            var zip: [UInt8] = []
            zip.reserveCapacity(Int(layout.totalLength))
            for s in layout.segments {
                switch s {
                case .bytes(let b): zip += b
                case .member(let i, let off, let len): zip += datas[i][Int(off)..<Int(off + len)]
                }
            }
            let out = dir + "/many.zip"
            try write(zip, out)
            let listed = try DotNetZip.list(out).get()
            #expect(listed.count == count)
            for probe in [0, 65_534, 65_535, count - 1] {
                let entry = try #require(listed.first { $0.name == "d\(probe / 1000)/f\(probe).txt" })
                #expect(entry.length == datas[probe].count)
                #expect(entry.sha256 == sha256Hex(datas[probe]))
            }
        }
    }
}
