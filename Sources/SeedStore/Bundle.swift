import Glibc
import SeedPosix

/// Export and import of bundles: a directory with `SEEDMIRROR-BUNDLE`, `manifests/`, `blobs/`,
/// `current/` and `SHA256SUMS` (docs/design.md, "Bundles").
extension PackageStore {
    static let bundleMarker = "seedmirror-bundle 1\n"

    /// Writes every manifest, every referenced blob and the current pointers to `directory`
    /// (which must not exist or be empty), plus a checksum list of every file.
    public func exportBundle(to directory: String) throws(StoreError) -> BundleReport {
        if !listDirectory(directory).isEmpty {
            throw StoreError(.badBundle("directory is not empty"), subject: directory)
        }
        try makeDirectory(directory + "/manifests")
        var sums: [(String, String)] = []
        var report = BundleReport(manifests: 0, blobs: 0, bytes: 0)
        var blobsDone: Set<String> = []
        for d in manifestDigests() {
            let m = try manifest(digest: d)
            let bytes = m.canonicalJSON()
            let rel = "manifests/\(d).json"
            try writeFileAtomically(bytes, to: directory + "/" + rel, tmpDir: directory + "/manifests")
            sums.append((d, rel))
            report.manifests += 1
            for mem in m.members where blobsDone.insert(mem.blob).inserted {
                // Verified before it leaves: a bad blob must not travel.
                let (file, _) = try blobs.openVerified(mem.blob, method: mem.method)
                let rel = String(blobs.path(of: mem.blob, method: mem.method).dropFirst(root.count + 1))
                let dest = directory + "/" + rel
                try makeDirectory(String(dest[..<dest.lastIndex(of: "/")!]))
                let t = try TempFile(inDirectory: directory)
                let sha = SHA256Hasher()
                try forEachChunk(file, length: file.size) { (c) throws(StoreError) in
                    sha.update(c)
                    try t.write(c)
                }
                try t.commit(to: dest, hook: nil)
                sums.append((sha.finalHex(), rel))
                report.blobs += 1
                report.bytes += file.size
            }
        }
        for product in listDirectory(currentDir) {
            for name in listDirectory(currentDir + "/" + product) {
                let rel = "current/\(product)/\(name)"
                let bytes = try readWholeFile(root + "/" + rel, limit: 4096)
                try makeDirectory(directory + "/current/" + product)
                try writeFileAtomically(bytes, to: directory + "/" + rel, tmpDir: directory)
                sums.append((SHA256Hasher.hex(bytes), rel))
            }
        }
        let list = sums.sorted { $0.1 < $1.1 }.map { "\($0.0)  \($0.1)\n" }.joined()
        try writeFileAtomically(Array(list.utf8), to: directory + "/SHA256SUMS", tmpDir: directory)
        try writeFileAtomically(Array(Self.bundleMarker.utf8), to: directory + "/SEEDMIRROR-BUNDLE", tmpDir: directory)
        return report
    }

