import Foundation
import Glibc
import SeedHTTP
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

/// Secrets never leave the process in logs, metrics, audit lines or answers; admin routes refuse client
/// tokens; keys and the ledger are private, and `serve` refuses a world-readable key.
@Suite(.serialized) struct HostileSecretsTests {
    @Test func noConfiguredSecretAppearsInLogsAuditMetricsOrAnswers() async throws {
        guard let binary = ServeProcessLab.builtBinary() else {
            print("secrets test skipped: .build/debug/seed-mirror is not built")
            return
        }
        try await withTemporaryDirectory { dir in
            var sim = SimulatorConfiguration()
            sim.packageBytes = 64 * 1024
            sim.tokens = ["upstream-SECRET-dl-7f3a9c"]
            sim.apiKeys = ["portal-SECRET-key-91bc2e"]
            let lab = try ServeProcessLab(directory: dir + "/m", binary: binary, simulator: sim, portalAPIKey: true)
            try lab.start()
            #expect(try await onThread { lab.waitReady() } != nil)
            let client = try lab.makeClient()
            let token = lab.clientToken
            let wrong = "wrong-SECRET-tok-55aa01"
            var answers: [String] = []
            func keep(_ r: UpstreamResponse) -> Int {
                answers.append(r.headers.fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))
                answers.append(String(decoding: r.body.prefix(64 * 1024), as: UTF8.self))
                return r.status
            }
            func get(_ target: String, _ headers: [(String, String)] = []) async throws -> Int {
                var h = HTTPHeaders()
                for (n, v) in headers { h.add(n, v) }
                return keep(try await client.send(UpstreamRequest(method: "GET", url: UpstreamURL(host: "127.0.0.1", port: lab.port, target: target), headers: h)))
            }
            #expect(keep(try await client.send(SeedCalls.cloud(port: lab.port, host: "sec-ws01", token: token))) == 200)
            #expect(keep(try await client.send(SeedCalls.asgardV1(port: lab.port, host: "sec-ws02", token: token))) == 200)
            #expect(keep(try await client.send(SeedCalls.asgardV1(port: lab.port, host: "sec-ws03", token: wrong))) == 403)
            #expect(keep(try await client.send(SeedCalls.licenseOnly(port: lab.port, hosts: ["sec-ws04"], token: token))) == 200)
            lab.simulator.inject(.status(503), route: .portal)
            let failed = keep(try await client.send(SeedCalls.licenseOnly(port: lab.port, hosts: ["sec-ws05"], token: token)))
            #expect(failed == 502)
            // Admin routes: the client token is refused, the admin token accepted.
            for path in ["/api/mirror/usage", "/api/mirror/licenses", "/api/mirror/audit", "/metrics", "/dashboard"] {
                let s = try await get(path, [("Authorization", "Bearer \(token)")])
                #expect(s == 401 || s == 403, "\(path) with a client token: \(s)")
                let t = try await get(path + "?token=\(token)")
                #expect(t == 401 || t == 403, "\(path) with a client token in the query: \(t)")
            }
            #expect(try await get("/metrics", [("Authorization", "Bearer \(lab.adminToken)")]) == 200)
            #expect(try await get("/api/mirror/audit", [("Authorization", "Bearer \(lab.adminToken)")]) == 200)
            #expect(try await get("/api/mirror/licenses", [("Authorization", "Bearer \(lab.adminToken)")]) == 200)
            #expect(try await onThread { lab.terminate() } == 0)

            // Everything the run wrote: the server's stderr log, the access log, every audit file and report.
            var haystacks: [(String, String)] = [("stderr", tail(lab.stderrPath, bytes: 4 << 20)), ("access log", tail(lab.accessLogPath, bytes: 4 << 20))]
            if let e = FileManager.default.enumerator(atPath: lab.directory + "/cache/audit") {
                while let rel = e.nextObject() as? String {
                    if let d = FileManager.default.contents(atPath: lab.directory + "/cache/audit/" + rel) {
                        haystacks.append(("audit/\(rel)", String(decoding: d, as: UTF8.self)))
                    }
                }
            }
            for (i, a) in answers.enumerated() { haystacks.append(("answer \(i)", a)) }
            #expect(haystacks.count > 4 && !haystacks[0].1.isEmpty && !haystacks[1].1.isEmpty, "nothing was logged")
            let secrets = [token, lab.adminToken, "upstream-SECRET-dl-7f3a9c", "portal-SECRET-key-91bc2e", wrong]
            for secret in secrets {
                for (name, text) in haystacks where text.contains(secret) {
                    Issue.record("a secret (\(secret.prefix(6))…) appears in \(name)")
                }
            }
            #expect(haystacks[1].1.contains("REDACTED") || !haystacks[1].1.contains("token="), "query tokens are not redacted")

            // Keys, the ledger and the configuration are private to the owner.
            var privateFiles = [lab.ledgerPath, lab.configPath]
            for f in (try? FileManager.default.contentsOfDirectory(atPath: lab.directory + "/certs")) ?? [] where f.hasSuffix(".key") {
                privateFiles.append(lab.directory + "/certs/" + f)
            }
            #expect(privateFiles.count >= 3)
            for f in privateFiles {
                var st = stat()
                #expect(stat(f, &st) == 0, "\(f) missing")
                #expect(st.st_mode & 0o077 == 0, "\(f) has mode \(String(st.st_mode & 0o777, radix: 8))")
            }
        }
    }

    @Test func serveRefusesAWorldReadableKeyNamingIt() async throws {
        guard let binary = ServeProcessLab.builtBinary() else {
            print("key permission test skipped: .build/debug/seed-mirror is not built")
            return
        }
        try await withTemporaryDirectory { dir in
            var sim = SimulatorConfiguration()
            sim.packageBytes = 64 * 1024
            let lab = try ServeProcessLab(directory: dir + "/m", binary: binary, simulator: sim, portalAPIKey: true)
            let keys = ((try? FileManager.default.contentsOfDirectory(atPath: lab.directory + "/certs")) ?? []).filter { $0.hasSuffix(".key") && !$0.contains("ca") }
            let key = lab.directory + "/certs/" + (try #require(keys.first))
            chmod(key, 0o644)
            let (status, output) = try await onThread { try lab.runTool(["serve", "--config", lab.configPath]) }
            #expect(status != 0)
            #expect(output.contains(key) && output.contains("chmod 600"), "\(output)")
            chmod(key, 0o600)
            try lab.start()
            #expect(try await onThread { lab.waitReady() } != nil)
            #expect(try await onThread { lab.terminate() } == 0)
        }
    }
}
