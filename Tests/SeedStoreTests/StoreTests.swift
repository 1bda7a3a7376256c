import Foundation
import SeedStore
import SeedTestSupport
import SeedZip
import SeedCore
import Testing

// MARK: Fixtures

/// Writes a realistically shaped package folder and zips it with Python's zipfile (an independent writer).
/// Returns the zip path and the folder (members relative to it).
struct PackageFixture {
    let folder: String
    let zip: String
    var files: [String: [UInt8]] = [:]

    init(in dir: String, name: String, seed: UInt64, changeTexts: Set<Int> = [], bigBinaries: Bool = true) throws {
        folder = dir + "/" + name
        zip = dir + "/" + name + ".zip"
        var rng = SplitMix(seed: 42)
        if bigBinaries {
            files["thor64.exe"] = rng.bytes(3_000_000)
            files["thor-util.exe"] = rng.bytes(1_000_000)
            files["tools/lib/helper.dll"] = rng.bytes(500_000)
        } else {
            files["thor64.exe"] = rng.bytes(100_000)
        }
        for i in 0..<300 {
            let variant = changeTexts.contains(i) ? seed : 0
            let line = "rule sig_\(i)_v\(variant) { strings: $a = \"evil-\(i)\" condition: $a }\n"
            files["signatures/yara/rules-\(i).yar"] = Array(String(repeating: line, count: 20 + i % 30).utf8)
        }
        files["config/thor.yml"] = Array(String(repeating: "threads: 2\nlicense-path: .\n", count: 200).utf8)
        for (path, bytes) in files {
            let full = folder + "/" + path
            try FileManager.default.createDirectory(
                atPath: String(full[..<full.lastIndex(of: "/")!]), withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: full))
        }
        try Data("LICENSE-FOR-\(name)".utf8).write(to: URL(fileURLWithPath: folder + "/thor-lic-host.lic"))
        let script = """
            import os, sys, zipfile
            root, out = sys.argv[1], sys.argv[2]
            with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
                z.writestr(zipfile.ZipInfo('signatures/'), b'')
                for d, _, fs in sorted(os.walk(root)):
                    for f in sorted(fs):
                        p = os.path.join(d, f); rel = os.path.relpath(p, root)
                        # one member stored, as some packers do for config files
                        kind = zipfile.ZIP_STORED if rel.endswith('.yml') else zipfile.ZIP_DEFLATED
                        z.write(p, rel, compress_type=kind)
            """
        let r = runTool("/usr/bin/env", ["python3", "-c", script, folder, zip])
        #expect(r.status == 0, "\(r.output)")
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { b in
            let words = n / 8
            let p = b.baseAddress!
            for i in 0..<words { p.storeBytes(of: next(), toByteOffset: i * 8, as: UInt64.self) }
            for i in (words * 8)..<n { b[i] = UInt8(truncatingIfNeeded: next()) }
        }
        return out
    }
}

func materialize(_ plan: AssemblyPlan) throws -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(Int(plan.contentLength))
    for s in plan.segments {
        switch s {
        case .bytes(let b): out += b
        case .file(let f, let off, let len):
            var buf = [UInt8](repeating: 0, count: Int(len))
            var done = 0
            while done < Int(len) {
                let n = try buf.withUnsafeMutableBytes { b in
                    try f.read(into: UnsafeMutableRawBufferPointer(rebasing: b[done...]), at: off + UInt64(done))
                }
                if n == 0 { break }
                done += n
            }
            #expect(done == Int(len))
            out += buf
        }
    }
    #expect(UInt64(out.count) == plan.contentLength)
    return out
}

func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

func filesUnder(_ dir: String) -> [String: Int] {
    var out: [String: Int] = [:]
    guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
    while let rel = e.nextObject() as? String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
            out[rel] = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + rel)[.size] as? Int) ?? -1
        }
    }
    return out
}

let stamp = Date(timeIntervalSince1970: 1_780_000_000)
let license = (name: "thor-lic-ws01.lic", bytes: Array("-----BEGIN THOR LICENSE----- ws01 -----END-----\n".utf8))

// MARK: Tests

