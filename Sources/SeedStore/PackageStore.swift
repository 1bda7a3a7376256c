public import Foundation
import Glibc
import SeedCompression
public import SeedPosix
public import SeedZip
import SeedCore

/// Settings of the package store; SeedServer fills them from the `store` config section.
public struct StoreOptions: Sendable {
    /// zlib level (1...9) for members that arrive stored and for license members added at plan time.
    public var deflateLevel: Int32
    /// Bounds for imported archives (members, total bytes, compression ratio).
    public var zipLimits: ZipLimits
    /// Largest `.lic` member accepted from an archive.
    public var maxLicenseBytes: UInt64
    /// When set, imports evict the oldest non-current versions until blobs fit (then gc).
    public var sizeCapBytes: UInt64?
    /// Test hook: called just before a blob is renamed into place; throwing simulates a crash there.
    public var faultHook: StoreFaultHook?

    public init(
        deflateLevel: Int32 = 6, zipLimits: ZipLimits = ZipLimits(), maxLicenseBytes: UInt64 = 1 << 20,
        sizeCapBytes: UInt64? = nil, faultHook: StoreFaultHook? = nil
    ) {
        self.deflateLevel = deflateLevel
        self.zipLimits = zipLimits
        self.maxLicenseBytes = maxLicenseBytes
        self.sizeCapBytes = sizeCapBytes
        self.faultHook = faultHook
    }
}

/// A license file found in an imported archive; not package content, handed to the license store.
public struct ImportedLicense: Sendable, Equatable {
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// What an import did.
public struct ImportResult: Sendable {
    public var manifestDigest: String
    public var key: PackageKey
    public var version: String
    public var memberCount: Int
    /// Blobs written by this import, and their bytes on disk.
    public var newBlobs: Int
    public var newBlobBytes: UInt64
    /// Members whose content was already stored (by an earlier version or an earlier member).
    public var sharedBlobs: Int
    public var contentBytes: UInt64
    public var licenses: [ImportedLicense]
    /// False when this exact manifest was already present.
    public var manifestIsNew: Bool
}

/// A piece of an assembled download: literal bytes or a range of an open blob file.
public enum PlanSegment: Sendable {
    case bytes([UInt8])
    case file(SharedFile, offset: UInt64, length: UInt64)

    public var length: UInt64 {
        switch self {
        case .bytes(let b): UInt64(b.count)
        case .file(_, _, let l): l
        }
    }
}

/// One host's ZIP, ready to send: every blob used is open and verified.
public struct AssemblyPlan: Sendable {
    public var contentLength: UInt64
    /// Strong validator, quoted: depends only on the manifest and the extra members' bytes and time.
    public var etag: String
    public var segments: [PlanSegment]
    public var manifestDigest: String
}

/// One stored package version as listed by `packages()`.
public struct PackageVersionInfo: Sendable {
    public var digest: String
    public var key: PackageKey
    public var version: String
    public var isCurrent: Bool
    public var memberCount: Int
    public var contentBytes: UInt64
    /// Bytes of the distinct blobs this version references.
    public var storedBytes: UInt64
    /// Members whose blob another stored version also references.
    public var sharedMembers: Int
    public var importedAt: Date
}

public struct GCReport: Sendable, Equatable {
    public var removedBlobs: Int
    public var removedBytes: UInt64
    public var keptBlobs: Int
    public var evictedManifests: [String]
}

public struct VerifyReport: Sendable, Equatable {
    public var okBlobs: Int
    /// Blob names moved to quarantine because their content did not match.
    public var quarantined: [String]
    /// "manifest: path -> blob" for members whose blob is missing.
    public var missing: [String]
}

public struct BundleReport: Sendable, Equatable {
    public var manifests: Int
    public var blobs: Int
    public var bytes: UInt64
}

/// The package store: imports ZIPs into deduplicated blobs plus manifests, plans per-host ZIPs,
/// and maintains the cache (gc, size cap, verify, bundles). Thread-safe; imports and maintenance
/// are serialised, plans run concurrently with them. See docs/design.md.
public final class PackageStore: Sendable {
    public let root: String
    public let options: StoreOptions
    public let blobs: BlobStore
    private let writeLock = Lock(0)
    private let manifestCache = Lock([String: Manifest]())
    private let preparedCache = Lock([String: PreparedEntry]())

