public import SeedStore
import SeedZip

/// Configuration of the package store: the `store` object of the root (docs/design.md, "Package store").
/// Every key is optional; see the defaults below.
public struct StoreSection: Sendable {
    /// Overrides `paths.cacheDir` for the package store (blobs, manifests, current pointers, tmp,
    /// quarantine); absolute once read. nil: the store lives in `paths.cacheDir`.
    public var cacheDir: String?
    /// zlib level 1...9 for members that arrive stored and for license members added per host.
    public var deflateLevel: Int
    /// Import limits for untrusted package ZIPs.
    public var maxMembers: Int
    public var maxTotalBytes: UInt64
    public var maxCompressionRatio: Int
    public var ratioExemptBytes: UInt64
    public var maxLicenseBytes: UInt64
    /// When set, imports and `gc` evict the oldest non-current versions until blobs fit.
    public var sizeCapBytes: UInt64?

    /// Reads this section's keys from the root object; unknown keys are left for the root to reject.
    public init(root: ConfigObject, baseDir: String) throws(ConfigError) {
        let o = try root.object("store") ?? ConfigObject([:], path: "store")
        cacheDir = try o.string("cacheDir").map { resolvePath($0, base: baseDir) }
        if cacheDir == "" { throw ConfigError("config key store.cacheDir: must not be empty") }
        deflateLevel = try o.int("deflateLevel", default: 6, min: 1, max: 9)
        maxMembers = try o.int("maxMembers", default: 100_000, min: 1, max: 10_000_000)
        maxTotalBytes = UInt64(try o.int("maxTotalBytes", default: 16 << 30, min: 1))
        maxCompressionRatio = try o.int("maxCompressionRatio", default: 200, min: 2, max: 100_000)
        ratioExemptBytes = UInt64(try o.int("ratioExemptBytes", default: 1 << 20, min: 0))
        maxLicenseBytes = UInt64(try o.int("maxLicenseBytes", default: 1 << 20, min: 1, max: 64 << 20))
        let cap = try o.int("sizeCapBytes", default: 0, min: 0)
        sizeCapBytes = cap == 0 ? nil : UInt64(cap)
        try o.finish()
    }

    /// Where the package store lives, given the `paths` section.
    public func root(paths: PathsSection) -> String { cacheDir ?? paths.cacheDir }

    /// The store's own options struct.
    public var options: StoreOptions {
        StoreOptions(
            deflateLevel: Int32(deflateLevel),
            zipLimits: ZipLimits(
                maxMembers: maxMembers, maxTotalUncompressedBytes: maxTotalBytes,
                maxCompressionRatio: UInt64(maxCompressionRatio), ratioExemptBytes: ratioExemptBytes),
            maxLicenseBytes: maxLicenseBytes, sizeCapBytes: sizeCapBytes)
    }
}