@Test func importThenAssembleRoundTrip() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "thor10-win", seed: 1)
        let store = try PackageStore(root: dir + "/cache")
        let started = Date()
        let r = try store.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64", variant: "full")
        let seconds = Date().timeIntervalSince(started)
        let zipSize = (try FileManager.default.attributesOfItem(atPath: pkg.zip)[.size] as? Int) ?? 0
        print("import: \(zipSize) bytes in \(seconds) s = \(Double(zipSize) / seconds / 1e6) MB/s (debug build)")
        #expect(r.memberCount == pkg.files.count)
        #expect(r.newBlobs == pkg.files.count)
        #expect(r.sharedBlobs == 0)
        #expect(r.licenses == [ImportedLicense(name: "thor-lic-host.lic", bytes: Array("LICENSE-FOR-thor10-win".utf8))])
        #expect(r.version == "thor10-win")
        let manifest = try #require(
            try store.currentManifest(PackageKey(product: "thor10", os: "windows", arch: "amd64", variant: "full")))
        #expect(manifest.digest == r.manifestDigest)
        #expect(!manifest.members.contains { $0.path.hasSuffix(".lic") || $0.path.hasSuffix("/") })
        // The member that arrived stored was deflated at import because that shrinks it;
        // incompressible binaries arrived deflated and their bytes are kept as they came.
        let yml = try #require(manifest.members.first { $0.path == "config/thor.yml" })
        #expect(yml.method == 8 && yml.compressedSize < yml.size / 5)
        let exe = try #require(manifest.members.first { $0.path == "thor64.exe" })
        #expect(exe.method == 8 && exe.compressedSize > exe.size)

        let plan = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
        let zip = try materialize(plan)
        let out = dir + "/host.zip"
        try write(zip, out)
        let check = """
            import os, sys, zipfile
            z = zipfile.ZipFile(sys.argv[1]); root = sys.argv[2]
            assert z.testzip() is None
            names = set(z.namelist())
            for d, _, fs in os.walk(root):
                for f in fs:
                    p = os.path.join(d, f); rel = os.path.relpath(p, root)
                    if rel.endswith('.lic'): continue
                    assert z.read(rel) == open(p, 'rb').read(), rel
                    names.discard(rel)
            assert z.read('thor-lic-ws01.lic').startswith(b'-----BEGIN THOR LICENSE')
            names.discard('thor-lic-ws01.lic')
            assert not names, names
            """
        let py = runTool("/usr/bin/env", ["python3", "-c", check, out, pkg.folder])
        #expect(py.status == 0, "\(py.output)")
        let unzip = runTool("/usr/bin/env", ["unzip", "-tq", out])
        #expect(unzip.status == 0, "\(unzip.output)")
        let extractDir = dir + "/x"
        try FileManager.default.createDirectory(atPath: extractDir, withIntermediateDirectories: true)
        #expect(runTool("/usr/bin/env", ["unzip", "-q", out, "-d", extractDir]).status == 0)
        #expect(FileManager.default.contents(atPath: extractDir + "/thor64.exe") == Data(pkg.files["thor64.exe"]!))
        if FileManager.default.fileExists(atPath: "/usr/bin/bsdtar") {
            let bsd = dir + "/bsd"
            try FileManager.default.createDirectory(atPath: bsd, withIntermediateDirectories: true)
            let b = runTool("/usr/bin/bsdtar", ["-xf", out, "-C", bsd])
            #expect(b.status == 0, "\(b.output)")
            #expect(
                FileManager.default.contents(atPath: bsd + "/tools/lib/helper.dll")
                    == Data(pkg.files["tools/lib/helper.dll"]!))
            #expect(FileManager.default.contents(atPath: bsd + "/thor-lic-ws01.lic") == Data(license.bytes))
        }
        // Importing the same ZIP again stores nothing new and yields the same manifest.
        let again = try store.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64")
        #expect(again.manifestDigest == r.manifestDigest && again.newBlobs == 0 && !again.manifestIsNew)
    }
}

