import Foundation
import SeedHTTP
import SeedHTTPServer
import SeedStore
import SeedTestSupport
import SeedZip
import Testing

@testable import SeedServer

/// The routes over the real package store (temp folder) and a fake upstream sending real ZIPs.
@Suite struct RoutesUnitStoreTests {
    func members(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        let src = ZipBytes(bytes)
        let a = try ZipArchive(source: src)
        var out: [String: [UInt8]] = [:]
        for e in a.entries { out[e.name] = try a.contents(of: e, from: src) }
        return out
    }

    @Test func coldRelayIsImportedAndWarmAnswersAreAssembledWithTheHostsLicense() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let store = try PackageStore(root: dir + "/cache")
            let catalog = try StoreCatalog(store: store)
            let upstream = FakeUpstream(packageSize: 256 * 1024, zipBodies: true)
            let service = PackageService(
                catalog: catalog, upstream: upstream, settings: PackageServiceSettings(), logger: .discard)
            let router = MirrorRouter(
                MirrorRouterParts(
                    tokens: testTokens, account: "a", desk: InterimLicenseDesk(), packages: service, logger: .discard))
            let cold = await resolve(router.handle(cloudRequest(host: "WS01"), context: ctx()))
            let coldBytes = try await collectBody(cold.body)
            #expect(coldBytes == upstream.body(for: "WS01"))
            while (try? store.currentDigest(PackageKey(os: "windows", arch: "amd64"))) == nil { await Task.yield() }

            let warm = await resolve(router.handle(cloudRequest(host: "WS02"), context: ctx()))
            #expect(warm.status == 200 && warm.acceptsRanges)
            let etag = try #require(warm.headers["ETag"])
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""))
            let warmBytes = try await collectBody(warm.body)
            #expect(UInt64(warmBytes.count) == warm.body.length)
            let m = try members(warmBytes)
            #expect(m["thor/thor64.exe"] == Array(upstream.packageBytes[..<(128 * 1024)]))
            #expect(m["ws02.lic"]?.starts(with: Array("LIC:ws02:".utf8)) == true)
            #expect(m.keys.filter { $0.hasSuffix(".lic") }.count == 1)
            #expect(try unzipTest(warmBytes).status == 0)

            #expect(upstream.packageFetches.count == 1)
        }
    }
}
