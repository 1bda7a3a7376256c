import Foundation
import SeedCore
import SeedHTTPServer
import SeedServer
import SeedTLS
import SeedTestSupport
import Testing

/// The whole mirror (`MirrorApp`) built from an `init` folder, offline, over real sockets and TLS.
@Suite struct RoutesServeTests {
    func offlineMirror(_ dir: String, accessLog: String? = nil) throws -> (MirrorApp, InitCommand.Result) {
        let r = try InitCommand.run(dir: dir, names: ["localhost", "127.0.0.1"], force: false)
        let config = try MirrorConfig.load(path: r.configPath)
        let sink = try accessLog.map { try JSONLinesAccessLog(appendingTo: $0) }
        let app = try MirrorApp(
            config: config, listen: [ListenAddress(host: "127.0.0.1", port: 0)], logger: .discard, accessLog: sink)
        return (app, r)
    }

    @Test func offlineMirrorServesHealthReadinessAndRefusals() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let log = dir + "/access.log"
            let (app, r) = try offlineMirror(dir + "/m", accessLog: log)
            let port = try app.start()[0].port
            let token = try String(contentsOfFile: r.clientTokenPath, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let caFile = r.pki.caCertificatePath
            // The blocking client runs on its own thread, so it cannot starve the server's deferred answers.
            let answers = try await onOwnThread { () throws -> [TestResponse] in
                let ctx = try TLSClientContext(caFile: caFile)
                let c = try TLSTestClient(host: "127.0.0.1", port: port, context: ctx, serverName: "localhost")
                return [
                    try c.request("GET", "/healthz"),
                    try c.request("GET", "/readyz"),
                    try c.request("GET", "/nope"),
                    try c.request("POST", "/api/public/thor10"),
                    try c.request("GET", "/api/v1/downloads/thor?type=server&hostname=a&token=wrong-secret"),
                    try c.request(
                        "GET", "/api/public/thor10",
                        headers: [
                            ("X-OS", "windows"), ("X-Type", "server"), ("X-Arch", "amd64"), ("X-Hostname", "srv1"),
                            ("X-Token", token),
                        ]),
                    try c.request("GET", "/api/v1/downloads/thor?type=server&hostname=a&token=\(token)"),
                ]
            }
            #expect(answers[0].status == 200 && answers[0].text == "ok\n")
            #expect(answers[1].status == 200)
            #expect(answers[2].status == 404)
            #expect(answers[3].status == 405 && answers[3].header("Allow") == "GET, HEAD")
            #expect(answers[4].status == 403)
            // Offline without a pooled license the desk answers 409 and lists the host as pending.
            let off = answers[5]
            #expect(off.status == 409 && off.text.contains("offline"), "\(off.status) \(off.text)")
            #expect(answers[6].status != 200)
            await app.shutdown(grace: .seconds(1))
            let text = try String(contentsOfFile: log, encoding: .utf8)
            #expect(text.contains("token=REDACTED"))
            #expect(!text.contains("wrong-secret") && !text.contains(token))
            #expect(text.split(separator: "\n").count >= 7)
        }
    }

    @Test func worldReadableKeyStopsStartupWithAClearLine() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let r = try InitCommand.run(dir: dir, names: ["localhost"], force: false)
            chmod(r.pki.rsa.privateKeyPath, 0o644)
            let config = try MirrorConfig.load(path: r.configPath)
            #expect {
                _ = try MirrorApp(
                    config: config, listen: [ListenAddress(host: "127.0.0.1", port: 0)], logger: .discard,
                    accessLog: nil)
            } throws: { error in
                "\(error)".contains("chmod 600") && "\(error)".contains("server-rsa.key")
            }
        }
    }
}
