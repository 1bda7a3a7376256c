import Foundation
import SeedHTTP
public import SeedHTTPServer
public import SeedLicensing
public import SeedServer
public import SeedStore
import SeedCore

/// A deterministic fake license: `size` bytes that start with the host key, so tests can tell whose it is.
public func fakeLicense(hostKey: String, serial: Int = 0, size: Int = 900) -> [UInt8] {
    var b = Array("LIC:\(hostKey):\(serial):".utf8)
    while b.count < size { b.append(UInt8(truncatingIfNeeded: b.count &* 31 &+ serial)) }
    return b
}

/// An in-memory package catalog for unit tests of the routes: "importing" an upstream body keeps its bytes
/// as the package, and treats its last `licenseSize` bytes as the `.lic` member (the fake upstream builds
/// bodies that way). The real SeedStore replaces it in integration tests.
public final class InMemoryCatalog: PackageCatalog {
    struct State {
        var packages: [PackageKey: (CachedPackage, [UInt8])] = [:]
        var imports = 0
        var version = 0
    }
    private let state = Lock(State())
    public let temporaryDirectory: String
    public let licenseSize: Int
    private let now: @Sendable () -> Double

    public init(
        temporaryDirectory: String, licenseSize: Int = 900, now: @escaping @Sendable () -> Double = wallClockSeconds
    ) {
        self.temporaryDirectory = temporaryDirectory
        self.licenseSize = licenseSize
        self.now = now
    }

    public var importCount: Int { state.withLock { $0.imports } }

    public func packageBytes(_ key: PackageKey) -> [UInt8]? { state.withLock { $0.packages[key]?.1 } }

    public func put(_ key: PackageKey, bytes: [UInt8], fetchedAt: Double) {
        state.withLock { s in
            s.version += 1
            s.packages[key] = (CachedPackage(versionID: "v\(s.version)", fetchedAt: fetchedAt), bytes)
        }
    }

    public func current(_ key: PackageKey) async throws -> CachedPackage? { state.withLock { $0.packages[key]?.0 } }

    public func plan(_ key: PackageKey, package: CachedPackage, extraMembers: [(name: String, bytes: [UInt8])])
        async throws -> PackagePlan
    {
        guard let (p, bytes) = state.withLock({ $0.packages[key] }), p == package else {
            throw FakeError("no such package version")
        }
        var segments: [BodySegment] = [.bytes(bytes)]
        for m in extraMembers { segments.append(.bytes(Array(m.name.utf8) + m.bytes)) }
        let length = segments.reduce(0) { $0 + $1.length }
        return PackagePlan(contentLength: length, etag: "\"\(p.versionID)-\(length)\"", segments: segments)
    }

    public func importUpstreamZip(at zipPath: String, key: PackageKey) async throws -> ImportedPackage {
        guard let data = FileManager.default.contents(atPath: zipPath) else {
            throw FakeError("cannot read \(zipPath)")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= licenseSize else { throw FakeError("body too short") }
        let pkg = Array(bytes.dropLast(licenseSize))
        let lic = Array(bytes.suffix(licenseSize))
        let t = now()
        let cached = state.withLock { s -> CachedPackage in
            s.imports += 1
            s.version += 1
            let c = CachedPackage(versionID: "v\(s.version)", fetchedAt: t)
            s.packages[key] = (c, pkg)
            return c
        }
        return ImportedPackage(package: cached, licenses: [("thor/license.lic", lic)])
    }
}

public struct FakeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A scripted upstream for unit tests: counts calls, can hold package bodies until released, fail
/// mid-body, or refuse with a status.
public final class FakeUpstream: MirrorUpstream {
    public enum PackageBehaviour: Sendable {
        case serve
        case refuse(Int)
        case notSent
        /// Sends this many bytes, then resets.
        case resetAfter(Int)
    }
    struct State {
        var packageFetches: [PackageFetch] = []
        var licenseCalls: [String] = []
        var licenseSerial = 0
        var gateOpen = true
        var gateWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Lock(State())
    public let packageBytes: [UInt8]
    public let packageBehaviour: PackageBehaviour
    public let licenseRefusal: Int?
    public let sendContentLength: Bool
    public let canIssueLicenseOnly: Bool
    /// Bodies are real ZIPs (program files plus `thor/HOST.lic`) instead of raw bytes, for the real store.
    public let zipBodies: Bool

