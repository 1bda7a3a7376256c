import Foundation
import SeedHTTPServer
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

/// A branch mirror whose upstream is a central SeedMirror (docs/routes.md "tiering"): packages come
/// through the central's cloud route, licenses for new hosts through its license-only route, so the
/// central's ledger is the one place licenses are deduplicated.
@Suite struct RoutesTieringTests {
    @Test func branchMirrorUsesTheCentralMirrorsRoutes() async throws {
        try await withRunningMirror { (central: RunningMirror) async throws in
            try await withTemporaryDirectory { (dir: String) async throws in
                let r = try InitCommand.run(dir: dir, names: ["localhost", "127.0.0.1"], force: false)
                var root =
                    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: r.configPath)))
                    as! [String: Any]
                let base = "https://127.0.0.1:\(central.port)"
                root["listen"] = ["127.0.0.1:0"]
                root["upstream"] = [
                    "mode": "online", "url": base, "portalUrl": base + "/api/v0/licensing/issue",
                    "token": central.clientToken, "caFile": central.lab.caFile, "account": "branch",
                ]
                root["log"] = ["accessLog": "off"]
                try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: r.configPath))
                chmod(r.configPath, 0o600)
                let branch = try MirrorApp(
                    config: try MirrorConfig.load(path: r.configPath), logger: .discard, accessLog: nil)
                let port = try branch.start()[0].port
                var c = UpstreamConfiguration(caFile: r.pki.caCertificatePath)
                c.maxBodyBytes = 64 << 20
                let client = try UpstreamClient(configuration: c, logger: .discard)

                let first = try await client.send(
                    SeedCalls.cloud(port: port, host: "BR-WS1", token: r.clientTokenValue))
                #expect(first.status == 200, "\(String(decoding: first.body.prefix(200), as: UTF8.self))")
                #expect(try readPackage(first.body).licenses.first?.bytes == central.simulator.license(host: "br-ws1"))
                #expect(await eventually { (try? branch.store.currentDigest(PackageKeyForTests.windowsAMD64)) != nil })

                let second = try await client.send(
                    SeedCalls.cloud(port: port, host: "BR-WS2", token: r.clientTokenValue))
                #expect(second.status == 200)
                #expect(try readPackage(second.body).licenses.first?.bytes == central.simulator.license(host: "br-ws2"))
                let counts = central.simulator.counts
                #expect(counts.packageTransfers == 1, "\(counts.json())")
                #expect(counts.requests["portal"] == 1, "\(counts.json())")
                await branch.shutdown(grace: .seconds(1))
            }
        }
    }
}

extension InitCommand.Result {
    /// The client token `init` wrote.
    var clientTokenValue: String {
        ((try? String(contentsOfFile: clientTokenPath, encoding: .utf8)) ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
    }
}
