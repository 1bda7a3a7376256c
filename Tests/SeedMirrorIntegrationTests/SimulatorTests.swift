import Foundation
import SeedCore
import SeedHTTP
import SeedHTTPServer
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

/// Calls the simulator's handler in-process, the way a server would.
private func get(
    _ sim: CloudSimulator, host: String?, token: String? = "sim-token", type: String = "server",
    os: String = "windows", arch: String = "amd64"
) -> Response {
    var h = HTTPHeaders()
    h.add("X-OS", os)
    h.add("X-Type", type)
    h.add("X-Arch", arch)
    if let token {
        h.add("X-Token", token)
        h.add("Authorization", token)
    }
    if let host { h.add("X-Hostname", host) }
    return sim.respond(to: HTTPRequest(method: "GET", target: "/api/public/thor10", headers: h))
}

private func portal(_ sim: CloudSimulator, hash: String, key: String? = "sim-api-key", type: String = "server")
    -> Response
{
    var h = HTTPHeaders()
    if let key { h.add("Authorization", key) }
    return sim.respond(
        to: HTTPRequest(
            method: "POST", target: "/api/public/contracts/issue/0/\(type)/\(hash)?download=1", headers: h))
}

private func bytes(_ response: Response) -> [UInt8] {
    response.body.segments.flatMap { segment -> [UInt8] in
        if case .bytes(let b) = segment { return b }
        Issue.record("unexpected non-bytes segment")
        return []
    }
}

private func licenseHeader(_ license: [UInt8]) -> String {
    String(decoding: license.prefix(while: { $0 != 10 }), as: UTF8.self)
}

private func small(_ adjust: (inout SimulatorConfiguration) -> Void = { _ in }) -> CloudSimulator {
    var c = SimulatorConfiguration.testDefaults
    c.packageBytes = 256 * 1024
    adjust(&c)
    return CloudSimulator(configuration: c)
}

@Suite("Cloud simulator")
struct SimulatorTests {
    @Test func downloadZipExtractsWithThorAndExactlyOneLicenseForTheHost() async throws {
        let sim = small()
        let response = get(sim, host: "WS01.corp.example")
        #expect(response.status == 200)
        try await withTemporaryDirectory { dir in
            let path = dir + "/thor-package.zip"
            try Data(bytes(response)).write(to: URL(fileURLWithPath: path))
            let (status, output) = runTool("/usr/bin/unzip", ["-t", path])
            #expect(status == 0, "unzip -t: \(output)")
            let (_, listing) = runTool("/usr/bin/unzip", ["-Z1", path])
            let names = listing.split(separator: "\n").map(String.init)
            #expect(names.contains("thor64.exe"))
            #expect(names.contains("thor.exe"))
            #expect(names.contains { $0.hasPrefix("signatures/") && $0.hasSuffix(".yar") })
            #expect(names.contains { $0.hasPrefix("tools/") })
            #expect(names.filter { $0.hasSuffix(".lic") } == ["ws01.lic"])
            let (_, license) = runTool("/usr/bin/unzip", ["-p", path, "ws01.lic"])
            #expect(license.hasPrefix("THOR-SIM-LICENSE hash=\(sim.hostHash("ws01")) host=ws01 type=server serial=1"))
        }
        #expect(sim.counts.packageTransfers == 1)
        #expect(sim.issued(host: "ws01") == 1)
    }

    @Test func sameHostWithinLifetimeGetsTheSameLicenseWithoutQuota() throws {
        let sim = small { $0.quota = 5; $0.licenseLifetime = .seconds(3600) }
        let first = sim.license(host: "x")
        #expect(first == nil)
        #expect(get(sim, host: "WS02").status == 200)
        let license = try #require(sim.license(host: "ws02"))
        #expect(get(sim, host: "ws02.domain.local").status == 200)
        #expect(sim.license(host: "WS02") == license)
        #expect(sim.issued(host: "ws02") == 1)
        #expect(sim.counts.licensesIssued == 1)
        #expect(sim.counts.licensesRedelivered == 1)
        #expect(sim.counts.quotaRemaining == 4)
        #expect(sim.counts.packageTransfers == 2)
        sim.advanceClock(by: .seconds(3601))
        #expect(get(sim, host: "WS02").status == 200)
        let renewed = try #require(sim.license(host: "ws02"))
        #expect(renewed != license)
        #expect(licenseHeader(renewed).hasSuffix("serial=2"))
        #expect(sim.issued(host: "ws02") == 2)
        #expect(sim.counts.quotaRemaining == 3)
    }

