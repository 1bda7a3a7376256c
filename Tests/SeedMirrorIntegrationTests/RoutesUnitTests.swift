import Foundation
import SeedCore
import SeedHTTP
import SeedHTTPServer
import SeedLicensing
import SeedPosix
import SeedStore
import SeedTestSupport
import Testing

@testable import SeedServer

// Pure and in-process tests of the routes: token checks, request normalization, error mapping, the
// license ZIP, and the cold path's single-flight against a fake upstream and an in-memory catalog.

let testTokens = ClientTokenTable([
    ClientToken(name: "deploy", secret: "s3cret-deploy"),
    ClientToken(name: "helpdesk", secret: "s3cret-help"),
    ClientToken(name: "old", secret: "s3cret-old", revoked: true),
])

func ctx(_ addr: String = "10.0.0.5") -> RequestContext {
    RequestContext(
        clientAddress: addr, clientPort: 50000, localPort: 8443, tlsVersion: "TLSv1.3", tlsCipher: "x", requestID: 1)
}

func cloudRequest(
    host: String? = "WS01", type: String? = "workstation", token: String? = "s3cret-deploy",
    extra: [(String, String)] = []
) -> HTTPRequest {
    var h = HTTPHeaders()
    h.add("X-OS", "windows")
    if let type { h.add("X-Type", type) }
    h.add("X-Arch", "amd64")
    if let token {
        h.add("X-Token", token)
        h.add("Authorization", token)
    }
    if let host { h.add("X-Hostname", host) }
    for (n, v) in extra { h.add(n, v) }
    return HTTPRequest(method: "GET", target: "/api/public/thor10", headers: h)
}

func licenseOnlyRequest(body: String, token: String? = "s3cret-deploy", accept: String? = nil) -> HTTPRequest {
    var h = HTTPHeaders()
    h.add("Content-Type", "application/x-www-form-urlencoded")
    if let accept { h.add("Accept", accept) }
    let target = token.map { "/api/v0/licensing/issue?token=\($0)" } ?? "/api/v0/licensing/issue"
    return HTTPRequest(method: "POST", target: target, headers: h, body: Array(body.utf8))
}

/// A desk that records what reached it, to prove refusals happen before the desk.
final class RecordingDesk: LicenseDeciding {
    let inner = AlwaysIssueDesk()
    let seen = Lock([LicenseRequest]())
    func decide(_ request: LicenseRequest, issuer: any LicenseIssuer) async -> LicenseOutcome {
        seen.withLock { $0.append(request) }
        return await inner.decide(request, issuer: issuer)
    }
}

struct Harness {
    let router: MirrorRouter
    let upstream: FakeUpstream
    let catalog: InMemoryCatalog
    let service: PackageService
    let desk: RecordingDesk

    init(
        upstream: FakeUpstream = FakeUpstream(), dir: String, readiness: Readiness = Readiness(ready: true),
        now: @escaping @Sendable () -> Double = wallClockSeconds
    ) {
        self.upstream = upstream
        catalog = InMemoryCatalog(temporaryDirectory: dir, now: now)
        service = PackageService(
            catalog: catalog, upstream: upstream, settings: rawBytesSettings, logger: .discard, now: now)
        desk = RecordingDesk()
        router = MirrorRouter(
            MirrorRouterParts(
                tokens: testTokens, account: "contract-1", desk: desk, packages: service,
                readiness: { readiness }, logger: .discard))
    }

    func send(_ r: HTTPRequest) async -> Response { await resolve(router.handle(r, context: ctx())) }
}

func text(_ r: Response) async throws -> String { String(decoding: try await collectBody(r.body), as: UTF8.self) }

// MARK: - Tokens

@Suite struct RoutesUnitTokenTests {
    @Test func tokenIsFoundInEveryPlaceSeedsPutIt() {
        var h = HTTPHeaders()
        h.add("X-Token", "s3cret-deploy")
        #expect(testTokens.check(headers: h, queryToken: nil) == .accepted(name: "deploy"))
        h = HTTPHeaders()
        h.add("Authorization", "s3cret-help")
        #expect(testTokens.check(headers: h, queryToken: nil) == .accepted(name: "helpdesk"))
        h = HTTPHeaders()
        h.add("Authorization", "Bearer s3cret-help")
        #expect(testTokens.check(headers: h, queryToken: nil) == .accepted(name: "helpdesk"))
        #expect(testTokens.check(headers: HTTPHeaders(), queryToken: "s3cret-deploy") == .accepted(name: "deploy"))
    }