@Test func twoVersionsShareBlobsAndPlansAddNothing() async throws {
    try await withTemporaryDirectory { dir in
        let changed = Set(0..<31)  // 31 of 304 members (~10%) differ between versions
        let v1 = try PackageFixture(in: dir, name: "v1", seed: 1)
        let v2 = try PackageFixture(in: dir, name: "v2", seed: 2, changeTexts: changed)
        let store = try PackageStore(root: dir + "/cache")
        _ = try store.importZip(path: v1.zip, product: "thor10", os: "windows", arch: "amd64")
        let one = store.blobBytes()
        let r2 = try store.importZip(path: v2.zip, product: "thor10", os: "windows", arch: "amd64")
        let two = store.blobBytes()
        #expect(r2.newBlobs == changed.count)
        #expect(r2.sharedBlobs == v2.files.count - changed.count)
        #expect(Double(two) <= 1.1 * Double(one), "two versions take \(two) bytes, one takes \(one)")
        let onDisk = filesUnder(dir + "/cache/blobs").values.reduce(0, +)
        #expect(UInt64(onDisk) == two)
        let listing = try store.packages()
        #expect(listing.count == 2)
        #expect(listing.filter(\.isCurrent).map(\.version) == ["v2"])
        #expect(listing.allSatisfy { $0.sharedMembers == v2.files.count - changed.count })

        let before = filesUnder(dir + "/cache")
        let manifest = try #require(try store.currentManifest(r2.key))
        var etags: Set<String> = []
        for host in 0..<1000 {
            let plan = try store.plan(
                manifest: manifest,
                extraMembers: [(name: "thor-lic-h\(host).lic", bytes: Array("license \(host)".utf8))],
                modifiedTime: stamp)
            etags.insert(plan.etag)
        }
        #expect(etags.count == 1000)
        #expect(filesUnder(dir + "/cache") == before)
    }
}

@Test func corruptedBlobIsQuarantinedAndNeverServed() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let root = dir + "/cache"
        let key: PackageKey
        do {
            let store = try PackageStore(root: root)
            key = try store.importZip(path: pkg.zip, product: "thor10", os: "linux", arch: "amd64").key
        }
        // Restart, then damage the blob behind thor64.exe (same size, one byte changed).
        let store = try PackageStore(root: root)
        let manifest = try #require(try store.currentManifest(key))
        let member = try #require(manifest.members.first { $0.path == "thor64.exe" })
        let path = store.blobs.path(of: member.blob, method: member.method)
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        bytes[bytes.count / 2] ^= 0x40
        try write(bytes, path)
        do throws(StoreError) {
            _ = try store.plan(manifest: manifest, extraMembers: [], modifiedTime: stamp)
            Issue.record("a plan was returned over a corrupt blob")
        } catch {
            guard case .digestMismatch(_, let q) = error.kind else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(error.subject == member.blob)
            #expect(error.isIntegrityFailure)
            #expect(FileManager.default.fileExists(atPath: q))
            #expect(!FileManager.default.fileExists(atPath: path))
        }
        // Still refused afterwards (now missing), never served.
        #expect(throws: StoreError.self) {
            _ = try store.plan(manifest: manifest, extraMembers: [], modifiedTime: stamp)
        }

        // verify() finds a second corruption by re-hashing everything.
        let other = try #require(manifest.members.first { $0.path == "signatures/yara/rules-5.yar" })
        let p2 = store.blobs.path(of: other.blob, method: other.method)
        var b2 = [UInt8](FileManager.default.contents(atPath: p2)!)
        b2[0] ^= 0x01
        try write(b2, p2)
        let report = try store.verify()
        #expect(report.quarantined == [other.blob])
        #expect(report.okBlobs == manifest.members.count - 2)
        #expect(report.missing.count == 2)
        #expect(filesUnder(root + "/quarantine").count == 2)
    }
}

