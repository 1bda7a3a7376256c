import Foundation
import Glibc
import SeedCore
import SeedHTTP
import SeedLicensing
import SeedServer
import SeedTestSupport
import SeedUpstream
import Testing

@Suite("Upstream client against the cloud simulator over real TLS")
struct UpstreamClientTests {
    @Test func downloadSucceedsWithCAVerification() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            let response = try await client.send(sim.download(host: "WS01"))
            #expect(response.status == 200)
            #expect(response.headers["Content-Type"] == "application/zip")
            #expect(response.body.starts(with: Array("PK".utf8)))
            let license = try #require(sim.simulator.license(host: "ws01"))
            #expect(response.body == sim.simulator.package().zip(licenseName: "ws01.lic", license: license))
        }
    }

    @Test func unknownCAIsAVerificationErrorBeforeSending() async throws {
        try await withRunningSimulator { sim in
            let otherDir = sim.directory + "/other"
            try FileManager.default.createDirectory(atPath: otherDir, withIntermediateDirectories: true)
            let other = try SimulatorPKI.make(in: otherDir)
            let client = try sim.client { $0.caFile = other.caFile }
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.download(host: "WS01")) }
            #expect(error?.kind == .certificate)
            #expect(error?.stage == .notSent)
            #expect(sim.simulator.counts.requests["download"] == nil)
        }
    }

    @Test func wrongHostNameIsAVerificationError() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            var request = sim.download(host: "WS01")
            request.url = UpstreamURL(host: "other.test", port: sim.port, target: request.url.target)
            let error = await #expect(throws: UpstreamError.self) { try await client.send(request) }
            #expect(error?.kind == .certificate)
            #expect(error?.stage == .notSent)
            #expect(sim.simulator.counts.licensesIssued == 0)
        }
    }

    @Test func missingCAFileFailsAtStartup() async throws {
        #expect(throws: UpstreamError.self) {
            _ = try UpstreamClient(
                configuration: UpstreamConfiguration(caFile: "/nonexistent/ca.pem"), logger: .discard)
        }
    }

    @Test func connectionRefusedIsNotSent() async throws {
        try await withRunningSimulator { sim in
            // A port that was just free: bind, read the port, close.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            close(fd)
            let client = try sim.client()
            var request = sim.download(host: "WS01")
            request.url.port = UInt16(bigEndian: addr.sin_port)
            let error = await #expect(throws: UpstreamError.self) { try await client.send(request) }
            #expect(error?.kind == .connect)
            #expect(error?.stage == .notSent)
        }
    }

    @Test func connectThroughProxyWithoutCredentials() async throws {
        try await withRunningSimulator { sim in
            let proxy = try LoopbackConnectProxy(credentials: nil)
            defer { proxy.stop() }
            let client = try sim.client {
                $0.proxy = UpstreamProxy(url: "http://127.0.0.1:\(proxy.port)")
                $0.resolve = [:]  // only the proxy may know cloud.test
            }
            let response = try await client.send(sim.portal(host: "WS03"))
            #expect(response.status == 200)
            #expect(proxy.seen.map(\.target) == ["cloud.test:\(sim.port)"])
            #expect(proxy.seen.first?.proxyAuthorization == nil)
        }
    }

    @Test func connectThroughProxyWithBasicCredentials() async throws {
        try await withRunningSimulator { sim in
            let proxy = try LoopbackConnectProxy(credentials: "alice:s3cr%t")
            defer { proxy.stop() }
            let client = try sim.client {
                $0.proxy = UpstreamProxy(url: "http://alice:s3cr%25t@127.0.0.1:\(proxy.port)")
                $0.resolve = [:]
            }
            let response = try await client.send(sim.download(host: "WS04"))
            #expect(response.status == 200)
            #expect(response.body.starts(with: Array("PK".utf8)))
            #expect(proxy.seen.first?.proxyAuthorization == "Basic " + Data("alice:s3cr%t".utf8).base64EncodedString())
        }
    }

    @Test func proxyRefusingCredentialsIsAClearNotSentError() async throws {
        try await withRunningSimulator { sim in
            let proxy = try LoopbackConnectProxy(credentials: "alice:right")
            defer { proxy.stop() }
            let client = try sim.client {
                $0.proxy = UpstreamProxy(url: "http://alice:wrong@127.0.0.1:\(proxy.port)")
                $0.resolve = [:]
            }
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.download(host: "WS05")) }
            #expect(error?.kind == .proxy(status: 407))
            #expect(error?.stage == .notSent)
            #expect(error?.description.contains("407") == true)
            #expect(error?.description.contains("wrong") == false)
            #expect(sim.simulator.counts.licensesIssued == 0)
        }
    }

    @Test func stallBeforeTheAnswerIsOutcomeUnknown() async throws {
        var config = SimulatorConfiguration.testDefaults
        config.latency = .seconds(10)
        try await withRunningSimulator(config) { sim in
            let client = try sim.client { $0.readTimeout = .milliseconds(300) }
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.portal(host: "WS06")) }
            // A timeout (not the answer the server sends after 10 s) proves the 300 ms read timeout ended the
            // wait. No wall-clock bound: on a loaded machine scheduling, not the client, decides elapsed time.
            #expect(error?.kind == .timeout)
            #expect(error?.stage == .outcomeUnknown)
        }
    }

    @Test func delayedAnswerToAnIssuingRequestIsOutcomeUnknownAndTheLicenseWasSpent() async throws {
        try await withRunningSimulator { sim in
            sim.simulator.inject(.delayHead(.seconds(10)), route: .portal)
            let client = try sim.client { $0.readTimeout = .milliseconds(300) }
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.portal(host: "WS20")) }
            #expect(error?.kind == .timeout)
            #expect(error?.stage == .outcomeUnknown)
            // The simulator, like the real portal, issued although the caller never saw the answer.
            #expect(sim.simulator.issued(host: "ws20") == 1)
        }
    }

    @Test func stallMidBodyIsOutcomeUnknown() async throws {
        try await withRunningSimulator { sim in
            sim.simulator.inject(.stall(.seconds(3)), route: .download)
            let client = try sim.client { $0.readTimeout = .milliseconds(300) }
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.download(host: "WS07")) }
            #expect(error?.kind == .timeout)
            #expect(error?.stage == .outcomeUnknown)
            #expect(sim.simulator.issued(host: "ws07") == 1)
        }
    }

    @Test func bodyOverTheBoundIsAnError() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client { $0.maxBodyBytes = 64 * 1024 }
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.download(host: "WS08")) }
            #expect(error?.kind == .bodyTooLarge(limit: 64 * 1024))
            #expect(error?.stage == .answered)
        }
    }

    @Test func resetMidBodyIsConnectionLost() async throws {
        try await withRunningSimulator { sim in
            sim.simulator.inject(.resetMidBody, route: .download)
            let client = try sim.client()
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.download(host: "WS09")) }
            #expect(error?.kind == .connectionLost)
            #expect(error?.stage == .outcomeUnknown)
        }
    }

    @Test func bodyShorterThanContentLengthIsConnectionLost() async throws {
        try await withRunningSimulator { sim in
            sim.simulator.inject(.shortBody, route: .download)
            let client = try sim.client()
            let error = await #expect(throws: UpstreamError.self) { try await client.send(sim.download(host: "WS10")) }
            #expect(error?.kind == .connectionLost)
            #expect(error?.stage == .outcomeUnknown)
        }
    }

    @Test func streamingDeliversTheWholeZipInPieces() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            let stream = try await client.stream(sim.download(host: "WS11"))
            #expect(stream.head.status == 200)
            var body: [UInt8] = []
            var pieces = 0
            while let piece = try await stream.next(maxBytes: 64 * 1024) {
                #expect(piece.count <= 64 * 1024)
                body += piece
                pieces += 1
            }
            #expect(pieces > 4)
            #expect(UInt64(body.count) == stream.head.contentLength)
            let license = try #require(sim.simulator.license(host: "ws11"))
            #expect(body == sim.simulator.package().zip(licenseName: "ws11.lic", license: license))
        }
    }

    @Test func pullCallbacksDeliverTheBodyOnTheStreamsThread() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            let stream = try client.streamBlocking(sim.download(host: "WS18"))
            var body: [UInt8] = []
            while true {
                let piece: Result<[UInt8]?, UpstreamError> = await withCheckedContinuation { c in
                    stream.pull(maxBytes: 32 * 1024) { c.resume(returning: $0) }
                }
                guard let bytes = try piece.get() else { break }
                body += bytes
            }
            #expect(stream.bytesDelivered == UInt64(body.count))
            let license = try #require(sim.simulator.license(host: "ws18"))
            #expect(body == sim.simulator.package().zip(licenseName: "ws18.lic", license: license))
        }
    }

    @Test func ipLiteralHostsVerifyAgainstIPAddressNames() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            var request = sim.portal(host: "WS19")
            request.url.host = "127.0.0.1"
            #expect(try await client.send(request).status == 200)
        }
    }

    @Test func cancellingAStreamStopsIt() async throws {
        var config = SimulatorConfiguration.testDefaults
        config.bandwidthBytesPerSecond = 200_000
        try await withRunningSimulator(config) { sim in
            let client = try sim.client()
            let stream = try await client.stream(sim.download(host: "WS12"))
            _ = try await stream.next()
            stream.cancel()
            let error = await #expect(throws: UpstreamError.self) { _ = try await stream.next() }
            #expect(error?.kind == .cancelled)
        }
    }

    @Test func secretsNeverReachLogsOrErrors() async throws {
        try await withRunningSimulator { sim in
            let sink = SimulatorTestLogSink()
            let client = try sim.client(logger: Logger(level: .debug, sink: sink))
            let ok = try await client.send(sim.download(host: "WS13"))
            #expect(ok.status == 200)
            let bad = try await client.send(sim.download(host: "WS13", token: "very-secret-token"))
            #expect(bad.status == 403)
            sim.simulator.inject(.resetMidBody, route: .download)
            let error = await #expect(throws: UpstreamError.self) {
                try await client.send(sim.download(host: "WS14", token: "sim-token"))
            }
            #expect(!sink.text.isEmpty)
            for secret in ["sim-token", "very-secret-token", "sim-api-key"] {
                #expect(!sink.text.contains(secret))
                #expect(error?.description.contains(secret) == false)
            }
        }
    }

    @Test func portalAnswersAreReadAsLicensesOrErrors() async throws {
        try await withRunningSimulator { sim in
            let client = try sim.client()
            let good = try await client.send(sim.portal(host: "WS15"))
            let license = try VendorAPI.license(from: good, endpoint: "portal")
            #expect(license.count >= VendorAPI.minimumLicenseBytes)
            sim.simulator.inject(.errorBody401, route: .portal)
            let bad = try await client.send(sim.portal(host: "WS16"))
            #expect(bad.status == 200)
            #expect(bad.body == Array("Error: HTTP-401".utf8))
            let error = #expect(throws: UpstreamError.self) { try VendorAPI.license(from: bad, endpoint: "portal") }
            #expect(error?.kind == .errorBody(status: 401))
            #expect(error?.refusalStatus == 401)
            #expect(error?.stage == .answered)
            let short = UpstreamResponse(
                head: UpstreamResponseHead(status: 200, reason: "OK", headers: HTTPHeaders(), contentLength: 5),
                body: Array("hello".utf8))
            let notLicense = #expect(throws: UpstreamError.self) { try VendorAPI.license(from: short, endpoint: "p") }
            #expect(notLicense?.kind == .errorBody(status: nil))
            let denied = try await client.send(sim.portal(host: "WS17", apiKey: "wrong"))
            let denial = #expect(throws: UpstreamError.self) { try VendorAPI.license(from: denied, endpoint: "portal") }
            #expect(denial?.kind == .httpStatus(401))
            #expect(denial?.refusalStatus == 401)
        }
    }
}