    @Test func exhaustedQuotaIs409ButKnownHostsStillGetTheirLicense() {
        let sim = small { $0.quota = 2 }
        #expect(get(sim, host: "A1").status == 200)
        #expect(portal(sim, hash: sim.hostHash("a2")).status == 200)
        let refused = get(sim, host: "A3")
        #expect(refused.status == 409)
        #expect(portal(sim, hash: sim.hostHash("a4")).status == 409)
        #expect(get(sim, host: "a1").status == 200)
        #expect(sim.counts.licensesIssued == 2)
        #expect(sim.counts.quotaRemaining == 0)
        #expect(sim.issued(host: "a3") == 0)
    }

    @Test func portalAndDownloadAgreeOnOneLicensePerHost() throws {
        let sim = small()
        let hash = VendorAPI.hostHash(shortHost: "ws05")
        #expect(hash == sim.hostHash("ws05"))
        let answer = portal(sim, hash: hash, type: "client")
        #expect(answer.status == 200)
        let license = bytes(answer)
        #expect(license.count == 1024)
        #expect(licenseHeader(license) == "THOR-SIM-LICENSE hash=\(hash) host=- type=workstation serial=1")
        let zip = get(sim, host: "WS05")
        #expect(zip.status == 200)
        #expect(bytes(zip) == sim.package().zip(licenseName: "ws05.lic", license: license))
        #expect(sim.counts.licensesIssued == 1)
        #expect(sim.issued(host: "ws05") == 1)
        #expect(bytes(portal(sim, hash: hash)) == license)
    }

    @Test func commentsAreKeptBesideTheLicense() {
        let sim = small()
        var h = HTTPHeaders()
        for (k, v) in [("X-OS", "windows"), ("X-Type", "workstation"), ("X-Arch", "x86"), ("X-Token", "sim-token")] {
            h.add(k, v)
        }
        h.add("X-Hostname", "CM1")
        h.add("X-Comment", "finance floor 3")
        #expect(sim.respond(to: HTTPRequest(method: "GET", target: "/api/public/thor10", headers: h)).status == 200)
        #expect(sim.comment(host: "cm1") == "finance floor 3")
        #expect(sim.respond(to: HTTPRequest(method: "HEAD", target: "/api/public/thor10", headers: h)).status == 405)
        #expect(sim.counts.licensesIssued == 1)
    }

    @Test func badRequestsGetTheVendorsStatusCodes() {
        let sim = small { $0.tokens = ["tok"]; $0.apiKeys = ["key"] }
        #expect(get(sim, host: nil, token: "tok").status == 400)
        #expect(get(sim, host: "bad host!", token: "tok").status == 400)
        #expect(get(sim, host: "WS", token: "tok", type: "desktop").status == 400)
        #expect(get(sim, host: "WS", token: "tok", arch: "sparc").status == 400)
        #expect(get(sim, host: "WS", token: nil).status == 401)
        #expect(get(sim, host: "WS", token: "nope").status == 403)
        #expect(portal(sim, hash: sim.hostHash("ws"), key: nil).status == 401)
        #expect(portal(sim, hash: sim.hostHash("ws"), key: "nope").status == 401)
        #expect(portal(sim, hash: "short", key: "key").status == 400)
        #expect(portal(sim, hash: sim.hostHash("ws"), key: "key", type: "desktop").status == 400)
        #expect(sim.counts.licensesIssued == 0)
        #expect(sim.counts.requests["download"] == 6)
        #expect(sim.counts.requests["portal"] == 4)
    }

    @Test func faultsApplyToTheNextRequestsOnly() {
        let sim = small()
        sim.inject(.status(503), count: 2, route: .download)
        sim.inject(.errorBody401, route: .portal)
        #expect(get(sim, host: "F1").status == 503)
        let inBody = portal(sim, hash: sim.hostHash("f2"))
        #expect(inBody.status == 200)
        #expect(bytes(inBody) == Array("Error: HTTP-401".utf8))
        #expect(get(sim, host: "F1").status == 503)
        #expect(get(sim, host: "F1").status == 200)
        #expect(sim.counts.faultsApplied == 3)
        #expect(sim.counts.licensesIssued == 1)
        #expect(sim.issued(host: "f2") == 0)
    }

