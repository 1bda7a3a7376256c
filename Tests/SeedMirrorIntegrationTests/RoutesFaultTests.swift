import Foundation
import SeedCore
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

@Suite(.serialized) struct RoutesFaultTests {
    @Test func badClientTokenIs403AndNothingGoesUpstream() async throws {
        var o = MirrorTestOptions()
        o.extraClients = [ClientToken(name: "gone", secret: "revoked-token-0123456789", revoked: true)]
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            #expect(try await m.send(SeedCalls.cloud(port: m.port, host: "ws1", token: "not-a-token")).status == 403)
            #expect(
                try await m.send(SeedCalls.cloud(port: m.port, host: "ws1", token: "revoked-token-0123456789")).status
                    == 403)
            #expect(try await m.send(SeedCalls.cloud(port: m.port, host: "ws1", token: nil)).status == 400)
            #expect(try await m.send(SeedCalls.asgardV1(port: m.port, host: "ws1", token: nil)).status == 401)
            #expect(try await m.send(SeedCalls.licenseOnly(port: m.port, hosts: ["a"], token: "nope")).status == 403)
            #expect(m.simulator.counts.requests.isEmpty, "\(m.simulator.counts.json())")
            // Unknown and revoked tokens are in the audit trail (by name when known), never the token.
            let auditDir = m.directory + "/cache/audit"
            #expect(
                await eventually {
                    let text = ((try? FileManager.default.contentsOfDirectory(atPath: auditDir)) ?? []).map {
                        (try? String(contentsOfFile: auditDir + "/" + $0, encoding: .utf8)) ?? ""
                    }.joined()
                    return text.contains("client-token") && text.contains("gone") && !text.contains("not-a-token")
                })
        }
    }

    @Test func upstreamQuotaExhaustedIs409() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            m.simulator.inject(.status(409), route: .download)
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "ws409", token: m.clientToken))
            #expect(a.status == 409, "\(a.text)")
            #expect(
                try m.lab.app.store.currentDigest(
                    .init(product: "thor10", os: "windows", arch: "amd64", variant: "full")) == nil)
        }
    }

    @Test func upstreamRejectingTheMirrorsTokenIs502NamingIt() async throws {
        var o = MirrorTestOptions()
        o.upstreamTokenOverride = "wrong-upstream-token"
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "ws403", token: m.clientToken))
            #expect(a.status == 502, "\(a.text)")
            #expect(a.text.contains("upstream rejected the mirror's token"))
            #expect(!a.text.contains("wrong-upstream-token"))
        }
    }

    @Test func upstreamResetMidBodyCutsTheSeedAndLeavesTheStoreEmpty() async throws {
        try await withRunningMirror(MirrorTestOptions(packageBytes: 2 * 1024 * 1024)) {
            (m: RunningMirror) async throws in
            m.simulator.inject(.resetMidBody, route: .download)
            // Streaming had begun (the head came before the reset), so the seed must see a failed
            // transfer, never a complete 200.
            var sawHead = false
            do {
                let s = try await m.client.stream(SeedCalls.cloud(port: m.port, host: "wsreset", token: m.clientToken))
                sawHead = s.head.status == 200
                while try await s.next() != nil {}
                Issue.record("the relayed body completed although upstream reset mid-body")
            } catch let e as UpstreamError {
                #expect(e.kind == .connectionLost || e.stage == .outcomeUnknown, "\(e)")
            }
            #expect(sawHead)
            let key = PackageKeyForTests.windowsAMD64
            #expect(try m.lab.app.store.currentDigest(key) == nil)
            let tmp = m.directory + "/cache/tmp"
            #expect(
                ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasPrefix("upstream-") }
                    .isEmpty)
            // The desk marked the outcome unknown for that host; a different host works again.
            let next = try await m.send(SeedCalls.cloud(port: m.port, host: "wsafter", token: m.clientToken))
            #expect(next.status == 200)
            // The relayed answer ends before the import does.
            #expect(await eventually { (try? m.lab.app.store.currentDigest(key)) != nil })
        }
    }

    @Test func upstreamServerErrorIs502AndUnreachableIs503() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            m.simulator.inject(.status(503), route: .download)
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "ws503", token: m.clientToken))
            #expect(a.status == 502, "\(a.status) \(a.text)")
            m.lab.simulatorServer.stop()
            let b = try await m.send(SeedCalls.cloud(port: m.port, host: "wsdown", token: m.clientToken))
            #expect(b.status == 503, "\(b.status) \(b.text)")
            #expect(b.header("Retry-After") == "30")
            #expect(b.text.contains("upstream unreachable"))
        }
    }

    @Test func coldMissFirstByteArrivesWithin50msOfUpstreams() async throws {
        try await withRunningMirror(MirrorTestOptions(packageBytes: 1024 * 1024, latency: .seconds(1))) {
            (m: RunningMirror) async throws in
            // Upstream's own time to first byte, asked directly.
            let direct = try m.lab.makeClient()
            var up = SeedCalls.cloud(port: m.lab.simulatorAddress.port, host: "direct", token: "sim-token")
            up.url = UpstreamURL(host: "127.0.0.1", port: m.lab.simulatorAddress.port, target: "/api/public/thor10")
            let t0 = ContinuousClock.now
            let s0 = try await direct.stream(up)
            let upstreamTTFB = ContinuousClock.now - t0
            while try await s0.next() != nil {}
            let t1 = ContinuousClock.now
            let s1 = try await m.client.stream(SeedCalls.cloud(port: m.port, host: "coldttfb", token: m.clientToken))
            let mirrorTTFB = ContinuousClock.now - t1
            #expect(s1.head.status == 200)
            while try await s1.next() != nil {}
            #expect(upstreamTTFB >= .milliseconds(900))
            #expect(mirrorTTFB <= upstreamTTFB + TestBudget.duration(.milliseconds(50)), "mirror \(mirrorTTFB), upstream \(upstreamTTFB)")
        }
    }

    @Test(arguments: [false, true]) func coldDownloadThroughAConnectProxy(credentials: Bool) async throws {
        let proxy = try credentials ? MirrorTestProxy(username: "mirror", password: "p@ss") : MirrorTestProxy()
        defer { proxy.stop() }
        var o = MirrorTestOptions()
        o.proxyURL = credentials ? proxy.url(username: "mirror", password: "p%40ss") : proxy.url()
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "viaproxy", token: m.clientToken))
            #expect(a.status == 200, "\(a.text.prefix(200))")
            #expect(try readPackage(a.body).licenses.count == 1)
            let b = try await m.send(SeedCalls.cloud(port: m.port, host: "viaproxy2", token: m.clientToken))
            #expect(b.status == 200)
            #expect(proxy.tunnels == 2)
            #expect(proxy.targets.allSatisfy { $0 == "127.0.0.1:\(m.lab.simulatorAddress.port)" })
            #expect(proxy.refused == 0)
        }
    }

    @Test func wrongProxyCredentialsAreAGatewayErrorAndNothingIsSent() async throws {
        let proxy = try MirrorTestProxy(username: "mirror", password: "right")
        defer { proxy.stop() }
        var o = MirrorTestOptions()
        o.proxyURL = proxy.url(username: "mirror", password: "wrong")
        try await withRunningMirror(o) { (m: RunningMirror) async throws in
            let a = try await m.send(SeedCalls.cloud(port: m.port, host: "noproxy", token: m.clientToken))
            #expect(a.status >= 500, "\(a.status) \(a.text)")
            #expect(proxy.refused >= 1 && proxy.tunnels == 0)
            #expect(m.simulator.counts.requests.isEmpty)
        }
    }
}