    public init(
        packageSize: Int = 64 * 1024, package: PackageBehaviour = .serve, licenseRefusal: Int? = nil,
        holdBodies: Bool = false, sendContentLength: Bool = true, licenseOnly: Bool = true, zipBodies: Bool = false
    ) {
        self.zipBodies = zipBodies
        canIssueLicenseOnly = licenseOnly
        var b = [UInt8](repeating: 0, count: packageSize)
        for i in 0..<packageSize { b[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        packageBytes = b
        packageBehaviour = package
        self.licenseRefusal = licenseRefusal
        self.sendContentLength = sendContentLength
        state.withLock { $0.gateOpen = !holdBodies }
    }

    public var packageFetches: [PackageFetch] { state.withLock { $0.packageFetches } }
    public var licenseCalls: [String] { state.withLock { $0.licenseCalls } }

    /// Lets held package bodies flow.
    public func release() {
        let ws = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.gateOpen = true
            defer { s.gateWaiters = [] }
            return s.gateWaiters
        }
        for w in ws { w.resume() }
    }

    func waitGate() async {
        await withCheckedContinuation { c in
            let open = state.withLock { s -> Bool in
                if s.gateOpen { return true }
                s.gateWaiters.append(c)
                return false
            }
            if open { c.resume() }
        }
    }

    /// The full body upstream sends for `host`: the package, then that host's license.
    public func body(for host: String) -> [UInt8] {
        let lic = fakeLicense(hostKey: host.lowercased(), serial: 0)
        guard zipBodies else { return packageBytes + lic }
        let half = packageBytes.count / 2
        return testZip([
            ("thor/thor64.exe", Array(packageBytes[..<half])),
            ("thor/signatures/rules.yar", Array(repeating: UInt8(ascii: "a"), count: 4096)),
            ("thor/config/thor.yml", Array(packageBytes[half...])),
            ("thor/\(host.lowercased()).lic", lic),
        ])
    }

    public func fetchPackage(_ fetch: PackageFetch) async throws(IssueError) -> any UpstreamBody {
        state.withLock { $0.packageFetches.append(fetch) }
        switch packageBehaviour {
        case .refuse(let s): throw IssueError(.rejected(status: s), "upstream answered \(s)")
        case .notSent: throw IssueError(.notSent, "connection refused")
        case .serve, .resetAfter: break
        }
        let bytes = body(for: fetch.host)
        var cut: Int? = nil
        if case .resetAfter(let n) = packageBehaviour { cut = n }
        return FakeBody(
            bytes: bytes, cutAfter: cut, contentLength: sendContentLength ? UInt64(bytes.count) : nil, upstream: self)
    }

    public func issueLicense(hostKey: String, type: LicenseType, comment: String?) async throws(IssueError)
        -> IssuedLicense
    {
        let serial = state.withLock { s -> Int in
            s.licenseCalls.append(hostKey)
            s.licenseSerial += 1
            return s.licenseSerial
        }
        if let r = licenseRefusal { throw IssueError(.rejected(status: r), "portal answered \(r)") }
        return IssuedLicense(bytes: fakeLicense(hostKey: hostKey, serial: serial), source: .upstream)
    }
}

final class FakeBody: UpstreamBody {
    let bytes: [UInt8]
    let cutAfter: Int?
    let contentLength: UInt64?
    let upstream: FakeUpstream
    let offset = Lock(0)

    init(bytes: [UInt8], cutAfter: Int?, contentLength: UInt64?, upstream: FakeUpstream) {
        self.bytes = bytes
        self.cutAfter = cutAfter
        self.contentLength = contentLength
        self.upstream = upstream
    }