    var manifestsDir: String { root + "/manifests" }
    var currentDir: String { root + "/current" }
    var tmpDir: String { root + "/tmp" }

    public init(root: String, options: StoreOptions = StoreOptions()) throws(StoreError) {
        self.root = root
        self.options = options
        self.blobs = try BlobStore(root: root, faultHook: options.faultHook)
    }

    func serialized<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try writeLock.withLock { (_) throws(StoreError) -> T in try body() }
    }

    // MARK: Import

    /// Imports a package ZIP, streaming it from disk (never whole in memory); makes it current.
    /// `.lic` members are returned in `licenses`, not stored. `version` defaults to the file name.
    public func importZip(
        path: String, product: String, os: String, arch: String, variant: String = "full", version: String? = nil,
        makeCurrent: Bool = true
    ) throws(StoreError) -> ImportResult {
        let key = PackageKey(product: product, os: os, arch: arch, variant: variant)
        try key.validate()
        return try serialized { () throws(StoreError) -> ImportResult in
            let r = try importLocked(path: path, key: key, version: version)
            if makeCurrent { try setCurrentLocked(key, digest: r.manifestDigest) }
            if let cap = options.sizeCapBytes { _ = try enforceSizeCapLocked(cap) }
            return r
        }
    }

    private func importLocked(path: String, key: PackageKey, version: String?) throws(StoreError) -> ImportResult {
        let file: SharedFile
        do { file = try SharedFile(openingForReading: path) } catch { throw StoreError(.io(error), subject: path) }
        let source = FileZipSource(file: file)
        let archive: ZipArchive
        do { archive = try ZipArchive(source: source, limits: options.zipLimits) } catch {
            throw StoreError(.badArchive(error), subject: path)
        }
        var members: [ManifestMember] = []
        var licenses: [ImportedLicense] = []
        var injectedCrash = false
        var newBlobs = 0
        var newBytes: UInt64 = 0
        var shared = 0
        var contentBytes: UInt64 = 0
        var pending: [(temp: TempFile, hex: String, method: UInt16)] = []
        var pendingFacts: [String: (UInt16, UInt64)] = [:]
        var written: [(hex: String, facts: BlobFacts)] = []
        defer {
            // Temp files of a failed import are dropped; a simulated crash leaves them, as a real one would.
            if !injectedCrash { for p in pending { p.temp.discard() } }
        }
        for e in archive.entries {
            if e.isDirectory { continue }
            if e.name.lowercased().hasSuffix(".lic") {
                guard e.uncompressedSize <= options.maxLicenseBytes else {
                    throw StoreError(
                        .badArchive(
                            ZipError(
                                .tooLarge(bytes: e.uncompressedSize, limit: options.maxLicenseBytes), member: e.name)),
                        subject: path)
                }
                do {
                    licenses.append(ImportedLicense(name: e.name, bytes: try archive.contents(of: e, from: source)))
                } catch {
                    throw StoreError(.badArchive(error), subject: path)
                }
                continue
            }
            // Pass 1: content hash (and CRC/size checks inside extract).
            let sha = SHA256Hasher()
            do { try archive.extract(e, from: source) { sha.update($0) } } catch {
                throw StoreError(.badArchive(error), subject: path)
            }
            let hex = sha.finalHex()
            contentBytes += e.uncompressedSize
            let method: UInt16
            let storedSize: UInt64
            if let existing = pendingFacts[hex] ?? blobs.lookup(hex) {
                (method, storedSize) = existing
                shared += 1
            } else {
                // Pass 2: the wire bytes. A deflated member's compressed bytes are reused as they are.
                let t = try storeBlob(hex: hex, entry: e, archive: archive, file: file, source: source)
                pending.append((t.temp, hex, t.method))
                (method, storedSize) = (t.method, t.temp.size)
                pendingFacts[hex] = (method, storedSize)
                let facts = BlobFacts(
                    method: method, storedSize: storedSize, contentSize: e.uncompressedSize, crc32: e.crc32)
                written.append((hex, facts))
                newBlobs += 1
                newBytes += storedSize
            }
            members.append(
                ManifestMember(
                    path: e.name, blob: hex, method: method, crc32: e.crc32, compressedSize: storedSize,
                    size: e.uncompressedSize, dosTime: e.dosTime, dosDate: e.dosDate,
                    externalAttributes: e.externalAttributes, versionMadeBy: e.versionMadeBy))
        }
        do throws(StoreError) {
            try blobs.commitBatch(pending)
        } catch {
            if case .injectedFault = error.kind { injectedCrash = true }
            throw error
        }
        pending = []
        // The content of every blob written above was hashed (pass 1) and its CRC and size checked while
        // it was extracted: mark them verified so the first plan does not hash them again. Blobs that
        // were already on disk are not marked: this process has not read them, they are verified on use.
        for (hex, facts) in written { blobs.markVerified(hex, facts: facts) }
        let label = version ?? defaultVersionLabel(path)
        let manifest = Manifest(key: key, version: label, members: members)
        let (digest, isNew) = try writeManifest(manifest)
        return ImportResult(
            manifestDigest: digest, key: key, version: label, memberCount: members.count, newBlobs: newBlobs,
            newBlobBytes: newBytes, sharedBlobs: shared, contentBytes: contentBytes, licenses: licenses,
            manifestIsNew: isNew)
    }

