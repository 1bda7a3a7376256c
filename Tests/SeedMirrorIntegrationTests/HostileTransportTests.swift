import Foundation
import Glibc
import SeedHTTPServer
import SeedTLS
import SeedTestSupport
import Testing

/// One malformed or smuggling request: what is sent, the status it must get, and a word of the reason
/// the server gives (in the body and in its log line).
struct HostileRequestCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var statuses: Set<Int>
    var reason: String
    var testDescription: String { name }

    init(_ name: String, _ text: String, _ statuses: Set<Int>, _ reason: String) {
        self.init(name, Array(text.utf8), statuses, reason)
    }
    init(_ name: String, _ bytes: [UInt8], _ statuses: Set<Int>, _ reason: String) {
        self.name = name
        self.bytes = bytes
        self.statuses = statuses
        self.reason = reason
    }

    /// A request that would be answered if the connection survived the hostile one (smuggling probe).
    static let follower = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    static let all: [HostileRequestCase] = {
        let f = follower
        var cases: [HostileRequestCase] = [
            // Framing conflicts (request smuggling).
            .init("CL+TE", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(f)", [400], "both Content-Length and Transfer-Encoding"),
            .init("TE+CL", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n\(f)", [400], "both Content-Length and Transfer-Encoding"),
            .init("duplicate CL, equal", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello\(f)", [400], "more than one Content-Length"),
            .init("duplicate CL, different", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 39\r\n\r\nhello\(f)", [400], "more than one Content-Length"),
            .init("CL list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 39\r\n\r\nhello\(f)", [400], "list of values"),
            .init("negative CL", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n\(f)", [400], "non-negative decimal"),
            .init("CL with plus sign", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello\(f)", [400], "non-negative decimal"),
            .init("CL in hex", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x05\r\n\r\nhello\(f)", [400], "non-negative decimal"),
            .init("CL beyond 64 bits", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999999\r\n\r\n", [413], "exceeds"),
            .init("empty CL", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n\(f)", [400], "empty Content-Length"),
            .init("TE chunked, identity", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n\(f)", [400], "other than chunked"),
            .init("TE xchunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n\(f)", [400], "other than chunked"),
            .init("TE twice", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(f)", [400], "other than chunked"),
            .init("TE in HTTP/1.0", "POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(f)", [400], "HTTP/1.0"),
            .init("space before colon", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n\(f)", [400], "whitespace between header name and colon"),
            .init("obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: EVILMARK\r\n folded\r\n\r\n\(f)", [400], "obsolete line folding"),
            .init("obs-fold on TE", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n\(f)", [400], "obsolete line folding"),
            .init("bare LF request", "GET /healthz HTTP/1.1\nHost: x\n\n\(f)", [400], "bare LF"),
            .init("bare LF inside head", "GET /healthz HTTP/1.1\r\nHost: x\nX-A: EVILMARK\r\n\r\n\(f)", [400], "bare LF"),
            .init("bare CR in value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: EVIL\rMARK\r\n\r\n\(f)", [400], "control character"),
            .init("NUL in header value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: EVIL\u{0}MARK\r\n\r\n\(f)", [400], "control character"),
            .init("NUL in header name", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-\u{0}A: EVILMARK\r\n\r\n\(f)", [400], "invalid character in header name"),
            .init("NUL in target", "GET /heal\u{0}thz HTTP/1.1\r\nHost: x\r\n\r\n\(f)", [400], "bad request target"),
            .init("DEL in target", "GET /heal\u{7F}thz HTTP/1.1\r\nHost: x\r\n\r\n\(f)", [400], "bad request target"),
            .init("UTF-8 in target", "GET /h\u{0435}althz HTTP/1.1\r\nHost: x\r\n\r\n\(f)", [400], "bad request target"),
            .init("ESC in value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \u{1B}[31mEVILMARK\r\n\r\n\(f)", [400], "control character"),
            .init("chunk size line overlong", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "0", count: 2000) + "1\r\na\r\n0\r\n\r\n\(f)", [400], "chunk-size line exceeds"),
            .init("chunk size overflows", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\na\r\n0\r\n\r\n\(f)", [400], "overflows"),
            .init("chunk size Int.max", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n7fffffffffffffff\r\na\r\n0\r\n\r\n\(f)", [413], "chunked body exceeds"),
            .init("negative chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n\(f)", [400], "not hexadecimal"),
            .init("chunk size 0x5", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n\(f)", [400], "invalid character after chunk size"),
            .init("chunk data overrun", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloEVILMARK\r\n0\r\n\r\n\(f)", [400], "not followed by CRLF"),
            .init("bare LF in chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n\(f)", [400], "bare LF"),
            .init("two Host fields", "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: evil\r\n\r\n\(f)", [400], "more than one Host"),
            .init("HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\nX-A: b\r\n\r\n\(f)", [400], "without Host"),
            .init("absolute-form target", "GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n\(f)", [400], "origin form"),
            .init("HTTP/2.0 request line", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n\(f)", [505], "only HTTP/1.0 and HTTP/1.1"),
            .init("HTTP/1.1 with junk version", "GET /healthz HTTP/1.1x\r\nHost: x\r\n\r\n\(f)", [400], "bad HTTP version"),
            .init("unknown method", "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n\(f)", [501], "method not implemented"),
            .init("unsupported Expect", "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: EVILMARK\r\nContent-Length: 1\r\n\r\na\(f)", [400, 417], "Expect"),
            .init("CL body over the limit", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", [413], "exceeds"),
            .init("chunked body over the limit", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "8000\r\n" + String(repeating: "b", count: 0x8000) + "\r\n", count: 40), [413], "chunked body exceeds"),
            // Oversized and endless heads.
            .init("one 20 KiB header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: \(String(repeating: "p", count: 20 * 1024))\r\n\r\n\(f)", [431], "head exceeds"),
            .init("150 header fields", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + (0..<150).map { "X-\($0): v\r\n" }.joined() + "\r\n\(f)", [431], "header fields"),
            .init("20 KiB request line", "GET /\(String(repeating: "a", count: 20 * 1024)) HTTP/1.1\r\nHost: x\r\n\r\n\(f)", [431], "head exceeds"),
            .init("endless head of short lines (never ends)", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Endless: EVILMARK\r\n", count: 256 * 1024 / 21), [431], "header fields"),
            .init("endless head of long lines (never ends)", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Endless: \(String(repeating: "e", count: 1000))\r\n", count: 256), [431], "head exceeds"),
            .init("endless trailers", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" + String(repeating: "X-T: v\r\n", count: 8000), [431], "trailer"),
        ]
        cases.append(.init("empty request line", "\r\n\r\n\r\n \r\n\r\n", [400], "request line"))
        return cases
    }()
}

@Suite(.serialized) struct HostileTransportTests {
    /// Every case on its own connection against one server, one after another, while a well-behaved client
    /// keeps being served.
    @Test func malformedAndSmugglingRequestsAreRefusedWithTheirCause() async throws {
        let cases = HostileRequestCase.all
        try await withHostileServer { s in
            try await whileServingGoodClient(port: s.port, minimumAnswers: 10) {
                for c in cases {
                    let before = s.log.count("request refused")
                    let outcome = try await onThread { try sendHostile(s, c.bytes) }
                    // Exactly one answer: the hostile request's refusal; the smuggled follower is never answered.
                    #expect(outcome.responses.count == 1, "\(c.name): \(outcome.responses.map(\.status)) \(outcome.error ?? "")")
                    guard let r = outcome.responses.first else { continue }
                    #expect(c.statuses.contains(r.status), "\(c.name): status \(r.status) \(r.text)")
                    #expect(r.header("Connection") == "close", "\(c.name)")
                    #expect(r.text.localizedCaseInsensitiveContains(c.reason), "\(c.name): body \(r.text)")
                    #expect(!r.text.contains("EVILMARK"), "\(c.name): the refusal reflects header content")
                    #expect(outcome.closed, "\(c.name): connection left open after a refusal")
                    let logged = s.log.all.suffix(from: 0).filter { $0.message == "request refused" }.dropFirst(before)
                    #expect(logged.count == 1, "\(c.name): \(logged.count) log lines")
                    #expect(
                        logged.contains { $0.metadata.contains { $0.0 == "reason" && $0.1.localizedCaseInsensitiveContains(c.reason) } },
                        "\(c.name): log \(logged.map(\.metadata))")
                    #expect(logged.allSatisfy { $0.metadata.allSatisfy { !$0.1.contains("EVILMARK") } }, "\(c.name): log reflects content")
                }
            }
            print("hostile request cases: \(cases.count)")
            #expect(s.server.stats.requests >= 10)
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func slowlorisHeadsAndBodiesAreCutAtTheirDeadlines() async throws {
        try await withHostileServer(configure: {
            $0.timeouts.requestHead = .milliseconds(1000)
            $0.timeouts.requestBody = .milliseconds(1000)
            $0.eventLoops = 1  // the slow clients share the good client's loop
        }) { s in
            let (statuses, elapsed) = try await whileServingGoodClient(port: s.port) {
                try await onThread {
                    var heads = try (0..<30).map { _ in try s.client() }
                    var bodies = try (0..<10).map { _ in try s.client() }
                    for b in bodies { try b.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n") }
                    let head = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "z", count: 60))\r\n\r\n".utf8)
                    let start = Date()
                    var i = 0
                    // One byte per connection every 100 ms: each would take > 10 s to finish its request.
                    while Date().timeIntervalSince(start) < 1.6 {
                        for c in heads { try? c.send([head[min(i, head.count - 1)]]) }
                        for c in bodies { try? c.send([UInt8(ascii: "b")]) }
                        i += 1
                        Thread.sleep(forTimeInterval: 0.1)
                    }
                    var statuses: [Int] = []
                    for c in heads + bodies { statuses.append((try? c.readResponse().status) ?? -1) }
                    let elapsed = Date().timeIntervalSince(start)
                    heads.removeAll()
                    bodies.removeAll()
                    return (statuses, elapsed)
                }
            }
            #expect(statuses.allSatisfy { $0 == 408 }, "\(statuses)")
            #expect(elapsed < 3)
            #expect(s.log.count("request timed out", detail: "request head") == 30)
            #expect(s.log.count("request timed out", detail: "request body") == 10)
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func slowReadersAreClosedAfterTheWriteStallTimeout() async throws {
        let file = TransportFixtures.file(megabytes: 16)
        try await withHostileServer(files: ["/big": file.path], configure: {
            $0.timeouts.writeStall = .milliseconds(1000)
        }) { s in
            try await whileServingGoodClient(port: s.port) {
                try await onThread {
                    // Each asks for 16 MiB and never reads: a slow-read attack tying up send buffers.
                    let readers = try (0..<8).map { _ in try s.client(timeout: 6) }
                    for r in readers { try r.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n") }
                    Thread.sleep(forTimeInterval: 2.5)
                    // By now the server gave up on every one (only the good client's connection may be open).
                    #expect(s.server.stats.openConnections <= 1, "slow readers still open")
                    for r in readers { r.close() }
                }
            }
            #expect(s.log.count("closing a stalled download") == 8, "\(s.log.lines.suffix(10))")
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func twoThousandHalfOpenConnectionsAreCutByTheHandshakeTimeout() async throws {
        try await withHostileServer(configure: { $0.timeouts.handshake = .milliseconds(1500) }) { s in
            let before = s.server.stats.handshakesFailed
            let (silent, partial) = try await whileServingGoodClient(port: s.port, minimumAnswers: 20) {
                try await onThread { () -> (Int, Int) in
                    var fds: [CInt] = []
                    defer { for fd in fds { Glibc.close(fd) } }
                    let start = Date()
                    for i in 0..<2200 {
                        let fd = try connectTCP(host: "127.0.0.1", port: s.port, receiveTimeout: 4)
                        fds.append(fd)
                        // The last 200 send the first bytes of a ClientHello record and stop.
                        if i >= 2000 {
                            let partial: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]
                            _ = partial.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        }
                    }
                    #expect(Date().timeIntervalSince(start) < TestBudget.seconds(1.5), "connecting took too long for the timeout to be tested")
                    // Every one of them is closed by the server: EOF or reset, without a byte of TLS.
                    var silent = 0
                    var partial = 0
                    var byte = [UInt8](repeating: 0, count: 64)
                    for (i, fd) in fds.enumerated() {
                        let n = byte.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                        if n == 0 || (n < 0 && errno == ECONNRESET) {
                            if i < 2000 { silent += 1 } else { partial += 1 }
                        }
                    }
                    #expect(Date().timeIntervalSince(start) < TestBudget.seconds(4.5))
                    return (silent, partial)
                }
            }
            #expect(silent == 2000)
            #expect(partial == 200)
            #expect(s.server.stats.handshakesFailed - before >= 2200)
            #expect(s.log.count("tls handshake timed out") >= 2200)
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func nonTLSBytesOnTheTLSPortAreClosedWithoutAServerHello() async throws {
        let probes: [(String, [UInt8])] = [
            ("plain HTTP", Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("HTTP/2 preface", Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)),
            ("SSH banner", Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)),
            ("SSLv2 ClientHello", [0x80, 0x2E, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10] + [UInt8](repeating: 0x07, count: 37)),
            ("64 KiB of random bytes", hostileBytes(64 * 1024, seed: 1)),
            ("record claiming 65535 bytes", [0x16, 0x03, 0x01, 0xFF, 0xFF] + hostileBytes(200, seed: 2)),
            ("4 KiB of zero bytes", [UInt8](repeating: 0, count: 4096)),
            ("alert record first", [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
            ("application data first", [0x17, 0x03, 0x03, 0x00, 0x10] + hostileBytes(16, seed: 3)),
        ]
        try await withHostileServer(configure: { $0.timeouts.handshake = .milliseconds(1500) }) { s in
            try await whileServingGoodClient(port: s.port) {
                for (name, bytes) in probes {
                    let start = Date()
                    let (reply, closed) = try await onThread { try rawExchange(port: s.port, bytes, timeout: 4) }
                    #expect(closed, "\(name)")
                    #expect(Date().timeIntervalSince(start) < 2.5, "\(name) was not closed promptly")
                    // Nothing, or an alert record; never a handshake record (a ServerHello).
                    #expect(reply.isEmpty || reply[0] == 0x15, "\(name) got \(reply.prefix(8))")
                }
            }
            let logged = s.log.count("tls handshake failed") + s.log.count("tls handshake timed out")
            #expect(logged >= probes.count, "\(s.log.lines)")
            #expect(s.log.count("tls handshake failed", detail: "wrong version number") >= 1, "\(s.log.lines)")
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func garbageAfterAValidClientHelloFailsTheHandshakeCleanly() async throws {
        let hello = try makeClientHello(context: TransportFixtures.clientContext)
        let variants: [(String, [UInt8])] = [
            ("random bytes", hostileBytes(4096, seed: 11)),
            ("application data record with random content", [0x17, 0x03, 0x03, 0x01, 0x00] + hostileBytes(256, seed: 12)),
            ("plaintext handshake record after ServerHello", [0x16, 0x03, 0x03, 0x00, 0x40] + hostileBytes(64, seed: 13)),
            ("oversized record header", [0x17, 0x03, 0x03, 0xFF, 0xFF] + hostileBytes(512, seed: 14)),
            ("a second ClientHello", hello),
            ("change cipher spec with a bad body", [0x14, 0x03, 0x03, 0x00, 0x03, 0x01, 0x02, 0x03]),
            ("unknown record type", [0x42, 0x03, 0x03, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]),
        ]
        try await withHostileServer(configure: { $0.timeouts.handshake = .milliseconds(1500) }) { s in
            let before = s.server.stats.handshakesFailed
            try await whileServingGoodClient(port: s.port) {
                for (name, garbage) in variants {
                    let (firstByte, closed, elapsed) = try await onThread { () -> (UInt8?, Bool, Double) in
                        let fd = try connectTCP(host: "127.0.0.1", port: s.port, receiveTimeout: 4)
                        defer { Glibc.close(fd) }
                        _ = hello.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
                        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                        let first = n > 0 ? buffer[0] : nil
                        let start = Date()
                        _ = garbage.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        while true {
                            let m = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                            if m > 0 { continue }
                            return (first, m == 0 || errno == ECONNRESET, Date().timeIntervalSince(start))
                        }
                    }
                    #expect(firstByte == 0x16, "\(name): no ServerHello to the valid ClientHello")
                    #expect(closed, "\(name)")
                    #expect(elapsed < 2.5, "\(name) took \(elapsed) s to be closed")
                }
            }
            #expect(s.server.stats.handshakesFailed - before >= UInt64(variants.count))
            #expect(s.server.stats.handshakesCompleted >= 1)  // the good client's
            let logged = s.log.count("tls handshake failed") + s.log.count("tls handshake timed out")
            #expect(logged >= variants.count, "\(s.log.lines)")
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func clientInitiatedRenegotiationIsRefused() async throws {
        try await withHostileServer { s in
            let verdicts = try await whileServingGoodClient(port: s.port) {
                try await onThread { () -> [(String?, String?)] in
                    var verdicts: [(String?, String?)] = []
                    for _ in 0..<10 {
                        let c = try RawOpenSSLClient(port: s.port)
                        #expect(c.protocolVersion == "TLSv1.2")
                        // Before: a request works on this connection.
                        let before = c.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        #expect(before?.hasPrefix("HTTP/1.1 200") == true, "\(before ?? "nil")")
                        let verdict = c.renegotiate()
                        let after = c.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        verdicts.append((verdict, after))
                    }
                    return verdicts
                }
            }
            for (verdict, after) in verdicts {
                // OpenSSL's client reports the server's no_renegotiation alert; the handshake never reran.
                #expect(verdict?.contains("no renegotiation") == true, "\(verdict ?? "renegotiation completed")")
                // The connection is unusable from then on (the client failed it); no second answer is given.
                #expect(after == nil || after?.isEmpty == true || after?.hasPrefix("HTTP/1.1 200") == true)
            }
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
        }
    }
}