    @Test func missingUnknownRevokedAndConflictingTokens() {
        #expect(testTokens.check(headers: HTTPHeaders(), queryToken: nil) == .missing)
        #expect(testTokens.check(headers: HTTPHeaders(), queryToken: "") == .missing)
        #expect(testTokens.check("s3cret-deplo") == .unknown)
        #expect(testTokens.check("s3cret-deploy ") == .unknown)
        #expect(testTokens.check("") == .unknown)
        #expect(testTokens.check("s3cret-old") == .revoked(name: "old"))
        var h = HTTPHeaders()
        h.add("X-Token", "s3cret-deploy")
        h.add("Authorization", "s3cret-help")
        #expect(testTokens.check(headers: h, queryToken: nil) == .conflicting)
        #expect(ClientTokenTable([]).check("anything") == .unknown)
    }
}

// MARK: - Normalization

@Suite struct RoutesUnitParseTests {
    @Test func cloudHeadersBecomeOneCall() throws {
        let call = try parseSeedCall(
            cloudRequest(extra: [("X-Comment", "scan after incident")]), route: .cloud)
        #expect(call.hosts == ["WS01"])
        #expect(call.type == .workstation)
        #expect(call.os == "windows" && call.arch == "amd64")
        #expect(call.comment == "scan after incident")
        let lr = call.licenseRequest(host: "WS01", account: "c1", clientAddress: "10.1.1.1", tokenName: "deploy")
        #expect(
            lr.route == .cloud && lr.account == "c1" && lr.clientTokenName == "deploy" && lr.clientAddress == "10.1.1.1"
        )
    }

    @Test func asgardQueriesUseClientForWorkstation() throws {
        let v1 = HTTPRequest(
            method: "GET",
            target:
                "/api/v1/downloads/thor?os=windows&type=client&scanner=thor10%40latest&signatures=signatures&hostname=PC-7&token=abc"
        )
        let c1 = try parseSeedCall(v1, route: .asgardV1)
        #expect(c1.type == .workstation && c1.hosts == ["PC-7"] && c1.queryToken == "abc" && c1.os == "windows")
        let v0 = HTTPRequest(
            method: "GET",
            target: "/api/v0/downloads/thor/thor10-win?hostname=srv01&type=server&iocs=%5B%22default%22%5D")
        let c0 = try parseSeedCall(v0, route: .asgardV0)
        #expect(c0.type == .server && c0.hosts == ["srv01"] && c0.os == "windows" && c0.arch == "amd64")
        #expect(MirrorEndpoint.match(path: "/api/v0/downloads/thor/thor10-win") == .seed(.asgardV0))
    }

    @Test func badParametersAre400WithTheCause() {
        #expect(throws: RouteError(400, "header X-Hostname is missing")) {
            try parseSeedCall(cloudRequest(host: nil), route: .cloud)
        }
        #expect(throws: RouteError(400, "header X-Type must be workstation or server")) {
            try parseSeedCall(cloudRequest(type: "laptop"), route: .cloud)
        }
        #expect(
            throws: RouteError(
                400,
                "header X-Hostname is not a valid host name: it contains the character ';'; only letters, digits, '-', '_' and '.' are allowed"
            )
        ) {
            try parseSeedCall(cloudRequest(host: "ws01;rm"), route: .cloud)
        }
        #expect(throws: RouteError(400, "query parameter type is missing (client or server)")) {
            try parseSeedCall(HTTPRequest(method: "GET", target: "/api/v1/downloads/thor?hostname=a"), route: .asgardV1)
        }
        #expect(throws: RouteError.self) {
            try parseSeedCall(
                HTTPRequest(method: "GET", target: "/api/v1/downloads/thor?hostname=%zz&type=server"), route: .asgardV1)
        }
    }

    @Test func licenseFormTakesRepeatedAndCommaSeparatedHosts() throws {
        let a = try parseSeedCall(
            licenseOnlyRequest(body: "hostnames=ws01&hostnames=ws02&type=workstation"), route: .licenseOnly)
        #expect(a.hosts == ["ws01", "ws02"] && a.type == .workstation && !a.wantsBareLicense)
        let b = try parseSeedCall(
            licenseOnlyRequest(body: "hostnames=ws01%2Cws02,WS01,&type=server"), route: .licenseOnly)
        #expect(b.hosts == ["ws01", "ws02"] && b.type == .server)
        let c = try parseSeedCall(
            licenseOnlyRequest(body: "hostnames=ws01&type=server", accept: "application/octet-stream"),
            route: .licenseOnly)
        #expect(c.wantsBareLicense)
        let d = try parseSeedCall(
            licenseOnlyRequest(body: "hostnames=ws01,ws02&type=server", accept: "application/octet-stream"),
            route: .licenseOnly)
        #expect(!d.wantsBareLicense)
        #expect(throws: RouteError(400, "form field hostnames is missing or empty")) {
            try parseSeedCall(licenseOnlyRequest(body: "type=server"), route: .licenseOnly)
        }
    }
}