/// Blobs an import of this process wrote were hashed as they were written: the first plan after the
/// import does not hash them again. Blobs only found on disk (a reopened store, even re-importing the
/// same package) are hashed on first use; a blob replaced on disk (new inode) is hashed again.
@Test func freshlyImportedBlobsAreNotReHashedButReopenedOnesAre() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let root = dir + "/cache"
        let license = (name: "thor-lic-host.lic", bytes: Array("LIC".utf8))
        let manifest: Manifest
        do {
            let store = try PackageStore(root: root)
            let key = try store.importZip(path: pkg.zip, product: "thor10", os: "linux", arch: "amd64").key
            manifest = try #require(try store.currentManifest(key))
            _ = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
            #expect(store.blobs.verificationHashCount == 0)
        }
        let distinct = Set(manifest.members.map(\.blob)).count
        #expect(distinct > 10)

        // Reopened: every blob is hashed once on first use, then not again.
        let store = try PackageStore(root: root)
        // Re-importing finds every blob on disk; that does not vouch for their content.
        let again = try store.importZip(path: pkg.zip, product: "thor10", os: "linux", arch: "amd64")
        #expect(again.newBlobs == 0)
        _ = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
        #expect(store.blobs.verificationHashCount == distinct)
        _ = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
        #expect(store.blobs.verificationHashCount == distinct)

        // A blob replaced behind the store's back (new inode, same size) is hashed again and refused.
        let member = try #require(manifest.members.first { $0.path == "thor64.exe" })
        let path = store.blobs.path(of: member.blob, method: member.method)
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        bytes[bytes.count / 2] ^= 0x40
        try write(bytes, path + ".new")
        #expect(rename(path + ".new", path) == 0)
        #expect(throws: StoreError.self) {
            _ = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
        }
        #expect(store.blobs.verificationHashCount == distinct + 1)
    }
}

/// Plans after the first reuse the verified descriptors; a blob changed in place (same inode) after that,
/// or one the store forgot (quarantine), still sends the next plan back through verification.
@Test func repeatedPlansReuseVerifiedBlobsButSeeInPlaceChanges() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let root = dir + "/cache"
        let license = (name: "thor-lic-host.lic", bytes: Array("LIC".utf8))
        let key: PackageKey
        do { key = try PackageStore(root: root).importZip(path: pkg.zip, product: "thor10", os: "linux", arch: "amd64").key }
        let store = try PackageStore(root: root)
        let manifest = try #require(try store.currentManifest(key))
        let first = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
        let distinct = Set(manifest.members.map(\.blob)).count
        #expect(store.blobs.verificationHashCount == distinct)
        let clock = ContinuousClock()
        let started = clock.now
        for _ in 0..<200 {
            let again = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
            #expect(again.etag == first.etag && again.contentLength == first.contentLength)
        }
        print("200 repeated plans of \(manifest.members.count) members: \(clock.now - started) (debug build)")
        #expect(store.blobs.verificationHashCount == distinct)
        #expect(try materialize(store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)) == materialize(first))

        // Same inode, one byte changed in place: the size stays, the mtime moves.
        let member = try #require(manifest.members.first { $0.path == "thor64.exe" })
        let path = store.blobs.path(of: member.blob, method: member.method)
        let fd = open(path, O_RDWR)
        #expect(fd >= 0)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, 100) == 1)
        byte ^= 0x20
        var later = [timespec(tv_sec: 2_000_000_000, tv_nsec: 0), timespec(tv_sec: 2_000_000_000, tv_nsec: 0)]
        #expect(pwrite(fd, &byte, 1, 100) == 1)
        #expect(futimens(fd, &later) == 0)
        close(fd)
        do throws(StoreError) {
            _ = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
            Issue.record("a plan was returned over a blob changed in place")
        } catch {
            guard case .digestMismatch = error.kind else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(error.subject == member.blob)
        }
    }
}

@Test func crashBetweenWriteAndRenameLeavesNoVisibleBlob() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let root = dir + "/cache"
        let hook: StoreFaultHook = { (point, path) throws(StoreError) in
            throw StoreError(.injectedFault("\(point)"), subject: path)
        }
        do {
            let store = try PackageStore(root: root, options: StoreOptions(faultHook: hook))
            #expect(throws: StoreError.self) {
                _ = try store.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64")
            }
            #expect(store.blobs.allBlobs().isEmpty)
            #expect(filesUnder(root + "/blobs").isEmpty)
            #expect(filesUnder(root + "/manifests").isEmpty)
            // The written data sits in tmp/ only, as after a real crash.
            #expect(!filesUnder(root + "/tmp").isEmpty)
        }
        let reopened = try PackageStore(root: root)
        #expect(filesUnder(root + "/tmp").isEmpty)
        let r = try reopened.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64")
        #expect(r.newBlobs == r.memberCount)
    }
}

