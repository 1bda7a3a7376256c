import Foundation
import SeedAudit
import SeedCore
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

// End to end: real sockets, real TLS (a CA minted by `init` in a temp folder), the real store, ledger,
// desk and audit log, against the in-process cloud simulator. Counts are read at the simulator.

@Suite(.serialized) struct RoutesEndToEndTests {
    @Test func everyDownloadRouteAnswersAZipWithThorAndTheHostsLicense() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            let calls: [(String, UpstreamRequest)] = [
                ("ws-cloud", SeedCalls.cloud(port: m.port, host: "WS-CLOUD", token: m.clientToken)),
                ("ws-v1", SeedCalls.asgardV1(port: m.port, host: "ws-v1", token: m.clientToken)),
                ("srv-v0", SeedCalls.asgardV0(port: m.port, host: "srv-v0", token: m.clientToken)),
            ]
            for (hostKey, call) in calls {
                let a = try await m.send(call)
                #expect(a.status == 200, "\(hostKey): \(a.text.prefix(200))")
                #expect(a.header("Content-Type") == "application/zip")
                let (status, output) = try unzipTest(a.body)
                #expect(status == 0, "\(hostKey): \(output)")
                let p = try readPackage(a.body)
                #expect(p.hasThor64)
                #expect(p.licenses.count == 1, "\(hostKey): \(p.licenses.map(\.name))")
                #expect(p.licenses.first?.bytes == m.simulator.license(host: hostKey))
                // What the seed runs: .NET's ZipFile.ExtractToDirectory (Mono's build of it, when installed).
                if DotNetZip.available {
                    let files = try DotNetZip.extractedFiles(a.body)
                    #expect(files.keys.contains { $0.lowercased().hasSuffix("thor64.exe") }, "\(hostKey)")
                    let lic = p.licenses.first.flatMap { files[$0.name] }
                    #expect(lic == m.simulator.license(host: hostKey), "\(hostKey)")
                }
            }
            // The first answer relayed upstream's ZIP; the others came from the store.
            #expect(m.simulator.counts.packageTransfers == 1)
        }
    }

    @Test func licenseOnlyRouteAnswersAZipOrABareLicense() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            let zip = try await m.send(
                SeedCalls.licenseOnly(port: m.port, hosts: ["SRV01", "srv02.corp.example"], token: m.clientToken))
            #expect(zip.status == 200 && zip.header("Content-Type") == "application/zip")
            #expect(try unzipTest(zip.body).status == 0)
            let p = try readPackage(zip.body)
            #expect(p.licenses.map(\.name).sorted() == ["srv01.lic", "srv02.lic"])
            #expect(p.licenses.first { $0.name == "srv01.lic" }?.bytes == m.simulator.license(host: "srv01"))
            let bare = try await m.send(
                SeedCalls.licenseOnly(port: m.port, hosts: ["SRV03"], token: m.clientToken, bare: true))
            #expect(bare.status == 200 && bare.header("Content-Type") == "application/octet-stream")
            #expect(bare.body == m.simulator.license(host: "srv03"))
            #expect(m.simulator.counts.packageTransfers == 0)
            // Asking again reuses: no new issuance upstream.
            let again = try await m.send(
                SeedCalls.licenseOnly(port: m.port, hosts: ["srv03"], token: m.clientToken, bare: true))
            #expect(again.body == bare.body)
            #expect(m.simulator.counts.licensesIssued == 3)
        }
    }

    @Test func hundredConcurrentRequestsForOneHostCostOneUpstreamRequest() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            let statuses = try await concurrently(100) { _ in
                try await m.send(SeedCalls.cloud(port: m.port, host: "SAME-HOST", token: m.clientToken)).status
            }
            #expect(statuses.allSatisfy { $0 == 200 })
            let c = m.simulator.counts
            #expect(c.requests.values.reduce(0, +) == 1, "\(c.json())")
            #expect(c.licensesIssued == 1 && c.packageTransfers == 1)
        }
    }

    @Test func hundredNewHostsOnAnEmptyMirrorCostOnePackageTransfer() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            let statuses = try await concurrently(100) { i in
                try await m.send(SeedCalls.cloud(port: m.port, host: "NEW\(i)", token: m.clientToken)).status
            }
            #expect(statuses.allSatisfy { $0 == 200 })
            let c = m.simulator.counts
            #expect(c.packageTransfers == 1, "\(c.json())")
            #expect(c.requests["portal"] == 99, "\(c.json())")
            #expect(c.licensesIssued == 100)
        }
    }

    @Test func hundredNewHostsWithThePackageCachedCostOnlyLicenseCalls() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            #expect(try await m.send(SeedCalls.cloud(port: m.port, host: "warmup", token: m.clientToken)).status == 200)
            m.simulator.reset()
            let statuses = try await concurrently(100) { i in
                try await m.send(SeedCalls.cloud(port: m.port, host: "CACHED\(i)", token: m.clientToken)).status
            }
            #expect(statuses.allSatisfy { $0 == 200 })
            let c = m.simulator.counts
            #expect(c.packageTransfers == 0, "\(c.json())")
            #expect(c.requests["portal"] == 100, "\(c.json())")
        }
    }
}

extension RoutesEndToEndTests {
    @Test func warmAnswersSupportHEADAndRanges() async throws {
        try await withRunningMirror { (m: RunningMirror) async throws in
            let full = try await m.send(SeedCalls.cloud(port: m.port, host: "ranger", token: m.clientToken))
            #expect(full.status == 200)
            #expect(await eventually { (try? m.lab.app.store.currentDigest(PackageKeyForTests.windowsAMD64)) != nil })
            let warm = try await m.send(SeedCalls.cloud(port: m.port, host: "ranger", token: m.clientToken))
            let etag = try #require(warm.header("ETag"))
            #expect(warm.header("Accept-Ranges") == "bytes")
            var head = SeedCalls.cloud(port: m.port, host: "ranger", token: m.clientToken)
            head.method = "HEAD"
            let h = try await m.send(head)
            #expect(h.status == 200 && h.body.isEmpty && h.header("Content-Length") == String(warm.body.count))
            var ranged = SeedCalls.cloud(port: m.port, host: "ranger", token: m.clientToken)
            ranged.headers.add("Range", "bytes=100-1099")
            ranged.headers.add("If-Range", etag)
            let part = try await m.send(ranged)
            #expect(part.status == 206)
            #expect(part.body == Array(warm.body[100..<1100]))
            #expect(m.simulator.counts.licensesIssued == 1)
            let metrics = m.lab.app.metrics
            #expect((metrics.value(MetricNames.cacheMisses) ?? 0) == 1)
            #expect((metrics.value(MetricNames.cacheHits) ?? 0) >= 3)
            #expect((metrics.value(MetricNames.requests, labels: [("route", "cloud"), ("status", "200")]) ?? 0) >= 3)
        }
    }
}

/// Runs `n` copies of `work` at once and returns their results in order.
func concurrently<T: Sendable>(_ n: Int, _ work: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { g in
        for i in 0..<n { g.addTask { (i, try await work(i)) } }
        var out = [T?](repeating: nil, count: n)
        for try await (i, r) in g { out[i] = r }
        return out.map { $0! }
    }
}