    func read(maxBytes: Int) async throws(IssueError) -> [UInt8]? {
        let start = offset.withLock { $0 }
        // The first chunk flows at once (the head and first bytes); the rest waits for the gate.
        if start > 0 { await upstream.waitGate() }
        let limit = cutAfter ?? bytes.count
        if start >= limit {
            if cutAfter != nil { throw IssueError(.outcomeUnknown, "connection reset by upstream") }
            return nil
        }
        let end = min(limit, start + min(maxBytes, 16 * 1024))
        offset.withLock { $0 = end }
        return Array(bytes[start..<end])
    }

    func cancel() {}
}

/// Reads a whole response body the way the server would: bytes, file ranges, and streams pulled to the end.
/// A stream that fails throws, like a cut connection.
public func collectBody(_ body: ResponseBody) async throws -> [UInt8] {
    var out: [UInt8] = []
    for seg in body.segments {
        switch seg {
        case .bytes(let b): out += b
        case .file(let f, let off, let len):
            var buf = [UInt8](repeating: 0, count: Int(len))
            var got = 0
            while got < Int(len) {
                let n = try buf.withUnsafeMutableBytes { p in
                    try f.read(into: UnsafeMutableRawBufferPointer(rebasing: p[got...]), at: off + UInt64(got))
                }
                if n == 0 { break }
                got += n
            }
            out += buf.prefix(got)
        case .stream(let s, let len):
            var got: UInt64 = 0
            while true {
                let chunk = await withCheckedContinuation { (c: CheckedContinuation<BodyChunk, Never>) in
                    s.pull(maxBytes: 64 * 1024) { c.resume(returning: $0) }
                }
                switch chunk {
                case .data(let d):
                    out += d
                    got += UInt64(d.count)
                case .end:
                    guard got == len else { throw FakeError("stream ended after \(got) of \(len) bytes") }
                    break
                case .failed(let why): throw FakeError("stream failed: \(why)")
                }
                if case .end = chunk { break }
            }
        }
    }
    return out
}

/// Runs a handler result to its response.
public func resolve(_ result: HandlerResult) async -> Response {
    switch result {
    case .response(let r): return r
    case .deferred(let work): return await work()
    }
}

/// A minimal stored-members ZIP (what the fake upstream sends when `zipBodies` is on).
public func testZip(_ members: [(name: String, bytes: [UInt8])]) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    func le16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    func le32(_ v: UInt32, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
    for m in members {
        let name = Array(m.name.utf8)
        var c: UInt32 = 0xFFFF_FFFF
        for b in m.bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        let crc = c ^ 0xFFFF_FFFF
        let offset = UInt32(out.count)
        le32(0x0403_4b50, &out)
        le16(20, &out)
        le16(0, &out)
        le16(0, &out)
        le16(0, &out)
        le16(0x21, &out)
        le32(crc, &out)
        le32(UInt32(m.bytes.count), &out)
        le32(UInt32(m.bytes.count), &out)
        le16(name.count, &out)
        le16(0, &out)
        out += name + m.bytes
        le32(0x0201_4b50, &central)
        le16(20, &central)
        le16(20, &central)
        le16(0, &central)
        le16(0, &central)
        le16(0, &central)
        le16(0x21, &central)
        le32(crc, &central)
        le32(UInt32(m.bytes.count), &central)
        le32(UInt32(m.bytes.count), &central)
        le16(name.count, &central)
        le16(0, &central)
        le16(0, &central)
        le16(0, &central)
        le16(0, &central)
        le32(0, &central)
        le32(offset, &central)
        central += name
    }
    let cdOffset = UInt32(out.count)
    out += central
    le32(0x0605_4b50, &out)
    le16(0, &out)
    le16(0, &out)
    le16(members.count, &out)
    le16(members.count, &out)
    le32(UInt32(central.count), &out)
    le32(cdOffset, &out)
    le16(0, &out)
    return out
}
