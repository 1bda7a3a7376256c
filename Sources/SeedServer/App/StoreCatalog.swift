import Foundation
import SeedHTTPServer
import SeedStore
import SeedCore

/// The package store behind the routes' `PackageCatalog`. Store calls block on disk, so each runs on a
/// thread of its own. The store keeps no "last confirmed from upstream" time, so this adapter keeps it
/// in memory (seeded from the current version's import time at start).
final class StoreCatalog: PackageCatalog {
    let store: PackageStore
    let temporaryDirectory: String
    private let confirmed = Lock([PackageKey: Double]())
    private let now: @Sendable () -> Double
    /// License members carry this fixed time, so one host's answer has the same bytes and ETag every
    /// time (a resumed download with `If-Range` must match).
    static let licenseTime = Date(timeIntervalSince1970: 1_577_836_800)  // 2020-01-01T00:00:00Z

    init(store: PackageStore, now: @escaping @Sendable () -> Double = wallClockSeconds) throws {
        self.store = store
        self.now = now
        temporaryDirectory = store.root + "/tmp"
        try FileManager.default.createDirectory(atPath: temporaryDirectory, withIntermediateDirectories: true)
        var times: [PackageKey: Double] = [:]
        for v in (try? store.packages()) ?? [] where v.isCurrent {
            times[v.key] = v.importedAt.timeIntervalSince1970
        }
        confirmed.withLock { $0 = times }
    }

    func current(_ key: PackageKey) async throws -> CachedPackage? {
        let store = self.store
        guard let digest = try await onBlockingThread(throwing: { try store.currentDigest(key) }) else { return nil }
        let t = confirmed.withLock { $0[key] } ?? 0
        return CachedPackage(versionID: digest, fetchedAt: t)
    }

    func plan(_ key: PackageKey, package: CachedPackage, extraMembers: [(name: String, bytes: [UInt8])])
        async throws -> PackagePlan
    {
        let store = self.store
        let extras = extraMembers.map { ExtraMember(name: $0.name, bytes: $0.bytes) }
        let plan = try await onBlockingThread(throwing: { () throws -> AssemblyPlan in
            let manifest = try store.manifest(digest: package.versionID)
            return try store.plan(
                manifest: manifest, extraMembers: extras.map { ($0.name, $0.bytes) }, modifiedTime: Self.licenseTime)
        })
        let segments: [BodySegment] = plan.segments.map { s in
            switch s {
            case .bytes(let b): .bytes(b)
            case .file(let f, let off, let len): .file(f, offset: off, length: len)
            }
        }
        return PackagePlan(contentLength: plan.contentLength, etag: plan.etag, segments: segments)
    }

    func importUpstreamZip(at zipPath: String, key: PackageKey) async throws -> ImportedPackage {
        let store = self.store
        let version = "upstream-" + iso8601Milliseconds(now())
        let r = try await onBlockingThread(throwing: {
            try store.importZip(
                path: zipPath, product: key.product, os: key.os, arch: key.arch, variant: key.variant,
                version: version)
        })
        let t = now()
        confirmed.withLock { $0[key] = t }
        return ImportedPackage(
            package: CachedPackage(versionID: r.manifestDigest, fetchedAt: t),
            licenses: r.licenses.map { ($0.name, $0.bytes) })
    }
}

private struct ExtraMember: Sendable {
    var name: String
    var bytes: [UInt8]
}
