import Foundation
import Glibc
import SeedHTTPServer
import SeedPosix
import SeedTestSupport
import Testing

/// File bodies are encrypted straight out of a read-only mapping of the blob (SharedFile.mapped()).
/// Part of the serialized transport suite: these map and read megabytes, which the RSS-measuring tests must not see.
extension TransportServerTests {
    @Test func mappedFileMatchesPreadAndSurvivesReleasingPages() throws {
        let fixture = TransportFixtures.file(megabytes: 3)
        let file = try SharedFile(openingForReading: fixture.path)
        let mapped = try #require(file.mapped())
        #expect(mapped.count == Int(file.size))
        // The same mapping is handed out again.
        #expect(file.mapped()?.baseAddress == mapped.baseAddress)
        var buffer = [UInt8](repeating: 0, count: 70_001)
        for offset in [0, 1, 4095, 4097, 1 << 20 + 3, Int(file.size) - 70_001] {
            let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: UInt64(offset)) }
            #expect(n == buffer.count)
            #expect(Array(mapped[offset..<offset + n]) == buffer)
        }
        // Released pages come back from the page cache with the same bytes.
        let before = Array(mapped[5000..<1_200_000])
        file.releaseMappedPages(from: 4097, to: 1_300_000)
        file.releaseMappedPages(from: 0, to: file.size)
        #expect(Array(mapped[5000..<1_200_000]) == before)
    }

    @Test func anEmptyFileHasNoMapping() throws {
        let path = NSTemporaryDirectory() + "seed-mapped-empty-\(getpid())"
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        defer { unlink(path) }
        let file = try SharedFile(openingForReading: path)
        #expect(file.mapped() == nil)
    }

    @Test func rangesAtOddOffsetsServeExactBytes() async throws {
        let fixture = TransportFixtures.file(megabytes: 3)
        try await withTransportServer(files: ["/f": fixture.path]) { s in
            try await onThread {
                let c = try s.client()
                let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture.path)))
                let whole = try c.request("GET", "/f")
                #expect(whole.status == 200 && whole.body == data)
                let half = data.count / 2
                // Odd starts and ends, across page boundaries, the two file segments and the 1 MiB release step.
                for (a, b) in [
                    (1, 4096 * 300 + 7), (half - 4097, half + (1 << 20) + 83), (4095, 4097), (data.count - 65_281, data.count - 1),
                    (12_345, 12_345), ((1 << 20) - 1, (1 << 21) + 1),
                ] {
                    let r = try c.request("GET", "/f", headers: [("Range", "bytes=\(a)-\(b)")])
                    #expect(r.status == 206)
                    #expect(r.body == Array(data[a...b]), "range \(a)-\(b)")
                }
                let tail = try c.request("GET", "/f", headers: [("Range", "bytes=-100003")])
                #expect(tail.status == 206 && tail.body == Array(data[(data.count - 100_003)...]))
            }
        }
    }
}
