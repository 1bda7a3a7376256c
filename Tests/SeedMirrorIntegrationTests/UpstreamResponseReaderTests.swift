import SeedHTTP
import SeedServer
import SeedTestSupport
import Testing

@testable import SeedUpstream

/// Hands out prepared bytes: first `firstRead` bytes, then at most `step` per read, then end of stream.
private final class MemorySource: ResponseByteSource {
    let endpoint = "memory"
    private let bytes: [UInt8]
    private var offset = 0
    private var firstRead: Int?
    private let step: Int

    init(_ bytes: [UInt8], firstRead: Int? = nil, step: Int = .max) {
        self.bytes = bytes
        self.firstRead = firstRead
        self.step = step
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(UpstreamError) -> Int {
        var n = min(buffer.count, bytes.count - offset, step)
        if let f = firstRead {
            n = min(n, max(f, 1))
            firstRead = nil
        }
        for i in 0..<n { buffer[i] = bytes[offset + i] }
        offset += n
        return n
    }

    func abort() {}
}

private func readAll(_ source: MemorySource, method: String = "GET", limit: UInt64 = 1 << 20, maxHead: Int = 4096)
    throws(UpstreamError) -> (UpstreamResponseHead, [UInt8])
{
    let reader = ResponseReader(connection: source, bodyLimit: limit, maxHeadBytes: maxHead)
    let head = try reader.readHead(requestMethod: method)
    var body: [UInt8] = []
    while let piece = try reader.readBody(maxBytes: 7) { body += piece }
    return (head, body)
}

@Suite("Upstream response reader")
struct UpstreamResponseReaderTests {
    static let lengthAnswer = Array(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A:  spaced  \r\n\r\nhello world".utf8)
    static let chunkedAnswer = Array(
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\nwonderful!\r\n0\r\nTrailer: x\r\n\r\n").utf8)

    @Test func contentLengthBodySplitAtEveryOffset() throws {
        for split in 0...Self.lengthAnswer.count {
            let (head, body) = try readAll(MemorySource(Self.lengthAnswer, firstRead: split))
            #expect(head.status == 200)
            #expect(head.contentLength == 11)
            #expect(head.headers["x-a"] == "spaced")
            #expect(body == Array("hello world".utf8))
        }
        let (_, bytewise) = try readAll(MemorySource(Self.lengthAnswer, step: 1))
        #expect(bytewise == Array("hello world".utf8))
    }

    @Test func chunkedBodySplitAtEveryOffset() throws {
        for split in 0...Self.chunkedAnswer.count {
            let (head, body) = try readAll(MemorySource(Self.chunkedAnswer, firstRead: split))
            #expect(head.contentLength == nil)
            #expect(body == Array("hello wonderful!".utf8))
        }
        let (_, bytewise) = try readAll(MemorySource(Self.chunkedAnswer, step: 1))
        #expect(bytewise == Array("hello wonderful!".utf8))
    }

    @Test func bodyUntilCloseAndBodilessAnswers() throws {
        let (_, body) = try readAll(MemorySource(Array("HTTP/1.0 200 OK\r\n\r\nrest of it".utf8)))
        #expect(body == Array("rest of it".utf8))
        let (_, none) = try readAll(
            MemorySource(Array("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n".utf8)), method: "HEAD")
        #expect(none.isEmpty)
        let (h204, empty) = try readAll(MemorySource(Array("HTTP/1.1 204 No Content\r\n\r\n".utf8)))
        #expect(h204.status == 204 && empty.isEmpty)
    }

    @Test func truncatedBodiesAreConnectionLost() {
        let short = Array("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nonly ten b".utf8)
        let e1 = #expect(throws: UpstreamError.self) { try readAll(MemorySource(short)) }
        #expect(e1?.kind == .connectionLost && e1?.stage == .outcomeUnknown)
        let cut = Array(Self.chunkedAnswer.prefix(Self.chunkedAnswer.count - 20))
        let e2 = #expect(throws: UpstreamError.self) { try readAll(MemorySource(cut)) }
        #expect(e2?.kind == .connectionLost)
        let e3 = #expect(throws: UpstreamError.self) { try readAll(MemorySource(Array("HTTP/1.1 200".utf8))) }
        #expect(e3?.kind == .connectionLost)
    }

    @Test func malformedAnswersAreRejected() {
        let cases = [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "ICY 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
        ]
        for text in cases {
            let e = #expect(throws: UpstreamError.self, "\(text)") { try readAll(MemorySource(Array(text.utf8))) }
            #expect(e?.kind == .malformedResponse, "\(text)")
        }
        let big = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Pad: 0123456789\r\n", count: 400) + "\r\n"
        let e = #expect(throws: UpstreamError.self) { try readAll(MemorySource(Array(big.utf8)), maxHead: 4096) }
        #expect(e?.kind == .malformedResponse)
    }

    @Test func bodyLimitStopsAnEndlessBody() {
        let answer = Array("HTTP/1.1 200 OK\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 5000)
        let e = #expect(throws: UpstreamError.self) { try readAll(MemorySource(answer), limit: 1000) }
        #expect(e?.kind == .bodyTooLarge(limit: 1000))
    }

    @Test func chunkedAnswersOverTheWire() async throws {
        var config = SimulatorConfiguration.testDefaults
        config.chunkedTransfer = true
        try await withRunningSimulator(config) { sim in
            let client = try sim.client()
            let response = try await client.send(sim.download(host: "CH1"))
            #expect(response.status == 200)
            #expect(response.head.contentLength == nil)
            #expect(response.headers["Transfer-Encoding"] == "chunked")
            let license = try #require(sim.simulator.license(host: "ch1"))
            #expect(response.body == sim.simulator.package().zip(licenseName: "ch1.lic", license: license))
            sim.simulator.inject(.shortBody, route: .download)
            let stream = try await client.stream(sim.download(host: "CH2"))
            let error = await #expect(throws: UpstreamError.self) { while try await stream.next() != nil {} }
            #expect(error?.kind == .connectionLost)
        }
    }
}