    /// Imports a bundle: every file must be in SHA256SUMS with the right hash, every blob's content
    /// must hash to its name (checked before it enters the store), every manifest must be canonical
    /// and complete. Then the bundle's current pointers are applied.
    public func importBundle(from directory: String) throws(StoreError) -> BundleReport {
        func bad(_ why: String) -> StoreError { StoreError(.badBundle(why), subject: directory) }
        let marker = try? readWholeFile(directory + "/SEEDMIRROR-BUNDLE", limit: 64)
        guard marker == Array(Self.bundleMarker.utf8) else { throw bad("SEEDMIRROR-BUNDLE marker missing or unknown") }
        let sumsText = String(decoding: try readWholeFile(directory + "/SHA256SUMS"), as: UTF8.self)
        var expected: [String: String] = [:]
        for line in sumsText.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, isHexDigest(String(parts[0])) else {
                throw bad("malformed SHA256SUMS line: \(line)")
            }
            let rel = parts[1].hasPrefix(" ") ? String(parts[1].dropFirst()) : String(parts[1])
            guard !rel.hasPrefix("/"), !rel.split(separator: "/").contains("..") else {
                throw bad("unsafe path \(rel)")
            }
            expected[rel] = String(parts[0])
        }
        return try serialized { () throws(StoreError) -> BundleReport in
            try importBundleLocked(directory: directory, expected: expected, bad: bad)
        }
    }

    private func importBundleLocked(
        directory: String, expected: [String: String], bad: (String) -> StoreError
    ) throws(StoreError) -> BundleReport {
        var report = BundleReport(manifests: 0, blobs: 0, bytes: 0)
        // Blobs first: each is copied to tmp/ while hashing the file, then its content is hashed
        // (inflated) and must equal its name before the rename makes it visible.
        for (rel, sum) in expected.sorted(by: { $0.key < $1.key }) where rel.hasPrefix("blobs/") {
            let name = String(rel.split(separator: "/").last ?? "")
            let parts = name.split(separator: ".")
            guard parts.count == 2, isHexDigest(String(parts[0])), parts[1] == "deflate" || parts[1] == "stored" else {
                throw bad("unexpected blob file \(rel)")
            }
            let hex = String(parts[0])
            let method: UInt16 = parts[1] == "deflate" ? 8 : 0
            if blobs.lookup(hex) != nil { continue }
            let src: SharedFile
            do { src = try SharedFile(openingForReading: directory + "/" + rel) } catch {
                throw StoreError(.io(error), subject: rel)
            }
            let t = try TempFile(inDirectory: tmpDir)
            let sha = SHA256Hasher()
            do throws(StoreError) {
                try forEachChunk(src, length: src.size) { (c) throws(StoreError) in
                    sha.update(c)
                    try t.write(c)
                }
                guard sha.finalHex() == sum else { throw bad("\(rel) does not match SHA256SUMS") }
                let copy: SharedFile
                do { copy = try SharedFile(openingForReading: t.path) } catch {
                    throw StoreError(.io(error), subject: t.path)
                }
                let (content, facts) = try BlobStore.hashContent(copy, method: method, name: hex)
                guard content == hex else {
                    throw bad("blob \(rel) content hashes to \(content.prefix(16)), not its name")
                }
                try blobs.commit(t, hex: hex, method: method)
                blobs.markVerified(hex, facts: facts)
            } catch {
                t.discard()
                throw error
            }
            report.blobs += 1
            report.bytes += src.size
        }
        for (rel, sum) in expected.sorted(by: { $0.key < $1.key }) where rel.hasPrefix("manifests/") {
            let bytes = try readWholeFile(directory + "/" + rel)
            let digest = SHA256Hasher.hex(bytes)
            guard digest == sum, rel == "manifests/\(digest).json" else {
                throw bad("\(rel) does not match its name or SHA256SUMS")
            }
            let m = try Manifest.parse(bytes, name: digest)
            for mem in m.members where blobs.lookup(mem.blob) == nil {
                throw bad(
                    "manifest \(digest.prefix(12)) needs blob \(mem.blob.prefix(12)) for \(mem.path), not in bundle or store"
                )
            }
            if !fileExists("\(manifestsDir)/\(digest).json") {
                try writeFileAtomically(bytes, to: "\(manifestsDir)/\(digest).json", tmpDir: tmpDir)
                report.manifests += 1
            }
        }
        for (rel, sum) in expected.sorted(by: { $0.key < $1.key }) where rel.hasPrefix("current/") {
            let bytes = try readWholeFile(directory + "/" + rel, limit: 4096)
            guard SHA256Hasher.hex(bytes) == sum else { throw bad("\(rel) does not match SHA256SUMS") }
            let parts = rel.split(separator: "/")
            let kp = parts.count == 3 ? parts[2].split(separator: "-", maxSplits: 2) : []
            guard kp.count == 3 else { throw bad("unexpected pointer \(rel)") }
            let key = PackageKey(
                product: String(parts[1]), os: String(kp[0]), arch: String(kp[1]), variant: String(kp[2]))
            let digest = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            try setCurrentLocked(key, digest: digest)
        }
        return report
    }
}
