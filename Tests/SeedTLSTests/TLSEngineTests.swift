import Foundation
import SeedTLS
import SeedTestSupport
import Testing

enum TLSFixtures {
    static let certificates: TransportTestCertificates = {
        let d = NSTemporaryDirectory() + "seed-tls-tests-\(getpid())"
        return try! TransportTestCertificates.make(in: d)
    }()
    static let server: TLSServerContext = { try! TLSServerContext(configuration: certificates.serverConfiguration) }()
    static let client: TLSClientContext = { try! TLSClientContext(caFile: certificates.caFile) }()
}

/// Moves ciphertext between two engines until both handshakes finish or one fails.
@discardableResult
func pumpHandshake(_ client: TLSEngine, _ server: TLSEngine) throws -> Int {
    var rounds = 0
    while !(client.isHandshakeComplete && server.isHandshakeComplete) {
        rounds += 1
        guard rounds < 20 else { throw TestClientError("handshake did not converge") }
        if case .failed(let e) = client.handshake() { throw e }
        server.receive(client.takeOutput())
        if case .failed(let e) = server.handshake() { throw e }
        client.receive(server.takeOutput())
    }
    client.receive(server.takeOutput())
    server.receive(client.takeOutput())
    return rounds
}

/// Reads all plaintext the engine can produce from what it has received.
func drain(_ engine: TLSEngine) throws -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
        let status = buffer.withUnsafeMutableBytes { engine.read(into: $0) }
        switch status {
        case .bytes(let n): out += buffer[0..<n]
        case .wantInput, .closed: return out
        case .failed(let e): throw e
        }
    }
}

@Test func tls13HandshakeAndDataInMemory() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: TLSFixtures.client, serverName: "localhost")
    try pumpHandshake(client, server)
    #expect(client.protocolVersion == "TLSv1.3" && server.protocolVersion == "TLSv1.3")
    #expect(client.peerVerified && TLSFixtures.certificates.serials.contains(client.peerCertificateSerial ?? "-"))
    #expect(client.peerCertificateMatches("localhost") && client.peerCertificateMatches("::1"))

    let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    try client.write(Array("GET / HTTP/1.1\r\n\r\n".utf8))
    server.receive(client.takeOutput())
    #expect(String(decoding: try drain(server), as: UTF8.self) == "GET / HTTP/1.1\r\n\r\n")
    try server.write(big)
    let ciphertext = server.takeOutput()
    #expect(ciphertext.count > big.count && ciphertext.count < big.count + 64 * 30)  // 16 KiB records, small overhead
    // Fed in odd-sized pieces that split records, the client still decrypts everything.
    var got: [UInt8] = []
    for i in stride(from: 0, to: ciphertext.count, by: 7_001) {
        client.receive(Array(ciphertext[i..<min(i + 7_001, ciphertext.count)]))
        got += try drain(client)
    }
    #expect(got == big)

    server.close()
    client.receive(server.takeOutput())
    var buffer = [UInt8](repeating: 0, count: 64)
    let status = buffer.withUnsafeMutableBytes { client.read(into: $0) }
    guard case .closed = status else {
        Issue.record("close_notify not seen: \(status)")
        return
    }
    server.releaseIdleBuffers()
    #expect(server.queuedCapacity == 0)
}

@Test(arguments: ["ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384"])
func tls12LegacySuitesNegotiate(suite: String) throws {
    let ctx = try TLSClientContext(caFile: TLSFixtures.certificates.caFile, maximumVersion: .tls12, cipherList: suite)
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: ctx, serverName: "localhost")
    try pumpHandshake(client, server)
    #expect(client.protocolVersion == "TLSv1.2")
    #expect(server.cipherName == suite)
}

@Test func suitesOutsideTheListAreRefused() throws {
    // A client that only offers suites the server must never take cannot complete a handshake.
    for suite in ["AES128-SHA", "ECDHE-RSA-AES128-SHA"] {
        let ctx = try TLSClientContext(caFile: TLSFixtures.certificates.caFile, maximumVersion: .tls12, cipherList: suite)
        let server = try TLSEngine(server: TLSFixtures.server)
        let client = try TLSEngine(client: ctx, serverName: "localhost")
        #expect(throws: TLSError.self, "suite \(suite)") { try pumpHandshake(client, server) }
    }
}

@Test func verificationFailuresAreReported() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: TLSFixtures.client, serverName: "wrong.example")
    let error = #expect(throws: TLSError.self) { try pumpHandshake(client, server) }
    #expect(error?.description.contains("certificate verify failed") == true)

    let otherCA = try TLSClientContext(caFile: nil)  // system store: our test CA is not in it
    let client2 = try TLSEngine(client: otherCA, serverName: "localhost")
    let server2 = try TLSEngine(server: TLSFixtures.server)
    #expect(throws: TLSError.self) { try pumpHandshake(client2, server2) }
}

@Test func sessionsResume() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: TLSFixtures.client, serverName: "localhost")
    try pumpHandshake(client, server)
    _ = try drain(client)  // processes the TLS 1.3 NewSessionTicket
    let session = try #require(client.exportSession())
    let server2 = try TLSEngine(server: TLSFixtures.server)
    let client2 = try TLSEngine(client: TLSFixtures.client, serverName: "localhost")
    try client2.resumeSession(session)
    try pumpHandshake(client2, server2)
    #expect(client2.sessionReused && server2.sessionReused)
}

@Test func badConfigurationsNameTheCause() throws {
    var config = TLSFixtures.certificates.serverConfiguration
    config.certificates[0].certificateChainPath = "/nonexistent/cert.pem"
    let e1 = #expect(throws: TLSError.self) { try TLSServerContext(configuration: config) }
    #expect(e1?.description.contains("/nonexistent/cert.pem") == true)

    var mismatched = TLSFixtures.certificates.serverConfiguration
    mismatched.certificates = [
        CertificateKeyPair(
            certificateChainPath: TLSFixtures.certificates.rsa.certificateChainPath,
            privateKeyPath: TLSFixtures.certificates.ecdsa.privateKeyPath)
    ]
    #expect(throws: TLSError.self) { try TLSServerContext(configuration: mismatched) }

    var weak = TLSFixtures.certificates.serverConfiguration
    weak.cipherList = "RC4-SHA:DES-CBC3-SHA:NULL-SHA"
    let e3 = #expect(throws: TLSError.self) { try TLSServerContext(configuration: weak) }
    #expect(e3?.description.contains("cipher list") == true)

    #expect(throws: TLSError.self) { try TLSServerContext(configuration: TLSServerConfiguration(certificates: [])) }
}

@Test func garbageInputFailsTheHandshake() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    server.receive(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
    guard case .failed = server.handshake() else {
        Issue.record("plain HTTP accepted as a handshake")
        return
    }
}
