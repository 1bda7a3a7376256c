import Foundation
import SeedServer
import SeedTestSupport
import Testing

@Suite struct DemoCommandTests {
    @Test func demoExitsAfterASuccessfulColdAndWarmDownload() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            var o = DemoCommand.Options()
            o.directory = dir + "/demo-run"
            o.exitAfterCheck = true
            o.packageMegabytes = 2
            o.latencyMilliseconds = 100
            o.preferredPort = nil
            let status = try await DemoCommand.run(o)
            #expect(status == 0)
            let cold = try readPackage([UInt8](try Data(contentsOf: URL(fileURLWithPath: o.directory + "/downloads/cold.zip"))))
            let warm = try readPackage([UInt8](try Data(contentsOf: URL(fileURLWithPath: o.directory + "/downloads/warm.zip"))))
            #expect(cold.hasThor64 && warm.hasThor64)
            #expect(cold.licenses.count == 1 && warm.licenses.count == 1)
            #expect(cold.licenses[0].bytes == warm.licenses[0].bytes)
            // A second run replaces the previous demo folder.
            #expect(try await DemoCommand.run(o) == 0)
        }
    }
}