@Test func gcAndSizeCapDuringARunningDownload() async throws {
    try await withTemporaryDirectory { dir in
        let v1 = try PackageFixture(in: dir, name: "v1", seed: 1, changeTexts: Set(0..<300), bigBinaries: false)
        let v2 = try PackageFixture(in: dir, name: "v2", seed: 2, changeTexts: Set(0..<300), bigBinaries: false)
        let store = try PackageStore(root: dir + "/cache")
        let r1 = try store.importZip(path: v1.zip, product: "thor10", os: "windows", arch: "amd64")
        let m1 = try store.manifest(digest: r1.manifestDigest)
        let plan = try store.plan(manifest: m1, extraMembers: [license], modifiedTime: stamp)
        let expected = try materialize(plan)
        _ = try store.importZip(path: v2.zip, product: "thor10", os: "windows", arch: "amd64")
        #expect(try store.gc().removedBlobs == 0)  // v1 is still referenced by its manifest
        // A cap below two versions evicts v1 (not current) and collects its blobs.
        let report = try store.enforceSizeCap(store.blobBytes() - 1)
        #expect(report.evictedManifests == [r1.manifestDigest])
        #expect(report.removedBlobs == 300)
        #expect(try store.packages().map(\.version) == ["v2"])
        // The download that started before gc still reads the right bytes.
        #expect(try materialize(plan) == expected)
        try write(expected, dir + "/old.zip")
        #expect(runTool("/usr/bin/env", ["unzip", "-tq", dir + "/old.zip"]).status == 0)
        // The current version is never evicted, even when over the cap.
        let again = try store.enforceSizeCap(0)
        #expect(again.evictedManifests.isEmpty)
        #expect(try store.currentManifest(r1.key) != nil)
    }
}

@Test func samePlanBytesAndETagAcrossReopen() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let root = dir + "/cache"
        let (bytes, etag, digest): ([UInt8], String, String)
        do {
            let store = try PackageStore(root: root)
            let r = try store.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64", variant: "lite")
            let plan = try store.plan(
                manifest: try store.manifest(digest: r.manifestDigest), extraMembers: [license], modifiedTime: stamp)
            (bytes, etag, digest) = (try materialize(plan), plan.etag, r.manifestDigest)
        }
        let store = try PackageStore(root: root)
        let manifest = try #require(
            try store.currentManifest(PackageKey(product: "thor10", os: "windows", arch: "amd64", variant: "lite")))
        #expect(manifest.digest == digest)
        let plan = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp)
        #expect(plan.etag == etag)
        #expect(try materialize(plan) == bytes)
        // A different license or time changes the ETag.
        let other = try store.plan(manifest: manifest, extraMembers: [license], modifiedTime: stamp + 3600)
        #expect(other.etag != etag)
    }
}

@Test func bundleExportImportAndTamperRefusal() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let source = try PackageStore(root: dir + "/a")
        let r = try source.importZip(path: pkg.zip, product: "thor10", os: "windows", arch: "amd64")
        let exported = try source.exportBundle(to: dir + "/bundle")
        #expect(exported.manifests == 1 && exported.blobs == r.memberCount)
        let target = try PackageStore(root: dir + "/b")
        let imported = try target.importBundle(from: dir + "/bundle")
        #expect(imported.blobs == r.memberCount && imported.manifests == 1)
        let m = try #require(try target.currentManifest(r.key))
        let p1 = try source.plan(manifest: m, extraMembers: [license], modifiedTime: stamp)
        let p2 = try target.plan(manifest: m, extraMembers: [license], modifiedTime: stamp)
        #expect(try materialize(p1) == materialize(p2))

        // A blob altered in transit (checksum list updated too) is refused: its content must hash to its name.
        let blobFile = try #require(filesUnder(dir + "/bundle").keys.first { $0.hasPrefix("blobs/") })
        let full = dir + "/bundle/" + blobFile
        var b = [UInt8](FileManager.default.contents(atPath: full)!)
        b[0] ^= 1
        try write(b, full)
        let sums = try String(contentsOfFile: dir + "/bundle/SHA256SUMS", encoding: .utf8)
        #expect(throws: StoreError.self) { _ = try PackageStore(root: dir + "/c").importBundle(from: dir + "/bundle") }
        let fixed =
            sums.split(separator: "\n").map { line -> String in
                line.hasSuffix(blobFile) ? sha256Hex(b) + "  " + blobFile : String(line)
            }.joined(separator: "\n") + "\n"
        try fixed.write(toFile: dir + "/bundle/SHA256SUMS", atomically: true, encoding: .utf8)
        let c = try PackageStore(root: dir + "/c")
        do throws(StoreError) {
            _ = try c.importBundle(from: dir + "/bundle")
            Issue.record("tampered bundle accepted")
        } catch {
            #expect(error.description.contains("not its name"))
        }
        #expect(c.blobs.allBlobs().count < r.memberCount)
        #expect(c.manifestDigests().isEmpty)
    }
}

