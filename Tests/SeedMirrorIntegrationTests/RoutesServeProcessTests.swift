import Foundation
import SeedServer
import SeedTLS
import SeedTestSupport
import SeedCore
import Testing

/// `seed-mirror serve` as a real process: prints its addresses, reloads certificates on SIGHUP (and
/// audits it), stops on SIGTERM with status 0.
@Suite struct RoutesServeProcessTests {
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("seed-mirror")
            .path
    }

    @Test func serveReloadsOnSIGHUPAndStopsCleanlyOnSIGTERM() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build seed-mirror first (swift build)")
        try await withTemporaryDirectory { (dir: String) async throws in
            let r = try InitCommand.run(dir: dir, names: ["localhost", "127.0.0.1"], force: false)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = ["serve", "--config", r.configPath, "--listen", "127.0.0.1:0"]
            let out = Pipe()
            let err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            defer { if p.isRunning { p.terminate() } }
            // First stdout line: "seed-mirror listening on https://127.0.0.1:PORT", read off the test's task.
            let firstLine = Lock("")
            let reader = Thread {
                var text = ""
                while !text.hasSuffix("\n") {
                    let b = out.fileHandleForReading.readData(ofLength: 1)
                    if b.isEmpty { break }
                    text += String(decoding: b, as: UTF8.self)
                }
                firstLine.withLock { $0 = text.isEmpty ? "EOF" : text }
            }
            reader.start()
            #expect(await eventually(timeout: .seconds(30)) { !firstLine.withLock { $0 }.isEmpty })
            let line = firstLine.withLock { $0 }
            let port = try #require(
                line.split(separator: ":").last.flatMap { UInt16($0.trimmingCharacters(in: .whitespacesAndNewlines)) },
                "\(line)")
            let ctx = try TLSClientContext(caFile: r.pki.caCertificatePath)
            let c = try TLSTestClient(host: "127.0.0.1", port: port, context: ctx, serverName: "localhost")
            #expect(try c.request("GET", "/healthz").status == 200)

            // New server certificates from the same CA, then SIGHUP: new handshakes still verify.
            _ = try InitCommand.run(dir: dir, names: ["localhost", "127.0.0.1"], force: true)
            kill(p.processIdentifier, SIGHUP)
            let auditDir = dir + "/cache/audit"
            #expect(
                await eventually {
                    let files = (try? FileManager.default.contentsOfDirectory(atPath: auditDir)) ?? []
                    return files.contains { f in
                        ((try? String(contentsOfFile: auditDir + "/" + f, encoding: .utf8)) ?? "").contains(
                            "config-reload")
                    }
                })
            let c2 = try TLSTestClient(host: "127.0.0.1", port: port, context: ctx, serverName: "localhost")
            #expect(try c2.request("GET", "/readyz").status == 200)

            kill(p.processIdentifier, SIGTERM)
            #expect(await eventually(timeout: .seconds(15)) { !p.isRunning })
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(log.contains("tls certificates reloaded"))
            #expect(log.contains("stopped"))
        }
    }
}