    @Test func garbageFaultIssuesButSendsNoZip() {
        let sim = small()
        sim.inject(.garbage)
        let response = get(sim, host: "G1")
        #expect(response.status == 200)
        #expect(response.body.length >= 2048)
        #expect(sim.issued(host: "g1") == 1)
    }

    @Test func packagesAreDeterministicAndVersionsShareMostBytes() throws {
        let a = SimulatedPackage(seed: 7, totalBytes: 2 * 1024 * 1024, version: 1)
        let b = SimulatedPackage(seed: 7, totalBytes: 2 * 1024 * 1024, version: 1)
        #expect(a.prefix == b.prefix)
        let c = SimulatedPackage(seed: 8, totalBytes: 2 * 1024 * 1024, version: 1)
        #expect(a.prefix != c.prefix)
        let v2 = SimulatedPackage(seed: 7, totalBytes: 2 * 1024 * 1024, version: 2)
        #expect(v2.memberNames == a.memberNames)
        #expect(a.uncompressedBytes > 1_900_000 && a.uncompressedBytes < 2_300_000)
        // Compare members by content: split each prefix at its local headers.
        let m1 = members(a.prefix)
        let m2 = members(v2.prefix)
        #expect(m1.count == a.memberNames.count)
        var shared = 0
        var changed = 0
        for (name, data) in m1 {
            if m2[name] == data { shared += data.count } else { changed += 1 }
        }
        let total = m1.values.reduce(0) { $0 + $1.count }
        #expect(changed > 0)
        #expect(Double(shared) / Double(total) > 0.85)
        #expect(m1["thor64.exe"] == m2["thor64.exe"])
        let changedNames = m1.keys.filter { m1[$0] != m2[$0] }
        #expect(changedNames.allSatisfy { $0.hasPrefix("signatures/") || $0.hasPrefix("config/") })
    }

    @Test func publishingAVersionChangesTheServedPackage() throws {
        let sim = small()
        let before = bytes(get(sim, host: "V1"))
        sim.publish(version: 2)
        let after = bytes(get(sim, host: "V1"))
        #expect(before != after)
        let license = try #require(sim.license(host: "v1"))
        #expect(after == sim.package(version: 2).zip(licenseName: "v1.lic", license: license))
    }