    /// Writes a member's wire bytes to a temp file (not yet durable nor visible).
    private func storeBlob(hex: String, entry e: ZipEntry, archive: ZipArchive, file: SharedFile, source: FileZipSource)
        throws(StoreError) -> (temp: TempFile, method: UInt16)
    {
        var temp = try TempFile(inDirectory: tmpDir)
        var method: UInt16 = 8
        do throws(StoreError) {
            if e.method == 8 || !worthDeflating(e, file: file) {
                method = e.method
                try forEachChunk(file, offset: e.dataOffset, length: e.compressedSize) { (c) throws(StoreError) in
                    try temp.write(c)
                }
            } else {
                let deflater: RawDeflater
                do { deflater = try RawDeflater(level: options.deflateLevel) } catch {
                    throw StoreError(.compression(error.description), subject: e.name)
                }
                var out: [UInt8] = []
                var failure: StoreError? = nil
                let sink: (UnsafeRawBufferPointer) -> Void = { chunk in
                    guard failure == nil else { return }
                    do {
                        try deflater.compress(chunk, finish: false, into: &out)
                        if out.count >= 1 << 20 {
                            try temp.write(out)
                            out.removeAll(keepingCapacity: true)
                        }
                    } catch let err as StoreError { failure = err } catch {
                        failure = StoreError(.compression("\(error)"), subject: e.name)
                    }
                }
                do { try archive.extract(e, from: source, sink: sink) } catch {
                    throw StoreError(.badArchive(error), subject: e.name)
                }
                if let failure { throw failure }
                do {
                    try deflater.compress(UnsafeRawBufferPointer(start: nil, count: 0), finish: true, into: &out)
                } catch {
                    throw StoreError(.compression(error.description), subject: e.name)
                }
                try temp.write(out)
                if temp.size >= e.uncompressedSize {
                    // Deflate does not shrink it: keep the stored bytes instead.
                    temp.discard()
                    temp = try TempFile(inDirectory: tmpDir)
                    method = 0
                    try forEachChunk(file, offset: e.dataOffset, length: e.compressedSize) { (c) throws(StoreError) in
                        try temp.write(c)
                    }
                }
            }
            return (temp, method)
        } catch {
            temp.discard()
            throw error
        }
    }