@Test func refusedArchiveNamesTheMember() async throws {
    try await withTemporaryDirectory { dir in
        let zip = dir + "/evil.zip"
        let script = """
            import zipfile, sys
            with zipfile.ZipFile(sys.argv[1], 'w') as z:
                z.writestr('ok.txt', b'fine')
                z.writestr('../../escape.exe', b'MZ')
            """
        #expect(runTool("/usr/bin/env", ["python3", "-c", script, zip]).status == 0)
        let store = try PackageStore(root: dir + "/cache")
        do throws(StoreError) {
            _ = try store.importZip(path: zip, product: "thor10", os: "windows", arch: "amd64")
            Issue.record("escaping path accepted")
        } catch {
            #expect(error.description.contains("../../escape.exe"))
        }
        #expect(store.blobs.allBlobs().isEmpty)
    }
}

func sha256Hex(_ b: [UInt8]) -> String { SHA256Hasher.hex(b) }

@Test func aBurstOfFirstPlansAfterAStartHashesAndOpensEachBlobOnce() async throws {
    try await withTemporaryDirectory { dir in
        let pkg = try PackageFixture(in: dir, name: "p", seed: 1, bigBinaries: false)
        let root = dir + "/cache"
        let manifest: Manifest
        do {
            let store = try PackageStore(root: root)
            let key = try store.importZip(path: pkg.zip, product: "thor10", os: "linux", arch: "amd64").key
            manifest = try #require(try store.currentManifest(key))
        }
        let distinct = Set(manifest.members.map(\.blob)).count
        // A fresh start: 32 downloads plan at once on threads of their own (as the server's blocking work does).
        let store = try PackageStore(root: root)
        let plans = Lock<[AssemblyPlan]>([])
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            let lic = (name: "host\(i).lic", bytes: Array("LIC\(i)".utf8))
            if let p = try? store.plan(manifest: manifest, extraMembers: [lic], modifiedTime: stamp) {
                plans.withLock { $0.append(p) }
            }
        }
        let all = plans.withLock { $0 }
        #expect(all.count == 32)
        // Each blob was verified by one opener only, and every plan shares that opener's file.
        #expect(store.blobs.verificationHashCount == distinct)
        var files: [String: Set<ObjectIdentifier>] = [:]
        for plan in all {
            for case .file(let f, _, _) in plan.segments { files[f.path, default: []].insert(ObjectIdentifier(f)) }
        }
        #expect(!files.isEmpty)
        #expect(files.values.allSatisfy { $0.count == 1 })
        // They also share one copy of the package's central directory (the segment before the host's own
        // central entry and the end records), so a burst of first downloads holds it once, not per plan.
        let centrals = Set(all.map { plan -> Int in
            guard case .bytes(let b) = plan.segments[plan.segments.count - 2] else { return 0 }
            return b.withUnsafeBytes { Int(bitPattern: $0.baseAddress) }
        })
        #expect(centrals.count == 1 && !centrals.contains(0))
        #expect(all.allSatisfy { p in p.contentLength == p.segments.reduce(0) { $0 + $1.length } })
    }
}