    @Test func faultsParseFromJSON() throws {
        let sim = small()
        try sim.injectFaults(json: Array(#"{"faults":[{"kind":"status","status":502,"route":"download"}]}"#.utf8))
        #expect(get(sim, host: "J1").status == 502)
        try sim.injectFaults(json: Array(#"[{"kind":"reset","count":2},{"kind":"clear"}]"#.utf8))
        #expect(get(sim, host: "J1").status == 200)
        #expect(throws: ConfigError.self) { try sim.injectFaults(json: Array(#"{"kind":"explode"}"#.utf8)) }
        #expect(throws: ConfigError.self) { try sim.injectFaults(json: Array("not json".utf8)) }
    }

    @Test func commandLineParses() throws {
        let (config, listen, pair) = try CloudSimulatorCommand.parse([
            "--listen", "127.0.0.1:0", "--certs", "/tmp/c", "--package-mb", "3", "--quota", "7", "--lifetime-hours",
            "2", "--token", "a", "--token", "b", "--api-key", "k", "--bandwidth-mbps", "80", "--latency-ms", "25",
        ])
        #expect(listen == ListenAddress(host: "127.0.0.1", port: 0))
        #expect(pair.certificateChainPath == "/tmp/c/server-rsa.pem")
        #expect(config.packageBytes == 3 * 1024 * 1024)
        #expect(config.quota == 7)
        #expect(config.licenseLifetime == .seconds(7200))
        #expect(config.tokens == ["a", "b"])
        #expect(config.apiKeys == ["k"])
        #expect(config.bandwidthBytesPerSecond == 10_000_000)
        #expect(config.latency == .milliseconds(25))
        #expect(throws: ConfigError.self) { try CloudSimulatorCommand.parse(["--certs", "/tmp/c"]) }
        #expect(throws: ConfigError.self) {
            try CloudSimulatorCommand.parse(["--listen", "127.0.0.1:0", "--certs", "/c", "--bogus"])
        }
    }

    @Test func countsResetAndFaultsWorkOverTheWire() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            #expect(try await client.send(sim.download(host: "C1")).status == 200)
            #expect(try await client.send(sim.portal(host: "C2")).status == 200)
            #expect(try await client.send(sim.portal(host: "C1")).status == 200)
            let counts = try await client.send(UpstreamRequest(url: sim.baseURL.with(target: "/_sim/counts")))
            #expect(counts.status == 200)
            let decoded = try JSONDecoder().decode(SimulatorCounts.self, from: Data(counts.body))
            #expect(decoded.packageTransfers == 1)
            #expect(decoded.licensesIssued == 2)
            #expect(decoded.licensesRedelivered == 1)
            #expect(decoded.issuedByHost == ["c1": 1, "hash:\(sim.simulator.hostHash("c2"))": 1])
            #expect(decoded.requests["download"] == 1 && decoded.requests["portal"] == 2)

            let fault = UpstreamRequest(
                method: "POST", url: sim.baseURL.with(target: "/_sim/faults"),
                body: Array(#"{"kind":"status","status":500,"route":"download"}"#.utf8))
            #expect(try await client.send(fault).status == 200)
            #expect(try await client.send(sim.download(host: "C3")).status == 500)

            let reset = UpstreamRequest(method: "POST", url: sim.baseURL.with(target: "/_sim/reset"))
            #expect(try await client.send(reset).status == 200)
            #expect(sim.simulator.counts.licensesIssued == 0)
            #expect(sim.simulator.license(host: "c1") == nil)
        }
    }

    @Test func concurrentDownloadsForOneHostCostOneLicense() async throws {
        var config = SimulatorConfiguration.testDefaults
        config.packageBytes = 256 * 1024
        try await withRunningSimulator(config) { sim in
            let client = try sim.client()
            let bodies = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                for i in 0..<16 {
                    let request = sim.download(host: i % 2 == 0 ? "RACE1" : "race1.corp.example")
                    group.addTask { try await client.send(request).body }
                }
                var all: [[UInt8]] = []
                for try await body in group { all.append(body) }
                return all
            }
            #expect(bodies.count == 16)
            #expect(Set(bodies).count == 1)
            #expect(sim.simulator.issued(host: "race1") == 1)
            #expect(sim.simulator.counts.packageTransfers == 16)
            #expect(sim.simulator.counts.licensesRedelivered == 15)
        }
    }

    @Test func bandwidthIsThrottled() async throws {
        var config = SimulatorConfiguration.testDefaults
        config.packageBytes = 256 * 1024
        config.bandwidthBytesPerSecond = 400_000
        try await withRunningSimulator(config) { sim in
            let client = try sim.client()
            let started = ContinuousClock.now
            let response = try await client.send(sim.download(host: "B1"))
            let elapsed = ContinuousClock.now - started
            #expect(response.status == 200)
            let minimum = Double(response.body.count) / 400_000 * 0.8
            #expect(elapsed > .milliseconds(Int(minimum * 1000)), "took \(elapsed) for \(response.body.count) bytes")
        }
    }
}

/// Member name → stored payload, read by walking the local headers of a prefix.
private func members(_ zip: [UInt8]) -> [String: [UInt8]] {
    func le16(_ i: Int) -> Int { Int(zip[i]) | Int(zip[i + 1]) << 8 }
    func le32(_ i: Int) -> Int { le16(i) | le16(i + 2) << 16 }
    var out: [String: [UInt8]] = [:]
    var i = 0
    while i + 30 <= zip.count, le32(i) == 0x0403_4b50 {
        let size = le32(i + 18)
        let nameLength = le16(i + 26)
        let extra = le16(i + 28)
        let name = String(decoding: zip[(i + 30)..<(i + 30 + nameLength)], as: UTF8.self)
        let start = i + 30 + nameLength + extra
        out[name] = Array(zip[start..<(start + size)])
        i = start + size
    }
    return out
}