// MARK: - Error mapping and the always-issue test desk

@Suite struct RoutesUnitErrorTests {
    @Test func upstreamErrorsMapToWhatTheSeedShouldSee() {
        #expect(seedFacingRefusal(for: IssueError(.rejected(status: 401), "x")).status == 502)
        #expect(
            seedFacingRefusal(for: IssueError(.rejected(status: 403), "x")).reason
                == "upstream rejected the mirror's token")
        #expect(seedFacingRefusal(for: IssueError(.rejected(status: 409), "x")).status == 409)
        #expect(seedFacingRefusal(for: IssueError(.rejected(status: 429), "x")).status == 429)
        #expect(seedFacingRefusal(for: IssueError(.rejected(status: 500), "x")).status == 502)
        #expect(seedFacingRefusal(for: IssueError(.notSent, "refused")).status == 502)
        #expect(seedFacingRefusal(for: IssueError(.outcomeUnknown, "reset")).status == 504)
    }

    @Test func licenseBodiesThatAreErrorsAreRejected() {
        #expect(
            throws: IssueError(
                .rejected(status: 401), "upstream answered with an error instead of a license: Error: HTTP-401")
        ) {
            try validatedLicenseBody(Array("Error: HTTP-401\r\n".utf8))
        }
        #expect(throws: IssueError.self) { try validatedLicenseBody([UInt8](repeating: 1, count: 799)) }
        #expect((try? validatedLicenseBody([UInt8](repeating: 1, count: 800)))?.count == 800)
    }

    @Test func licenseZipHasKnownCRCAndLayout() throws {
        let z = try licenseZip([("a.lic", [1, 2, 3])])
        #expect(Array(z[14..<18]) == [0x1d, 0x80, 0xbc, 0x55])  // CRC-32 of 01 02 03, little-endian
        #expect(Array(z.prefix(4)) == [0x50, 0x4b, 0x03, 0x04])
        #expect(Array(z.suffix(22).prefix(4)) == [0x50, 0x4b, 0x05, 0x06])
        #expect(z.count == 30 + 5 + 3 + 46 + 5 + 22)
    }
}

// MARK: - Router

