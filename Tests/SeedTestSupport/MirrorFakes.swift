import Foundation
import SeedHTTP
public import SeedHTTPServer
public import SeedLicensing
public import SeedServer
import Synchronization

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
    private let state = Mutex(State())
    public let temporaryDirectory: String
    public let licenseSize: Int
    private let now: @Sendable () -> Double

    public init(temporaryDirectory: String, licenseSize: Int = 900, now: @escaping @Sendable () -> Double = wallClockSeconds) {
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
        guard let data = FileManager.default.contents(atPath: zipPath) else { throw FakeError("cannot read \(zipPath)") }
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
    private let state = Mutex(State())
    public let packageBytes: [UInt8]
    public let packageBehaviour: PackageBehaviour
    public let licenseRefusal: Int?
    public let sendContentLength: Bool
    public let canIssueLicenseOnly: Bool

    public init(
        packageSize: Int = 64 * 1024, package: PackageBehaviour = .serve, licenseRefusal: Int? = nil,
        holdBodies: Bool = false, sendContentLength: Bool = true, licenseOnly: Bool = true
    ) {
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
        packageBytes + fakeLicense(hostKey: host.lowercased(), serial: 0)
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
    let offset = Mutex(0)

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
