import Foundation
import SeedHTTP
import SeedHTTPServer
import SeedLedger
import SeedLicensing
import SeedStore
import SeedTestSupport
import SeedCore
import Testing

@testable import SeedServer

/// Keeps every decision event, for assertions.
final class EventLog: DecisionSink {
    let events = Lock([DecisionEvent]())
    func record(_ event: DecisionEvent) { events.withLock { $0.append(event) } }
    var kinds: [DecisionEvent.Kind] { events.withLock { $0.map(\.kind) } }
}

/// The routes with the real LicenseDesk (ledger in a temp folder) and the real store, against a fake
/// upstream that holds its bodies until released: the issuer contract between routes and desk.
@Suite struct RoutesUnitDeskTests {
    struct Rig {
        let router: MirrorRouter
        let upstream: FakeUpstream
        let service: PackageService
        let store: PackageStore
        let events: EventLog

        init(dir: String, upstream: FakeUpstream) throws {
            store = try PackageStore(root: dir + "/cache")
            service = PackageService(
                catalog: try StoreCatalog(store: store), upstream: upstream, settings: PackageServiceSettings(),
                logger: .discard)
            events = EventLog()
            let ledger = try Ledger.open(path: dir + "/cache/ledger.sqlite")
            var config = DeskConfiguration()
            config.rateLimits = .unlimited
            let desk = try LicenseDesk(configuration: config, ledger: ledger, clock: SystemDeskClock(), sink: events)
            self.upstream = upstream
            router = MirrorRouter(
                MirrorRouterParts(
                    tokens: testTokens, account: "contract", desk: desk, packages: service, decisions: events,
                    logger: .discard))
        }

        func send(_ r: HTTPRequest) async throws -> (Response, [UInt8]) {
            let resp = await resolve(router.handle(r, context: ctx()))
            return (resp, try await collectBody(resp.body))
        }
    }

    @Test func concurrentRequestsForOneHostCostOneUpstreamCall() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let rig = try Rig(dir: dir, upstream: FakeUpstream(holdBodies: true, zipBodies: true))
            let n = 40
            try await withThrowingTaskGroup(of: Int.self) { g in
                for _ in 0..<n { g.addTask { try await rig.send(cloudRequest(host: "SAME")).0.status } }
                while rig.upstream.packageFetches.isEmpty { await Task.yield() }
                rig.upstream.release()
                for try await s in g { #expect(s == 200) }
            }
            #expect(rig.upstream.packageFetches.count == 1)
            #expect(rig.upstream.licenseCalls.isEmpty)
        }
    }

    @Test func reusedLicenseGivesAByteIdenticalAnswerWithTheSameETag() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let rig = try Rig(dir: dir, upstream: FakeUpstream(zipBodies: true))
            _ = try await rig.send(cloudRequest(host: "first"))
            while (try? rig.store.currentDigest(PackageKey(os: "windows", arch: "amd64"))) == nil { await Task.yield() }
            let (a, aBytes) = try await rig.send(cloudRequest(host: "ws7"))
            let (b, bBytes) = try await rig.send(cloudRequest(host: "WS7.corp.example"))
            #expect(a.status == 200 && b.status == 200)
            #expect(a.headers["ETag"] != nil && a.headers["ETag"] == b.headers["ETag"])
            #expect(aBytes == bBytes)
            #expect(b.headers["X-SeedMirror-License"] == "reused")
            #expect(rig.upstream.licenseCalls == ["ws7"])
        }
    }

    @Test func upstreamRejectionsAreRefusedWithTheirCause() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let token = try Rig(dir: dir + "/a", upstream: FakeUpstream(package: .refuse(401), zipBodies: true))
            let (r, body) = try await token.send(cloudRequest(host: "x1"))
            #expect(r.status == 502)
            #expect(String(decoding: body, as: UTF8.self).contains("(401)"))
            let quota = try Rig(dir: dir + "/b", upstream: FakeUpstream(package: .refuse(409), zipBodies: true))
            #expect(try await quota.send(cloudRequest(host: "x2")).0.status == 409)
            #expect(quota.events.kinds.contains(.quotaExhausted))
        }
    }
}
