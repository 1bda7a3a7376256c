import Foundation
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

/// The built `seed-cloud-sim` next to the test bundle (`swift build --build-tests` builds both).
private let simulatorBinary: String = {
    let runner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
    return runner.appendingPathComponent("seed-cloud-sim").path
}()

@Suite("seed-cloud-sim executable")
struct SimulatorExecutableTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: simulatorBinary), "seed-cloud-sim not built"))
    func printsItsAddressMintsCertificatesAndServes() async throws {
        try await runExecutable(extraArguments: [])
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: simulatorBinary), "seed-cloud-sim not built"))
    func servesWithTheSimpleServerToo() async throws {
        try await runExecutable(extraArguments: ["--simple-server"])
    }

    private func runExecutable(extraArguments: [String]) async throws {
        try await withTemporaryDirectory { dir in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: simulatorBinary)
            process.arguments = [
                "--listen", "127.0.0.1:0", "--certs", dir + "/certs", "--package-mb", "1", "--quota", "1",
                "--token", "exe-token",
            ] + extraArguments
            let out = Pipe()
            process.standardOutput = out
            process.standardError = Pipe()
            try process.run()
            defer {
                process.terminate()  // this child only, by its own handle
                process.waitUntilExit()
            }
            // The first line names the bound address.
            var line: [UInt8] = []
            while !line.contains(10) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line += chunk
            }
            let text = String(decoding: line, as: UTF8.self)
            #expect(text.hasPrefix("seed-cloud-sim listening on https://127.0.0.1:"))
            let portText = text.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            let port = try #require(portText.flatMap { UInt16($0) })

            var config = UpstreamConfiguration(caFile: dir + "/certs/ca.pem")
            config.resolve = ["cloud.nextron-systems.com": "127.0.0.1"]
            let client = try UpstreamClient(configuration: config, logger: .discard)
            let base = UpstreamURL(host: "cloud.nextron-systems.com", port: port)
            func download(_ host: String) -> UpstreamRequest {
                VendorAPI.cloudDownload(
                    base: base, token: "exe-token", host: host, type: "server", os: "windows", arch: "amd64")
            }
            let first = try await client.send(download("EXE1"))
            #expect(first.status == 200)
            #expect(first.body.starts(with: Array("PK".utf8)))
            #expect(try await client.send(download("EXE2")).status == 409)
            let counts = try await client.send(UpstreamRequest(url: base.with(target: "/_sim/counts")))
            let decoded = try JSONDecoder().decode(SimulatorCounts.self, from: Data(counts.body))
            #expect(decoded.issuedByHost == ["exe1": 1])
            #expect(decoded.quotaRemaining == 0)
        }
    }
}