    /// For a large stored member, deflates a 256 KiB sample first: already-compressed content (most
    /// of a program folder's binaries) is kept stored without spending a full deflate pass on it.
    private func worthDeflating(_ e: ZipEntry, file: SharedFile) -> Bool {
        let sampleSize = 256 << 10
        guard e.uncompressedSize > UInt64(4 * sampleSize) else { return true }
        guard let sample = try? preadExactly(file, at: e.dataOffset, count: sampleSize),
            let packed = try? RawDeflater.compress(sample, level: options.deflateLevel)
        else { return true }
        return packed.count < sampleSize * 97 / 100
    }

    private func defaultVersionLabel(_ path: String) -> String {
        var name = String(path.split(separator: "/").last ?? "")
        if name.lowercased().hasSuffix(".zip") { name.removeLast(4) }
        return name.isEmpty ? "unnamed" : name
    }

    // MARK: Manifests

    private func manifestPath(_ digest: String) -> String { "\(manifestsDir)/\(digest).json" }
    private func pointerPath(_ key: PackageKey) -> String {
        "\(currentDir)/\(key.product)/\(key.os)-\(key.arch)-\(key.variant)"
    }

    private func writeManifest(_ m: Manifest) throws(StoreError) -> (String, Bool) {
        let bytes = m.canonicalJSON()
        let digest = SHA256Hasher.hex(bytes)
        let p = manifestPath(digest)
        var m = m
        m.knownDigest = digest
        if fileExists(p) { return (digest, false) }
        try writeFileAtomically(bytes, to: p, tmpDir: tmpDir)
        manifestCache.withLock { [m] in $0[digest] = m }
        return (digest, true)
    }

    /// Loads a manifest by digest, checking its name matches its content.
    public func manifest(digest: String) throws(StoreError) -> Manifest {
        guard isHexDigest(digest) else { throw StoreError(.badName("manifest digest"), subject: digest) }
        if let m = manifestCache.withLock({ $0[digest] }) { return m }
        let p = manifestPath(digest)
        guard fileExists(p) else { throw StoreError(.missingManifest, subject: digest) }
        let bytes = try readWholeFile(p)
        let actual = SHA256Hasher.hex(bytes)
        guard actual == digest else {
            throw StoreError(.badManifest("content hashes to \(actual.prefix(12))"), subject: digest)
        }
        let m = try Manifest.parse(bytes, name: digest)
        manifestCache.withLock { $0[digest] = m }
        return m
    }

    /// Digests of all stored manifests.
    public func manifestDigests() -> [String] {
        listDirectory(manifestsDir).compactMap { n in
            n.hasSuffix(".json") && isHexDigest(String(n.dropLast(5))) ? String(n.dropLast(5)) : nil
        }
    }

    /// The current version's digest for a package, if any.
    public func currentDigest(_ key: PackageKey) throws(StoreError) -> String? {
        try key.validate()
        let p = pointerPath(key)
        guard fileExists(p) else { return nil }
        let text = String(decoding: try readWholeFile(p, limit: 4096), as: UTF8.self).trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard isHexDigest(text) else {
            throw StoreError(.badManifest("pointer \(p) does not hold a digest"), subject: key.description)
        }
        return text
    }

    public func currentManifest(_ key: PackageKey) throws(StoreError) -> Manifest? {
        guard let d = try currentDigest(key) else { return nil }
        return try manifest(digest: d)
    }

    /// Makes a stored version current (atomic replace of the pointer file).
    public func setCurrent(_ key: PackageKey, digest: String) throws(StoreError) {
        try serialized { () throws(StoreError) in try setCurrentLocked(key, digest: digest) }
    }

    func setCurrentLocked(_ key: PackageKey, digest: String) throws(StoreError) {
        try key.validate()
        _ = try manifest(digest: digest)
        try makeDirectory("\(currentDir)/\(key.product)")
        try writeFileAtomically(Array((digest + "\n").utf8), to: pointerPath(key), tmpDir: tmpDir)
    }

