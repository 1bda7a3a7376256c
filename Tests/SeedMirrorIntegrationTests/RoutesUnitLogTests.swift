import Foundation
import SeedHTTPServer
import SeedTestSupport
import Testing

@testable import SeedServer

@Suite struct RoutesUnitLogTests {
    @Test func accessLogLineIsJSONWithTheTokenRedacted() throws {
        let e = AccessLogEntry(
            time: 1_796_313_600.25, clientAddress: "10.1.2.3", clientPort: 51234, method: "GET",
            path: "/api/v1/downloads/thor?os=windows&token=s3cret&hostname=a&TOKEN=x&%74oken=y", status: 200,
            bytes: 70_000_000, durationMilliseconds: 12.3456, tlsVersion: "TLSv1.2", tlsCipher: "ECDHE-RSA-AES256-SHA384")
        let line = accessLogLine(e)
        #expect(!line.contains("s3cret") && !line.contains("=x") && !line.contains("=y"))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(obj["time"] as? String == "2026-12-03T16:00:00.250Z")
        #expect(obj["client"] as? String == "10.1.2.3" && obj["port"] as? Int == 51234)
        #expect(obj["path"] as? String == "/api/v1/downloads/thor?os=windows&token=REDACTED&hostname=a&TOKEN=REDACTED&%74oken=REDACTED")
        #expect(obj["status"] as? Int == 200 && obj["bytes"] as? Int == 70_000_000)
        #expect(obj["ms"] as? Double == 12.346)
        #expect(obj["tls"] as? String == "TLSv1.2" && obj["cipher"] as? String == "ECDHE-RSA-AES256-SHA384")
        #expect(redactedTarget("/healthz") == "/healthz")
    }

    @Test func accessLogFileGetsOneLinePerEntry() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let path = dir + "/access.log"
            let sink = try JSONLinesAccessLog(appendingTo: path)
            for i in 0..<3 {
                sink.record(
                    AccessLogEntry(
                        time: 0, clientAddress: "::1", clientPort: i, method: "GET", path: "/healthz", status: 200,
                        bytes: 3, durationMilliseconds: 0.1, tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_128_GCM_SHA256"))
            }
            sink.flush()
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.split(separator: "\n").count == 3)
        }
    }

    @Test func worldReadableKeysAreRefused() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let key = dir + "/server.key"
            _ = FileManager.default.createFile(atPath: key, contents: Data("k".utf8), attributes: [.posixPermissions: 0o644])
            #expect(throws: StartupError.self) { try checkPrivateKeyPermissions([key]) }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            try checkPrivateKeyPermissions([key])
            #expect(throws: StartupError.self) { try checkPrivateKeyPermissions([dir + "/missing.key"]) }
        }
    }
}