@Suite("Upstream client values")
struct UpstreamValueTests {
    @Test func hostHashMatchesAKnownAnswer() {
        // echo -n ws01 | openssl dgst -sha1 -mac hmac -macopt hexkey:b190... -binary | base64 (url, unpadded);
        // python3 hmac with bytes.fromhex(key) agrees.
        #expect(VendorAPI.hostHash(shortHost: "ws01") == "SYBIWKnQxf0_1lruscYvoRPnTzo")
        #expect(VendorAPI.hostHash(shortHost: "WS01") == "SYBIWKnQxf0_1lruscYvoRPnTzo")
        #expect(VendorAPI.hostHash(shortHost: "ws02") == "WG5Fh4Nv4IkTP0LUbjeixkCPRo0")
    }

    @Test func vendorRequestsCarryTheProtocolsHeadersAndPaths() {
        let base = UpstreamURL(host: "cloud.example", port: 443)
        let d = VendorAPI.cloudDownload(
            base: base, token: "T", host: "WS01", type: "server", os: "windows", arch: "amd64", comment: "c")
        #expect(d.method == "GET" && d.url.target == "/api/public/thor10")
        #expect(d.headers["X-Token"] == "T" && d.headers["Authorization"] == "T")
        #expect(d.headers["X-Hostname"] == "WS01" && d.headers["X-Comment"] == "c")
        #expect(d.headers["X-OS"] == "windows" && d.headers["X-Type"] == "server" && d.headers["X-Arch"] == "amd64")
        let p = VendorAPI.portalIssue(base: base, apiKey: "K", type: "client", hash: "abc")
        #expect(p.method == "POST" && p.url.target == "/api/public/contracts/issue/0/client/abc?download=1")
        #expect(p.headers["Authorization"] == "K")
        let m = VendorAPI.mirrorIssue(base: base, token: "T", host: "ws 01&x", type: "server")
        #expect(m.method == "POST" && m.url.target == "/api/v0/licensing/issue")
        #expect(m.body == Array("hostnames=ws%2001%26x&type=server".utf8))
        #expect(m.headers["Accept"] == "application/octet-stream")
        let prefixed = UpstreamURL(string: "https://central.example:8443/mirror/")!
        #expect(VendorAPI.cloudDownload(base: prefixed, token: "T", host: "h", type: "server", os: "windows", arch: "x86")
            .url.target == "/mirror/api/public/thor10")
    }

    @Test func openSSLHostHashAgreesWithSeedLicensing() {
        for host in ["ws01", "WS01", "a", "very-long-host-name-with-many-characters-0123456789", "ünïcode", ""] {
            #expect(VendorAPI.hostHash(shortHost: host) == PortalHMAC.hash(shortHost: host), "\(host)")
        }
        #expect(VendorAPI.portalHostKey == PortalHMAC.keyHex)
    }

    @Test func urlsParse() {
        let u = UpstreamURL(string: "https://portal.example.com/api/x?token=abc")
        #expect(u?.host == "portal.example.com")
        #expect(u?.port == 443)
        #expect(u?.target == "/api/x?token=abc")
        #expect(u?.description == "https://portal.example.com/api/x")
        #expect(UpstreamURL(string: "https://[::1]:8443")?.port == 8443)
        #expect(UpstreamURL(string: "https://[::1]:8443")?.host == "::1")
        #expect(UpstreamURL(string: "http://plain.example.com/") == nil)
        #expect(UpstreamURL(string: "https://user@host/") == nil)
        #expect(UpstreamURL(string: "https://host:99999/") == nil)
    }

    @Test func proxiesParse() {
        let p = UpstreamProxy(url: "http://bob:p%40ss@proxy.corp:3128")
        #expect(p?.host == "proxy.corp")
        #expect(p?.port == 3128)
        #expect(p?.username == "bob")
        #expect(p?.password == "p@ss")
        #expect(p?.description == "proxy.corp:3128")
        #expect(UpstreamProxy(url: "http://proxy.corp")?.port == 8080)
        #expect(UpstreamProxy(url: "https://proxy.corp:1") == nil)
        #expect(UpstreamProxy(url: "http://bob:bad%zz@proxy:1") == nil)
    }
}