    private func currentDigests() -> Set<String> {
        var out: Set<String> = []
        for product in listDirectory(currentDir) {
            for name in listDirectory(currentDir + "/" + product) {
                if let b = try? readWholeFile("\(currentDir)/\(product)/\(name)", limit: 4096) {
                    out.insert(String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
        return out
    }

    // MARK: Assembly

    /// Plans one host's ZIP: the manifest's members as stored, then `extraMembers` (the license),
    /// compressed in memory now and stamped with `modifiedTime`. Every blob used is verified
    /// (hashed on first use after start); a bad blob is quarantined and the plan fails.
    public func plan(manifest: Manifest, extraMembers: [(name: String, bytes: [UInt8])], modifiedTime: Date)
        throws(StoreError) -> AssemblyPlan
    {
        let digest = manifest.digest
        let prepared = try prepare(manifest, digest: digest)
        var builder = prepared.builder
        let files = prepared.files
        let (dosTime, dosDate) = dosTimestamp(modifiedTime)
        var extraBytes: [[UInt8]] = []
        let etagHash = SHA256Hasher()
        etagHash.update(Array("seedmirror-plan-1\n\(digest)\n".utf8))
        for x in extraMembers {
            var data: [UInt8]
            var method: UInt16 = 8
            do { data = try RawDeflater.compress(x.bytes, level: options.deflateLevel) } catch {
                throw StoreError(.compression(error.description), subject: x.name)
            }
            if data.count >= x.bytes.count {
                data = x.bytes
                method = 0
            }
            let crc = CRC32.checksum(x.bytes)
            do {
                try builder.add(
                    ZipPlanMember(
                        name: x.name, method: method, crc32: crc, compressedSize: UInt64(data.count),
                        uncompressedSize: UInt64(x.bytes.count), dosTime: dosTime, dosDate: dosDate,
                        externalAttributes: 0o100644 << 16, versionMadeBy: 0x0314))
            } catch {
                throw StoreError(.badArchive(error), subject: "assembly of \(manifest.key) \(manifest.version)")
            }
            extraBytes.append(data)
            etagHash.update(Array("\(x.name)\n\(method) \(dosTime) \(dosDate) \(SHA256Hasher.hex(data))\n".utf8))
        }
        let layout = builder.finish()
        let n = manifest.members.count
        let segments: [PlanSegment] = layout.segments.map { s in
            switch s {
            case .bytes(let b): return .bytes(b)
            case .member(let i, let off, let len):
                if i < n { return .file(files[i], offset: off, length: len) }
                return .bytes(Array(extraBytes[i - n][Int(off)..<Int(off + len)]))
            }
        }
        return AssemblyPlan(
            contentLength: layout.totalLength, etag: "\"" + String(etagHash.finalHex().prefix(40)) + "\"",
            segments: segments, manifestDigest: digest)
    }

    struct Prepared {
        var builder: ZipLayoutBuilder
        var files: [SharedFile]
    }

    /// A manifest's verified open blobs as they were when verified (device, inode, size, mtime of each
    /// descriptor) and the blob store generation then.
    private struct PreparedEntry {
        var prepared: Prepared
        var paths: [String]
        var identities: [FileIdentity]
        var generation: Int
    }

    private struct FileIdentity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, mtimeSec: Int, mtimeNsec: Int
        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            mtimeSec = st.st_mtim.tv_sec
            mtimeNsec = st.st_mtim.tv_nsec
        }
        init?(descriptor fd: CInt) {
            var st = stat()
            guard fstat(fd, &st) == 0 else { return nil }
            self.init(st)
        }
        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            self.init(st)
        }
    }

    /// The package part of every plan of a manifest: verified open blobs and their headers.
    /// The first plan of a manifest opens and verifies every blob (`openVerified`: hashed once per process
    /// unless written by this process). Later plans reuse the same descriptors and headers after one
    /// `stat` of each blob's path (kept from the first plan, no per-request path building or lookups):
    /// a blob file changed in place (size, mtime), replaced (another inode) or gone, or any blob the
    /// store forgot since (quarantine, gc), sends the plan back through `openVerified`.
    private func prepare(_ manifest: Manifest, digest: String) throws(StoreError) -> Prepared {
        let generation = blobs.generation
        if let hit = preparedCache.withLock({ $0[digest] }), hit.generation == generation,
            hit.paths.count == hit.identities.count,
            zip(hit.paths, hit.identities).allSatisfy({ FileIdentity(path: $0.0) == $0.1 })
        {
            return hit.prepared
        }
        var files: [SharedFile] = []
        var paths: [String] = []
        var identities: [FileIdentity] = []
        files.reserveCapacity(manifest.members.count)
        paths.reserveCapacity(manifest.members.count)
        identities.reserveCapacity(manifest.members.count)
        for m in manifest.members {
            let (file, facts) = try blobs.openVerified(m.blob, method: m.method)
            guard facts.storedSize == m.compressedSize, facts.contentSize == m.size, facts.crc32 == m.crc32 else {
                throw StoreError(
                    .blobMismatch(
                        "member \(m.path): blob has \(facts.storedSize)/\(facts.contentSize) bytes crc \(facts.crc32), manifest says \(m.compressedSize)/\(m.size) crc \(m.crc32)"
                    ),
                    subject: m.blob)
            }
            let path = blobs.path(of: m.blob, method: m.method)
            // The identity of the verified descriptor: a path that points elsewhere later fails the check.
            guard let id = FileIdentity(descriptor: file.rawValue) else {
                throw StoreError(.io(.current("fstat", path: path)), subject: m.blob)
            }
            files.append(file)
            paths.append(path)
            identities.append(id)
        }
        var builder: ZipLayoutBuilder
        if let b = preparedCache.withLock({ $0[digest]?.prepared.builder }) {
            builder = b
        } else {
            builder = ZipLayoutBuilder()
            for m in manifest.members {
                do {
                    try builder.add(
                        ZipPlanMember(
                            name: m.path, method: m.method, crc32: m.crc32, compressedSize: m.compressedSize,
                            uncompressedSize: m.size, dosTime: m.dosTime, dosDate: m.dosDate,
                            externalAttributes: m.externalAttributes, versionMadeBy: m.versionMadeBy))
                } catch {
                    throw StoreError(.badArchive(error), subject: "assembly of \(manifest.key) \(manifest.version)")
                }
            }
            // Every plan of the manifest shares its central directory (one segment) instead of copying it.
            builder.seal()
        }
        let built = builder
        return preparedCache.withLock { c -> Prepared in
            // Plans that verified the manifest at the same time (the first burst after a start) keep the layout
            // cached first, so they share its central directory instead of each holding one of its own.
            let prepared = Prepared(builder: c[digest]?.prepared.builder ?? built, files: files)
            // A handful of versions are live at once; past that, start over rather than grow.
            if c.count >= 64 { c.removeAll() }
            c[digest] = PreparedEntry(prepared: prepared, paths: paths, identities: identities, generation: generation)
            return prepared
        }
    }

    // MARK: Maintenance

    /// Removes blobs no manifest references, and leftovers in tmp/. Safe while serving: plans hold
    /// their files open, and an unlinked file stays readable through its descriptor.
    public func gc() throws(StoreError) -> GCReport {
        try serialized { () throws(StoreError) -> GCReport in try gcLocked() }
    }

    private func referencedBlobs() throws(StoreError) -> Set<String> {
        var refs: Set<String> = []
        for d in manifestDigests() {
            for m in try manifest(digest: d).members { refs.insert(m.blob) }
        }
        return refs
    }

    private func gcLocked() throws(StoreError) -> GCReport {
        let refs = try referencedBlobs()
        var removed = 0
        var bytes: UInt64 = 0
        var kept = 0
        for b in blobs.allBlobs() {
            if refs.contains(b.hex) {
                kept += 1
            } else {
                try blobs.remove(b.hex, method: b.method)
                removed += 1
                bytes += b.storedSize
            }
        }
        return GCReport(removedBlobs: removed, removedBytes: bytes, keptBlobs: kept, evictedManifests: [])
    }

    /// Total bytes of all blob files.
    public func blobBytes() -> UInt64 { blobs.allBlobs().reduce(0) { $0 + $1.storedSize } }

    /// Evicts the oldest non-current versions until blobs fit in `capBytes`, collecting garbage after each.
    public func enforceSizeCap(_ capBytes: UInt64) throws(StoreError) -> GCReport {
        try serialized { () throws(StoreError) -> GCReport in try enforceSizeCapLocked(capBytes) }
    }

    private func enforceSizeCapLocked(_ capBytes: UInt64) throws(StoreError) -> GCReport {
        var report = try gcLocked()
        let current = currentDigests()
        var candidates: [(digest: String, age: Double)] = []
        for d in manifestDigests() where !current.contains(d) {
            var age = 0.0
            if let st = fileStat(manifestPath(d)) { age = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 }
            candidates.append((d, age))
        }
        candidates.sort { a, b in a.age < b.age || (a.age == b.age && a.digest < b.digest) }
        for (d, _) in candidates {
            if blobBytes() <= capBytes { break }
            try removeFile(manifestPath(d))
            manifestCache.withLock { $0[d] = nil }
            let g = try gcLocked()
            report.removedBlobs += g.removedBlobs
            report.removedBytes += g.removedBytes
            report.keptBlobs = g.keptBlobs
            report.evictedManifests.append(d)
        }
        return report
    }

    /// Re-hashes every blob; mismatches are quarantined. Also lists members whose blob is missing.
    public func verify() throws(StoreError) -> VerifyReport {
        try serialized { () throws(StoreError) -> VerifyReport in
            var ok = 0
            var bad: [String] = []
            for b in blobs.allBlobs() {
                let p = blobs.path(of: b.hex, method: b.method)
                let file: SharedFile
                do throws(SystemError) { file = try SharedFile(openingForReading: p) } catch {
                    throw StoreError(.io(error), subject: p)
                }
                let (actual, _) = try BlobStore.hashContent(file, method: b.method, name: b.hex)
                if actual == b.hex {
                    ok += 1
                } else {
                    blobs.quarantine(b.hex, method: b.method)
                    bad.append(b.hex)
                }
            }
            var missing: [String] = []
            for d in manifestDigests() {
                for m in try manifest(digest: d).members where !fileExists(blobs.path(of: m.blob, method: m.method)) {
                    missing.append("\(d.prefix(12)): \(m.path) -> \(m.blob.prefix(12))")
                }
            }
            return VerifyReport(okBlobs: ok, quarantined: bad, missing: missing)
        }
    }

    /// Every stored version with its sizes and how much it shares with the others.
    public func packages() throws(StoreError) -> [PackageVersionInfo] {
        let current = currentDigests()
        var manifests: [(String, Manifest)] = []
        var users: [String: Set<String>] = [:]
        for d in manifestDigests() {
            let m = try manifest(digest: d)
            manifests.append((d, m))
            for mem in m.members { users[mem.blob, default: []].insert(d) }
        }
        return manifests.map { (d, m) in
            var seen: Set<String> = []
            var stored: UInt64 = 0
            for mem in m.members where seen.insert(mem.blob).inserted { stored += mem.compressedSize }
            let shared = m.members.filter { (users[$0.blob]?.count ?? 0) > 1 }.count
            let mtime =
                fileStat(manifestPath(d)).map { Date(timeIntervalSince1970: Double($0.st_mtim.tv_sec)) }
                ?? Date(timeIntervalSince1970: 0)
            return PackageVersionInfo(
                digest: d, key: m.key, version: m.version, isCurrent: current.contains(d), memberCount: m.members.count,
                contentBytes: m.members.reduce(0) { $0 + $1.size }, storedBytes: stored, sharedMembers: shared,
                importedAt: mtime)
        }.sorted { ($0.key.description, $0.importedAt) < ($1.key.description, $1.importedAt) }
    }
}

/// MS-DOS time and date of an instant, in UTC (ZIP has no time zone; UTC keeps plans reproducible).
func dosTimestamp(_ date: Date) -> (UInt16, UInt16) {
    var t = time_t(date.timeIntervalSince1970)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    return ZipPlanner.dosTimestamp(
        year: Int(tmv.tm_year) + 1900, month: Int(tmv.tm_mon) + 1, day: Int(tmv.tm_mday), hour: Int(tmv.tm_hour),
        minute: Int(tmv.tm_min), second: Int(tmv.tm_sec))
}
