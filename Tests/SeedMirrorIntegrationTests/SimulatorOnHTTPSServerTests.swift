import Foundation
import SeedCore
import SeedHTTPServer
import SeedServer
import SeedTLS
import SeedTestSupport
import SeedUpstream
import Testing

/// The simulator is an ordinary `HTTPHandler`: these run it on the production HTTPS server.
@Suite("Cloud simulator on HTTPSServer")
struct SimulatorOnHTTPSServerTests {
    @Test func downloadPortalAndFaultsThroughTheProductionServer() async throws {
        try await withTemporaryDirectory { dir in
            let pki = try SimulatorPKI.make(in: dir)
            let sim = CloudSimulator(configuration: .testDefaults)
            var config = HTTPServerConfiguration(listeners: [ListenAddress(host: "127.0.0.1", port: 0)])
            config.eventLoops = 1
            let tls = try TLSServerContext(configuration: TLSServerConfiguration(certificates: [pki.server]))
            let server = HTTPSServer(configuration: config, tls: tls, handler: sim, logger: .discard, accessLog: nil)
            let port = try #require(try server.start().first).port
            var clientConfig = UpstreamConfiguration(caFile: pki.caFile)
            clientConfig.resolve = ["cloud.test": "127.0.0.1"]
            clientConfig.readTimeout = .seconds(5)
            let client = try UpstreamClient(configuration: clientConfig, logger: .discard)
            let base = UpstreamURL(host: "cloud.test", port: port)

            let zip = try await client.send(
                VendorAPI.cloudDownload(
                    base: base, token: "sim-token", host: "HS1", type: "server", os: "windows", arch: "amd64"))
            #expect(zip.status == 200)
            let license = try #require(sim.license(host: "hs1"))
            #expect(zip.body == sim.package().zip(licenseName: "hs1.lic", license: license))

            let portal = try await client.send(
                VendorAPI.portalIssue(base: base, apiKey: "sim-api-key", type: "server", hash: sim.hostHash("hs1")))
            #expect(try VendorAPI.license(from: portal, endpoint: "portal") == license)
            #expect(sim.issued(host: "hs1") == 1)

            sim.inject(.resetMidBody, route: .download)
            let error = await #expect(throws: UpstreamError.self) {
                try await client.send(
                    VendorAPI.cloudDownload(
                        base: base, token: "sim-token", host: "HS2", type: "server", os: "windows", arch: "amd64"))
            }
            #expect(error?.stage == .outcomeUnknown)

            // A body shorter than its declared length, and a stall past the read timeout, are both
            // answers the caller cannot trust: outcome unknown.
            let quick = try UpstreamClient(
                configuration: {
                    var c = clientConfig
                    c.readTimeout = .milliseconds(400)
                    return c
                }(), logger: .discard)
            for fault in [SimulatorFault.shortBody, .stall(.seconds(3)), .delayHead(.seconds(3))] {
                sim.inject(fault, route: .portal)
                let e = await #expect(throws: UpstreamError.self, "\(fault)") {
                    try await quick.send(
                        VendorAPI.portalIssue(
                            base: base, apiKey: "sim-api-key", type: "server", hash: sim.hostHash("hs3")))
                }
                #expect(e?.stage == .outcomeUnknown, "\(fault)")
            }
            let counts = try await client.send(UpstreamRequest(url: base.with(target: "/_sim/counts")))
            let decoded = try JSONDecoder().decode(SimulatorCounts.self, from: Data(counts.body))
            #expect(decoded.faultsApplied == 4)
            await server.shutdown(grace: .seconds(1))
        }
    }
}
