import Foundation
import SeedCore

/// One file of a package: where its bytes live (blob) and the ZIP fields needed to serve it.
public struct ManifestMember: Sendable, Equatable {
    public var path: String
    /// SHA-256 (hex) of the uncompressed content; the blob file holds the wire bytes.
    public var blob: String
    /// 0 stored, 8 deflate: how the blob's bytes are encoded.
    public var method: UInt16
    public var crc32: UInt32
    /// Size of the blob file (the bytes sent inside the ZIP).
    public var compressedSize: UInt64
    /// Size of the content.
    public var size: UInt64
    public var dosTime: UInt16
    public var dosDate: UInt16
    public var externalAttributes: UInt32
    public var versionMadeBy: UInt16

    public init(
        path: String, blob: String, method: UInt16, crc32: UInt32, compressedSize: UInt64, size: UInt64,
        dosTime: UInt16, dosDate: UInt16, externalAttributes: UInt32, versionMadeBy: UInt16
    ) {
        self.path = path
        self.blob = blob
        self.method = method
        self.crc32 = crc32
        self.compressedSize = compressedSize
        self.size = size
        self.dosTime = dosTime
        self.dosDate = dosDate
        self.externalAttributes = externalAttributes
        self.versionMadeBy = versionMadeBy
    }
}

/// Which package a manifest is a version of.
public struct PackageKey: Sendable, Hashable, CustomStringConvertible {
    public var product: String
    public var os: String
    public var arch: String
    public var variant: String

    public init(product: String, os: String, arch: String, variant: String) {
        self.product = product
        self.os = os
        self.arch = arch
        self.variant = variant
    }

    public var description: String { "\(product)/\(os)-\(arch)-\(variant)" }

    /// Each part becomes a path component, so only a safe alphabet is accepted.
    func validate() throws(StoreError) {
        for (label, v) in [("product", product), ("os", os), ("arch", arch), ("variant", variant)] {
            let ok =
                !v.isEmpty && v.utf8.count <= 64 && !v.hasPrefix(".")
                && v.utf8.allSatisfy { c in
                    (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || c == 95 || c == 46
                }
            if !ok { throw StoreError(.badName("\(label) (use letters, digits, '_' and '.')"), subject: v) }
        }
    }
}

/// A package version: its key, a label and its members in archive order.
/// Stored as canonical JSON named by its own SHA-256 (docs/design.md, "Manifest format").
public struct Manifest: Sendable, Equatable {
    public static let formatVersion = 1
    public var key: PackageKey { didSet { knownDigest = nil } }
    public var version: String { didSet { knownDigest = nil } }
    public var members: [ManifestMember] { didSet { knownDigest = nil } }
    /// Set when the manifest was read from or written to the store, so plans need not re-encode it.
    var knownDigest: String?

    public init(key: PackageKey, version: String, members: [ManifestMember]) {
        self.key = key
        self.version = version
        self.members = members
    }

    public static func == (a: Manifest, b: Manifest) -> Bool {
        a.key == b.key && a.version == b.version && a.members == b.members
    }

    /// Sorted keys, no whitespace, integers in decimal: one text per manifest.
    public func canonicalJSON() -> [UInt8] {
        func str(_ s: String) -> String { "\"" + jsonEscaped(s) + "\"" }
        var s = "{\"arch\":\(str(key.arch)),\"format\":\(Manifest.formatVersion),\"members\":["
        for (i, m) in members.enumerated() {
            if i > 0 { s += "," }
            s +=
                "{\"attributes\":\(m.externalAttributes),\"blob\":\(str(m.blob)),\"compressedSize\":\(m.compressedSize)"
            s += ",\"crc32\":\(m.crc32),\"dosDate\":\(m.dosDate),\"dosTime\":\(m.dosTime),\"madeBy\":\(m.versionMadeBy)"
            s += ",\"method\":\(m.method),\"path\":\(str(m.path)),\"size\":\(m.size)}"
        }
        s += "],\"os\":\(str(key.os)),\"product\":\(str(key.product)),\"variant\":\(str(key.variant))"
        s += ",\"version\":\(str(version))}"
        return Array(s.utf8)
    }

    /// SHA-256 hex of the canonical JSON: the manifest's name.
    public var digest: String { knownDigest ?? SHA256Hasher.hex(canonicalJSON()) }

    /// Parses manifest JSON and insists it is canonical (re-encoding gives the same bytes).
    public static func parse(_ bytes: [UInt8], name: String) throws(StoreError) -> Manifest {
        func bad(_ why: String) -> StoreError { StoreError(.badManifest(why), subject: name) }
        guard let any = try? JSONSerialization.jsonObject(with: Data(bytes)), let o = any as? [String: Any] else {
            throw bad("not a JSON object")
        }
        func s(_ d: [String: Any], _ k: String) throws(StoreError) -> String {
            guard let v = d[k] as? String else { throw bad("missing string \(k)") }
            return v
        }
        func n(_ d: [String: Any], _ k: String, max: UInt64) throws(StoreError) -> UInt64 {
            guard let v = d[k] as? NSNumber, let u = UInt64(exactly: v.doubleValue), u <= max else {
                throw bad("missing or out-of-range number \(k)")
            }
            return u
        }
        guard (o["format"] as? NSNumber)?.intValue == formatVersion else { throw bad("unknown format") }
        guard let ms = o["members"] as? [[String: Any]] else { throw bad("missing members") }
        var members: [ManifestMember] = []
        for m in ms {
            let blob = try s(m, "blob")
            guard isHexDigest(blob) else { throw bad("blob \(blob) is not a SHA-256 hex digest") }
            members.append(
                ManifestMember(
                    path: try s(m, "path"), blob: blob, method: UInt16(try n(m, "method", max: 8)),
                    crc32: UInt32(try n(m, "crc32", max: 0xFFFF_FFFF)),
                    compressedSize: try n(m, "compressedSize", max: 1 << 52), size: try n(m, "size", max: 1 << 52),
                    dosTime: UInt16(try n(m, "dosTime", max: 0xFFFF)),
                    dosDate: UInt16(try n(m, "dosDate", max: 0xFFFF)),
                    externalAttributes: UInt32(try n(m, "attributes", max: 0xFFFF_FFFF)),
                    versionMadeBy: UInt16(try n(m, "madeBy", max: 0xFFFF))))
        }
        let key = PackageKey(
            product: try s(o, "product"), os: try s(o, "os"), arch: try s(o, "arch"), variant: try s(o, "variant"))
        try key.validate()
        var m = Manifest(key: key, version: try s(o, "version"), members: members)
        guard m.canonicalJSON() == bytes else { throw bad("not in canonical form") }
        m.knownDigest = SHA256Hasher.hex(bytes)
        return m
    }
}
