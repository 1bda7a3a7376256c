import Foundation
import SeedHTTP
import SeedHTTPServer
import SeedLedger
import SeedLicensing
import SeedStore
import SeedTestSupport
import SeedZip
import Testing

@testable import SeedServer

/// The license-only route's answer on the loop (a dedup hit with the real desk) and the single-member ZIP
/// table.
@Suite struct RoutesImmediateTests {
    @Test func dedupHitIsAnsweredOnTheLoopWithTheSameBytesAndAnAuditEvent() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let rig = try RoutesUnitDeskTests.Rig(dir: dir, upstream: FakeUpstream())
            let ask = { licenseOnlyRequest(body: "hostnames=WS01&type=server", accept: "application/octet-stream") }
            // A new host needs upstream: deferred.
            guard case .deferred = rig.router.handle(ask(), context: ctx()) else {
                Issue.record("a new host was answered without the desk's async path")
                return
            }
            // That deferred work was not run; run the request through to issue the license.
            let (first, firstBytes) = try await rig.send(ask())
            #expect(first.status == 200)
            // Now a dedup hit: answered at once, same bytes and headers, and recorded as `reused`.
            guard case .response(let hit) = rig.router.handle(ask(), context: ctx()) else {
                Issue.record("a dedup hit went through the async path")
                return
            }
            #expect(hit.status == 200 && hit.headers["Content-Type"] == "application/octet-stream")
            #expect(hit.headers["Content-Disposition"] == first.headers["Content-Disposition"])
            #expect(try await collectBody(hit.body) == firstBytes)
            #expect(rig.events.kinds.last == .reused)
            #expect(rig.upstream.licenseCalls == ["ws01"])
            // The ZIP form of the same hit, also on the loop.
            guard case .response(let zip) = rig.router.handle(
                licenseOnlyRequest(body: "hostnames=WS01&type=server"), context: ctx())
            else {
                Issue.record("a dedup hit (ZIP) went through the async path")
                return
            }
            #expect(zip.headers["Content-Type"] == "application/zip")
            #expect(try await collectBody(zip.body) == licenseZip([("ws01.lic", firstBytes)]))
            #expect(rig.events.kinds.filter { $0 == .reused }.count == 2)
        }
    }

    @Test func zipTableNeverServesAnOldLicense() throws {
        let table = LicenseZipCache(capacity: 2)
        let a = Array("license A".utf8) + [UInt8](repeating: 1, count: 900)
        let b = Array("license B".utf8) + [UInt8](repeating: 2, count: 900)
        let za = try table.zip(("ws01.lic", a))
        #expect(za == (try licenseZip([("ws01.lic", a)])))
        #expect(try table.zip(("ws01.lic", a)) == za)
        // Renewed: different bytes under the same name give the new ZIP.
        let zb = try table.zip(("ws01.lic", b))
        #expect(zb == (try licenseZip([("ws01.lic", b)])) && zb != za)
        // Bounded.
        _ = try table.zip(("ws02.lic", a))
        _ = try table.zip(("ws03.lic", a))
        #expect(table.count <= 2)
        #expect(try table.zip(("ws01.lic", b)) == zb)
    }
}
