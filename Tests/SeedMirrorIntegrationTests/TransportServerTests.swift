import Foundation
import Glibc
import SeedHTTPServer
import SeedPosix
import SeedStore
import SeedCore
import SeedTLS
import SeedTestSupport
import Testing

@Suite(.serialized) struct TransportServerTests {
    @Test func tls13AndEachLegacySuiteFetchHealthz() async throws {
        try await withTransportServer { s in
            let port = s.port
            try await onThread {
                let c = try TLSTestClient(host: "127.0.0.1", port: port, context: TransportFixtures.clientContext)
                #expect(c.engine.protocolVersion == "TLSv1.3")
                #expect(c.engine.peerVerified)
                #expect(c.engine.peerChainLength >= 1)
                for name in ["localhost", "127.0.0.1", "::1"] { #expect(c.engine.peerCertificateMatches(name)) }
                #expect(!c.engine.peerCertificateMatches("example.com"))
                let r = try c.request("GET", "/healthz")
                #expect(r.status == 200 && r.text == "ok\n")
                for suite in ["ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384"] {
                    let ctx = try TLSClientContext(
                        caFile: TransportFixtures.certificates.caFile, maximumVersion: .tls12, cipherList: suite)
                    let legacy = try TLSTestClient(host: "127.0.0.1", port: port, context: ctx, serverName: "localhost")
                    #expect(legacy.engine.protocolVersion == "TLSv1.2")
                    #expect(legacy.engine.cipherName == suite)
                    #expect(legacy.engine.peerVerified)
                    let r = try legacy.request("GET", "/healthz")
                    #expect(r.status == 200 && r.text == "ok\n", "suite \(suite)")
                }
            }
        }
    }

    @Test func oldProtocolVersionsAreRefused() async throws {
        try await withTransportServer { s in
            let port = s.port
            for version: UInt16 in [0x0300, 0x0301, 0x0302] {
                let (reply, closed) = try await onThread { try rawExchange(port: port, legacyClientHello(version: version)) }
                #expect(closed, "version \(version)")
                // Either nothing or an alert record; never a ServerHello (handshake record, type 22).
                #expect(reply.isEmpty || reply[0] == 0x15, "version \(version) got \(reply.prefix(8))")
            }
            #expect(s.server.stats.handshakesFailed >= 3)
            #expect(s.server.stats.handshakesCompleted == 0)
        }
    }

    @Test func plainTextOnTheTLSPortIsClosedCleanly() async throws {
        try await withTransportServer { s in
            let port = s.port
            let (_, closed) = try await onThread {
                try rawExchange(port: port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            }
            #expect(closed)
            #expect(await eventually(2) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func thousandRequestsOnOneKeepAliveConnection() async throws {
        try await withTransportServer { s in
            try await onThread {
                let c = try s.client()
                for i in 0..<1000 {
                    let r = try c.request("GET", i % 2 == 0 ? "/healthz" : "/echo", body: i % 2 == 0 ? [] : Array("n\(i)".utf8))
                    #expect(r.status == 200)
                    if i % 2 == 1 { #expect(r.text == "n\(i)") }
                }
            }
            #expect(s.server.stats.requests == 1000)
            #expect(s.server.stats.acceptedConnections == 1)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withTransportServer { s in
            try await onThread {
                let c = try s.client()
                var batch = ""
                for i in 0..<20 {
                    let body = "body-\(i)"
                    batch += i % 3 == 0 ? "GET /deferred HTTP/1.1\r\nHost: x\r\n\r\n"
                        : "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                }
                try c.send(batch)
                for i in 0..<20 {
                    let r = try c.readResponse()
                    #expect(r.status == 200)
                    #expect(r.text == (i % 3 == 0 ? "deferred ok\n" : "body-\(i)"), "response \(i)")
                }
            }
        }
    }

    @Test func expectContinueIsHonoured() async throws {
        try await withTransportServer { s in
            try await onThread {
                let c = try s.client()
                try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                let interim = try c.readHead()
                #expect(interim.status == 100)
                try c.send("hello")
                let r = try c.readResponse()
                #expect(r.status == 200 && r.text == "hello")
            }
        }
    }

    @Test func rangesHeadAndStreams() async throws {
        let file = TransportFixtures.file(megabytes: 2)
        try await withTransportServer(files: ["/f": file.path]) { s in
            try await onThread {
                let c = try s.client()
                let data = try Data(contentsOf: URL(fileURLWithPath: file.path))
                let whole = try c.request("GET", "/f")
                #expect(whole.status == 200 && whole.body.count == data.count && whole.header("Accept-Ranges") == "bytes")
                // A range straddling the boundary between the two file segments.
                let mid = data.count / 2
                let r = try c.request("GET", "/f", headers: [("Range", "bytes=\(mid - 10)-\(mid + 9)")])
                #expect(r.status == 206)
                #expect(r.header("Content-Range") == "bytes \(mid - 10)-\(mid + 9)/\(data.count)")
                #expect(r.body == Array(data[(mid - 10)...(mid + 9)]))
                let stale = try c.request("GET", "/f", headers: [("Range", "bytes=0-9"), ("If-Range", "\"old\"")])
                #expect(stale.status == 200 && stale.body.count == data.count)
                let fresh = try c.request("GET", "/f", headers: [("Range", "bytes=0-9"), ("If-Range", "\"v1\"")])
                #expect(fresh.status == 206 && fresh.body == Array(data[0..<10]))
                let bad = try c.request("GET", "/f", headers: [("Range", "bytes=\(data.count)-")])
                #expect(bad.status == 416 && bad.header("Content-Range") == "bytes */\(data.count)")
                let head = try c.request("HEAD", "/f")
                #expect(head.status == 200 && head.header("Content-Length") == "\(data.count)" && head.body.isEmpty)
                let stream = try c.request("GET", "/stream")
                #expect(stream.status == 200 && stream.body == [UInt8](repeating: 0x5A, count: 100_000))
                let after = try c.request("GET", "/healthz")
                #expect(after.status == 200)
            }
        }
    }

    @Test func accessLogRedactsTokensAndStatsCount() async throws {
        try await withTransportServer { s in
            try await onThread {
                let c = try s.client()
                _ = try c.request("GET", "/healthz?token=s3cret&x=1")
                _ = try c.request("GET", "/missing")
            }
            #expect(await eventually(2) { s.accessLog.entries.withLock { $0.count } == 2 })
            let entries = s.accessLog.entries.withLock { $0 }
            #expect(entries[0].path == "/healthz?token=REDACTED&x=1" || !entries[0].path.contains("s3cret"))
            #expect(entries[0].status == 200 && entries[1].status == 404)
            #expect(entries[0].tlsVersion == "TLSv1.3" && entries[0].clientAddress == "127.0.0.1")
            #expect(s.server.stats.bytesSent > 0 && s.server.stats.handshakesCompleted == 1)
        }
    }

    @Test func aClientLeavingMidStreamCancelsTheStream() async throws {
        try await withTransportServer(configure: { $0.timeouts.writeStall = .milliseconds(800) }) { s in
            try await onThread {
                let c = try s.client()
                try c.send("GET /hanging HTTP/1.1\r\nHost: x\r\n\r\n")
                let head = try c.readHead()
                #expect(head.status == 200 && head.header("Content-Length") == "13")
                c.close()
            }
            let stream = try #require(HangingStream.last.withLock { $0 })
            // The head can reach the client before the loop's first pull returns, so the pull is awaited.
            #expect(await eventually(3) { stream.pulled.load(ordering: .relaxed) })
            #expect(await eventually(3) { stream.cancelled.load(ordering: .relaxed) })
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })

            // A producer that never delivers is cut off after the stall timeout while the client waits.
            let closed = try await onThread {
                let c = try s.client(timeout: 5)
                try c.send("GET /hanging HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try c.readHead()
                return try c.waitForClose()
            }
            #expect(closed)
            let second = try #require(HangingStream.last.withLock { $0 })
            let cancelled = second.cancelled.load(ordering: .relaxed)
            #expect(cancelled && second !== stream)
        }
    }

    @Test func limitsAnswerWithStatusAndReason() async throws {
        try await withTransportServer(configure: {
            $0.limits.maxHeadBytes = 2048
            $0.limits.maxBodyBytes = 1000
            $0.maxConnections = 4
        }) { s in
            try await onThread {
                let big = try s.client()
                try big.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: \(String(repeating: "a", count: 4000))\r\n\r\n")
                let r1 = try big.readResponse()
                #expect(r1.status == 431 && r1.header("Connection") == "close" && !r1.text.isEmpty)
                #expect(try big.waitForClose())

                let body = try s.client()
                try body.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
                let r2 = try body.readResponse()
                #expect(r2.status == 413)
                #expect(try body.waitForClose())

                let bad = try s.client()
                try bad.send("NONSENSE\r\n\r\n")
                let r3 = try bad.readResponse()
                #expect(r3.status == 400 || r3.status == 501)
            }
            // maxConnections: 4 open, the 5th is closed at once instead of hanging.
            try await onThread {
                let held = try (0..<4).map { _ in try s.client() }
                let start = Date()
                let refused = Result { try s.client(timeout: 3) }
                #expect((try? refused.get()) == nil)
                #expect(Date().timeIntervalSince(start) < 2)
                #expect(try held[0].request("GET", "/healthz").status == 200)
            }
            #expect(s.server.stats.refusedConnections >= 1)
        }
    }

    @Test func timeoutsCutOffSlowClientsWithoutBlockingOthers() async throws {
        let file = TransportFixtures.file(megabytes: 64)
        try await withTransportServer(files: ["/big": file.path], configure: {
            $0.timeouts.handshake = .milliseconds(800)
            $0.timeouts.requestHead = .milliseconds(1500)
            $0.timeouts.idle = .milliseconds(800)
            $0.timeouts.writeStall = .milliseconds(1000)
            $0.timeouts.requestBody = .milliseconds(800)
            $0.eventLoops = 1  // everyone shares one loop: the slow ones must not block the fast one
        }) { s in
            async let slowloris: (Int, Double) = onThread {
                let c = try s.client()
                let start = Date()
                let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "z", count: 40))\r\n\r\n".utf8)
                var status = 0
                for byte in request {
                    do { try c.send([byte]) } catch { break }
                    Thread.sleep(forTimeInterval: 0.1)
                    if Date().timeIntervalSince(start) > 1.7 { break }
                }
                status = (try? c.readResponse().status) ?? -1
                return (status, Date().timeIntervalSince(start))
            }
            async let others: Int = onThread {
                let c = try s.client()
                var ok = 0
                let end = Date().addingTimeInterval(1.8)
                while Date() < end {
                    if try c.request("GET", "/healthz").status == 200 { ok += 1 }
                    Thread.sleep(forTimeInterval: 0.01)
                }
                return ok
            }
            async let handshake: Bool = onThread {
                let (_, closed) = try rawExchange(port: s.port, [], timeout: 3)
                return closed
            }
            async let idle: Bool = onThread {
                let c = try s.client(timeout: 3)
                _ = try c.request("GET", "/healthz")
                return try c.waitForClose()
            }
            async let body: Int = onThread {
                let c = try s.client(timeout: 3)
                try c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
                return try c.readResponse().status
            }
            async let stalled: Bool = onThread {
                let c = try s.client(timeout: 5)
                try c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                Thread.sleep(forTimeInterval: 2.5)  // never read: the server must give up on the write
                var received = 0
                while (try? c.fill()) == true { received += 1 }
                return c.peerClosed
            }
            let (status, elapsed) = try await slowloris
            #expect(status == 408)
            #expect(elapsed < 2.4, "cut off at the deadline from the first byte, not reset per byte")
            #expect(try await others > 20)
            #expect(try await handshake)
            #expect(try await idle)
            #expect(try await body == 408)
            _ = try await stalled
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func largeDownloadToAStallingClientKeepsMemoryFlat() async throws {
        let file = TransportFixtures.file(megabytes: 200)
        try await withTransportServer(files: ["/big": file.path]) { s in
            let before = residentKilobytes()
            let peak = Lock(before)
            let (digest, count) = try await onThread {
                let c = try s.client(timeout: 20)
                try c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                let head = try c.readHead()
                #expect(head.status == 200)
                Thread.sleep(forTimeInterval: 5)  // stop reading
                let paused = residentKilobytes()
                print("RSS while the client pauses: \(paused) KiB")
                peak.withLock { $0 = max($0, paused) }
                let hasher = SHA256Hasher()
                var got: UInt64 = 0
                let total = UInt64(head.header("Content-Length") ?? "0") ?? 0
                try c.readBody(count: total) { piece in
                    hasher.update(piece)
                    got += UInt64(piece.count)
                    if got < 8 << 20 {
                        Thread.sleep(forTimeInterval: 0.0005)  // slowly, then fast
                    }
                    if got % (16 << 20) < UInt64(piece.count) { peak.withLock { $0 = max($0, residentKilobytes()) } }
                }
                return (hasher.finalHex(), got)
            }
            #expect(count == 200 << 20)
            #expect(digest == file.sha256)
            let growth = peak.withLock { $0 } - before
            print("200 MB download to a stalling client grew RSS by \(growth) KiB (from \(before) KiB)")
            #expect(!TestBudget.checksMemory || growth < 10 * 1024, "server RSS grew by \(growth) KiB")
        }
    }

    @Test func replacingTheTLSContextKeepsOpenDownloadsGoing() async throws {
        let file = TransportFixtures.file(megabytes: 32)
        try await withTransportServer(files: ["/big": file.path]) { s in
            let old = TransportFixtures.certificates.serials
            let new = TransportFixtures.otherCertificates.serials
            let newContext = try TLSServerContext(configuration: TransportFixtures.otherCertificates.serverConfiguration)
            let newClientContext = try TLSClientContext(caFile: TransportFixtures.otherCertificates.caFile)
            let digest = try await onThread {
                let c = try s.client(timeout: 20)
                #expect(old.contains(c.engine.peerCertificateSerial ?? "-"))
                try c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                let head = try c.readHead()
                let hasher = SHA256Hasher()
                var got: UInt64 = 0
                let total = UInt64(head.header("Content-Length") ?? "0") ?? 0
                var swapped = false
                try c.readBody(count: total) { piece in
                    hasher.update(piece)
                    got += UInt64(piece.count)
                    if !swapped && got > 4 << 20 {
                        swapped = true
                        s.server.replaceTLSContext(newContext)
                        let fresh = try? TLSTestClient(host: "127.0.0.1", port: s.port, context: newClientContext)
                        #expect(new.contains(fresh?.engine.peerCertificateSerial ?? "-"))
                        #expect((try? fresh?.request("GET", "/healthz").status) == 200)
                    }
                }
                return hasher.finalHex()
            }
            #expect(digest == file.sha256)
        }
    }

    @Test func descriptorsReturnToTheStartingCount() async throws {
        // Counted per port through /proc/self/fd, so servers of other suites running in parallel do not matter.
        var ports: [UInt16] = []
        try await withTransportServer(configure: { $0.listeners.append(ListenAddress(host: "::1", port: 0)) }) { s in
            #expect(s.addresses.count == 2 && s.addresses.allSatisfy { $0.port != 0 })
            ports = s.addresses.map(\.port)
            let v4port = s.port
            let v6port = s.addresses[1].port
            // Two loops, each with its own SO_REUSEPORT socket per listener.
            #expect(socketDescriptors(port: v4port) == 2 && socketDescriptors(port: v6port) == 2)
            try await onThread {
                var kept: [TLSTestClient] = []
                for i in 0..<20 {
                    let c = i % 2 == 0
                        ? try s.client()
                        : try TLSTestClient(host: "::1", port: v6port, context: TransportFixtures.clientContext)
                    #expect(try c.request("GET", i % 4 == 1 ? "/context" : "/healthz").status == 200)
                    if i % 3 == 0 { c.close() } else { kept.append(c) }
                }
                // Server side plus client side of every open connection, plus the listeners.
                #expect(socketDescriptors(port: v4port) + socketDescriptors(port: v6port) == 4 + 2 * kept.count)
                for c in kept { c.close() }
            }
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
            #expect(await eventually(2) { socketDescriptors(port: v4port) == 2 && socketDescriptors(port: v6port) == 2 })
        }
        #expect(ports.allSatisfy { socketDescriptors(port: $0) == 0 })
    }

    @Test func shutdownLetsRunningResponsesFinish() async throws {
        let file = TransportFixtures.file(megabytes: 16)
        var configuration = HTTPServerConfiguration(listeners: [ListenAddress(host: "127.0.0.1", port: 0)])
        configuration.eventLoops = 1
        let server = HTTPSServer(
            configuration: configuration,
            tls: try TLSServerContext(configuration: TransportFixtures.certificates.serverConfiguration),
            handler: TransportTestHandler(files: ["/big": try SharedFile(openingForReading: file.path)]),
            logger: .discard, accessLog: nil)
        let port = try server.start()[0].port
        let download = Task {
            try await onThread {
                let c = try TLSTestClient(host: "127.0.0.1", port: port, context: TransportFixtures.clientContext)
                let r = try c.request("GET", "/big")
                return (r.status, r.body.count, r.header("Connection"))
            }
        }
        #expect(await eventually(3) { server.stats.requests == 1 })
        await server.shutdown(grace: .seconds(10))
        let (status, count, _) = try await download.value
        #expect(status == 200 && count == 16 << 20)
        #expect(server.stats.openConnections == 0)
        #expect((try? connectTCP(host: "127.0.0.1", port: port)) == nil)
    }
}