@Suite struct RoutesUnitRouterTests {
    @Test func unknownPathsAndWrongMethods() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(dir: dir)
            let r404 = await h.send(HTTPRequest(method: "GET", target: "/api/public/thor11"))
            #expect(r404.status == 404)
            let r405 = await h.send(HTTPRequest(method: "POST", target: "/api/public/thor10"))
            #expect(r405.status == 405 && r405.headers["Allow"] == "GET, HEAD")
            let r405b = await h.send(HTTPRequest(method: "GET", target: "/api/v0/licensing/issue"))
            #expect(r405b.status == 405 && r405b.headers["Allow"] == "POST")
            let health = await h.send(HTTPRequest(method: "GET", target: "/healthz"))
            #expect(health.status == 200)
            #expect(try await text(health) == "ok\n")
        }
    }

    @Test func readyzReportsProblems() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let down = Harness(dir: dir, readiness: Readiness(ready: false, problems: ["ledger closed"]))
            let r = await down.send(HTTPRequest(method: "GET", target: "/readyz"))
            #expect(r.status == 503)
            #expect(try await text(r).contains("ledger closed"))
            let up = Harness(dir: dir)
            #expect(await up.send(HTTPRequest(method: "GET", target: "/readyz")).status == 200)
        }
    }

    @Test func tokenRefusalsNeverReachDeskOrUpstream() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(dir: dir)
            #expect(await h.send(cloudRequest(token: nil)).status == 400)
            #expect(await h.send(cloudRequest(token: "wrong")).status == 403)
            #expect(await h.send(cloudRequest(token: "s3cret-old")).status == 403)
            let asgard = HTTPRequest(method: "GET", target: "/api/v1/downloads/thor?type=server&hostname=a")
            let r401 = await h.send(asgard)
            #expect(r401.status == 401 && r401.headers["WWW-Authenticate"] != nil)
            #expect(await h.send(licenseOnlyRequest(body: "hostnames=a&type=server", token: nil)).status == 401)
            #expect(await h.send(licenseOnlyRequest(body: "hostnames=a&type=server", token: "nope")).status == 403)
            #expect(h.desk.seen.withLock { $0.isEmpty })
            #expect(h.upstream.packageFetches.isEmpty && h.upstream.licenseCalls.isEmpty)
        }
    }

    @Test func coldDownloadRelaysUpstreamThenWarmOneComesFromTheCatalog() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(dir: dir)
            let cold = await h.send(cloudRequest())
            #expect(cold.status == 200)
            #expect(cold.headers["Content-Type"] == "application/zip")
            #expect(!cold.body.isSliceable)
            let coldBytes = try await collectBody(cold.body)
            #expect(coldBytes == h.upstream.body(for: "WS01"))
            // The import happens after the last byte was relayed; wait for the leader to finish.
            while h.catalog.importCount == 0 { await Task.yield() }
            let warm = await h.send(cloudRequest())
            #expect(warm.status == 200 && warm.acceptsRanges && warm.headers["ETag"] != nil)
            let warmBytes = try await collectBody(warm.body)
            #expect(warmBytes.starts(with: h.upstream.packageBytes))
            #expect(h.upstream.packageFetches.count == 1)
            // The always-issue test desk has no ledger: the warm request issued again, license-only.
            #expect(h.upstream.licenseCalls == ["ws01"])
            #expect(h.upstream.packageFetches[0].host == "WS01" && h.upstream.packageFetches[0].type == .workstation)
        }
    }

    @Test func licenseOnlyRouteAnswersZipOrBareLicense() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(dir: dir)
            let zip = await h.send(licenseOnlyRequest(body: "hostnames=WS01,ws02.corp&type=workstation"))
            #expect(zip.status == 200 && zip.headers["Content-Type"] == "application/zip")
            let z = try await collectBody(zip.body)
            #expect(Array(z.prefix(2)) == Array("PK".utf8))
            #expect(String(decoding: z, as: UTF8.self).contains("ws01.lic"))
            #expect(String(decoding: z, as: UTF8.self).contains("ws02.lic"))
            let bare = await h.send(
                licenseOnlyRequest(body: "hostnames=WS03&type=server", accept: "application/octet-stream"))
            #expect(bare.status == 200 && bare.headers["Content-Type"] == "application/octet-stream")
            let b = try await collectBody(bare.body)
            #expect(b.starts(with: Array("LIC:ws03:".utf8)) && b.count == 900)
            #expect(h.upstream.packageFetches.isEmpty)
            #expect(Set(h.upstream.licenseCalls) == ["ws01", "ws02", "ws03"])
        }
    }
}

// MARK: - Cold path single-flight

@Suite struct RoutesUnitColdPathTests {
    @Test func manyNewHostsOnEmptyMirrorCostOnePackageTransfer() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(upstream: FakeUpstream(holdBodies: true), dir: dir)
            let n = 30
            try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for i in 0..<n {
                    group.addTask {
                        let r = await h.send(cloudRequest(host: "host\(i)"))
                        return (r.status, try await collectBody(r.body))
                    }
                }
                // Release the upstream body only once every other request waits on the flight.
                while h.service.snapshot.flightWaits < n - 1 { await Task.yield() }
                h.upstream.release()
                var ok = 0
                for try await (status, body) in group where status == 200 {
                    #expect(body.starts(with: h.upstream.packageBytes))
                    ok += 1
                }
                #expect(ok == n)
            }
            #expect(h.upstream.packageFetches.count == 1)
            #expect(h.upstream.licenseCalls.count == n - 1)
            #expect(h.catalog.importCount == 1)
        }
    }

    @Test func resetMidBodyCutsTheLeaderFailsTheFollowerAndLeavesNothingCached() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let up = FakeUpstream(package: .resetAfter(40_000), holdBodies: true)
            let h = Harness(upstream: up, dir: dir)
            async let leader = h.send(cloudRequest(host: "ws01"))
            while h.upstream.packageFetches.isEmpty { await Task.yield() }
            async let follower = h.send(cloudRequest(host: "ws02"))
            while h.service.snapshot.flightWaits < 1 { await Task.yield() }
            h.upstream.release()
            let (l, f) = await (leader, follower)
            #expect(l.status == 200)  // the head went out before the reset; the body must fail
            await #expect(throws: FakeError.self) { try await collectBody(l.body) }
            #expect(f.status == 502)
            #expect(try await text(f).contains("package download this request waited for failed"))
            #expect(h.upstream.packageFetches.count == 1 && h.upstream.licenseCalls.isEmpty)
            #expect(h.catalog.importCount == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        }
    }

    @Test func upstreamRefusalsBeforeTheBodyMapToStatuses() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let quota = Harness(upstream: FakeUpstream(package: .refuse(409)), dir: dir)
            #expect(await quota.send(cloudRequest()).status == 409)
            let token = Harness(upstream: FakeUpstream(package: .refuse(403)), dir: dir)
            let r = await token.send(cloudRequest())
            #expect(r.status == 502)
            #expect(try await text(r).contains("upstream rejected the mirror's token"))
            let down = Harness(upstream: FakeUpstream(package: .notSent), dir: dir)
            #expect(await down.send(cloudRequest()).status == 502)
            #expect(quota.catalog.importCount == 0 && token.catalog.importCount == 0)
        }
    }

    @Test func withoutContentLengthTheLeaderGetsTheAssembledAnswer() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(upstream: FakeUpstream(sendContentLength: false), dir: dir)
            let r = await h.send(cloudRequest())
            #expect(r.status == 200 && r.body.isSliceable && r.headers["ETag"] != nil)
            let body = try await collectBody(r.body)
            #expect(body.starts(with: h.upstream.packageBytes))
            #expect(h.upstream.licenseCalls.isEmpty)
        }
    }

    @Test func stalePackageIsRefreshedOnce() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let clock = Lock(1_000_000.0)
            let h = Harness(dir: dir, now: { clock.withLock { $0 } })
            h.catalog.put(PackageKey(os: "windows", arch: "amd64"), bytes: [1, 2, 3], fetchedAt: 1_000_000)
            #expect(await h.send(cloudRequest(host: "a")).status == 200)
            #expect(h.upstream.packageFetches.isEmpty)
            clock.withLock { $0 += 2 * 24 * 3600 }
            let r = await h.send(cloudRequest(host: "b"))
            _ = try await collectBody(r.body)
            while h.catalog.importCount == 0 { await Task.yield() }
            #expect(h.upstream.packageFetches.count == 1)
        }
    }

    @Test func withoutALicenseOnlyRouteEachNewHostCostsAPackageDownload() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let h = Harness(upstream: FakeUpstream(licenseOnly: false), dir: dir)
            for host in ["a1", "a2", "a3"] {
                let r = await h.send(cloudRequest(host: host))
                #expect(r.status == 200)
                _ = try await collectBody(r.body)
            }
            let lo = await h.send(
                licenseOnlyRequest(body: "hostnames=a4&type=server", accept: "application/octet-stream"))
            #expect(lo.status == 200)
            #expect(try await collectBody(lo.body).starts(with: Array("LIC:a4:".utf8)))
            #expect(h.upstream.packageFetches.map(\.host) == ["a1", "a2", "a3", "a4"])
            #expect(h.upstream.licenseCalls.isEmpty)
        }
    }
}

@Suite struct RoutesUnitFlightTests {
    @Test func followersGetTheLeadersResultAndLateJoinersLeadAnew() async {
        let table = FlightTable<String, Int, IssueError>()
        guard case .lead(let f) = table.join("k") else {
            Issue.record("first join must lead")
            return
        }
        guard case .follow(let g) = table.join("k") else {
            Issue.record("second join must follow")
            return
        }
        #expect(f === g)
        async let a = g.wait(timeout: .seconds(60))
        while f.waiterCount < 1 { await Task.yield() }
        table.finish("k", f, .success(7))
        if case .finished(.success(let v)) = await a { #expect(v == 7) } else { Issue.record("expected 7") }
        if case .lead = table.join("k") {} else { Issue.record("after finish a new caller leads") }
    }

    @Test func aWaitThatTimesOutNeverBecomesALeader() async {
        let table = FlightTable<String, Int, IssueError>()
        guard case .lead(let f) = table.join("k") else { return }
        let r = await f.wait(timeout: .milliseconds(1))
        if case .timedOut = r {} else { Issue.record("expected a timeout") }
        if case .follow = table.join("k") {} else { Issue.record("the flight is still running") }
        table.finish("k", f, .failure(IssueError(.notSent, "x")))
        if case .finished(.failure) = await f.wait(timeout: .seconds(1)) {} else { Issue.record("finished result") }
    }
}

@Suite struct RoutesUnitRelayTests {
    func pull(_ r: RelayStream) async -> BodyChunk {
        await withCheckedContinuation { c in r.pull(maxBytes: 4) { c.resume(returning: $0) } }
    }

    @Test func relayWaitsForTheWriterAndEndsOnlyWhenComplete() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let w = try TempFileWriter(creatingIn: dir, prefix: "t")
            let relay = RelayStream(file: try SharedFile(openingForReading: w.path), length: 6)
            async let first = pull(relay)
            try w.write([1, 2, 3, 4, 5, 6])
            relay.advance(to: 6)
            guard case .data(let a) = await first else {
                Issue.record("expected data")
                return
            }
            #expect(a == [1, 2, 3, 4])
            guard case .data(let b) = await pull(relay) else {
                Issue.record("expected data")
                return
            }
            #expect(b == [5, 6])
            async let end = pull(relay)
            relay.complete()
            guard case .end = await end else {
                Issue.record("expected end")
                return
            }
            w.discard()
        }
    }

    @Test func relayFailureCutsAPendingPull() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let w = try TempFileWriter(creatingIn: dir, prefix: "t")
            let relay = RelayStream(file: try SharedFile(openingForReading: w.path), length: 100)
            try w.write([9, 9])
            relay.advance(to: 2)
            guard case .data = await pull(relay) else {
                Issue.record("expected data")
                return
            }
            async let cut = pull(relay)
            relay.fail("upstream reset")
            guard case .failed(let why) = await cut else {
                Issue.record("expected failure")
                return
            }
            #expect(why == "upstream reset")
            w.discard()
            #expect(!FileManager.default.fileExists(atPath: w.path))
        }
    }
}

@Suite struct RoutesUnitBulkTests {
    /// Refuses one named host, passes the rest to the always-issue test desk.
    struct PickyDesk: LicenseDeciding {
        let refuse: String
        func decide(_ request: LicenseRequest, issuer: any LicenseIssuer) async -> LicenseOutcome {
            if request.hostAsked.lowercased() == refuse {
                return .refused(status: 403, reason: "refused by policy rule deny: \(refuse)", retryAfterSeconds: nil)
            }
            return await AlwaysIssueDesk().decide(request, issuer: issuer)
        }
    }

    @Test func partlyRefusedBulkRequestsKeepTheGrantedLicenses() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let catalog = InMemoryCatalog(temporaryDirectory: dir)
            let service = PackageService(
                catalog: catalog, upstream: FakeUpstream(), settings: rawBytesSettings, logger: .discard)
            let router = MirrorRouter(
                MirrorRouterParts(
                    tokens: testTokens, account: "a", desk: PickyDesk(refuse: "sandbox"), packages: service,
                    logger: .discard))
            let r = await resolve(
                router.handle(licenseOnlyRequest(body: "hostnames=ws1,sandbox,ws2&type=workstation"), context: ctx()))
            #expect(r.status == 200 && r.headers["X-SeedMirror-Refused"] == "1")
            let text = String(decoding: try await collectBody(r.body), as: UTF8.self)
            #expect(text.contains("ws1.lic") && text.contains("ws2.lic") && !text.contains("sandbox"))
            let all = await resolve(
                router.handle(licenseOnlyRequest(body: "hostnames=sandbox&type=server"), context: ctx()))
            #expect(all.status == 403)
            #expect(String(decoding: try await collectBody(all.body), as: UTF8.self).contains("policy rule deny"))
        }
    }
}

/// The in-memory catalog's fake upstream bodies are raw bytes, not ZIPs: let them through.
let rawBytesSettings: PackageServiceSettings = {
    var s = PackageServiceSettings()
    s.requireZipSignature = false
    return s
}()
