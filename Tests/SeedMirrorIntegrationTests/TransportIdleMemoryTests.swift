import Foundation
import Glibc
import SeedHTTPServer
import SeedTestSupport
import Testing

/// Opens many TLS connections from another process (so only the server's memory is in our RSS), makes one
/// request on each and leaves them idle.
private let idleClientScript = """
    import socket, ssl, sys
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    port, count = int(sys.argv[2]), int(sys.argv[3])
    conns = []
    for i in range(count):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        got = b""
        while not got.endswith(b"ok\\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("closed early")
            got += chunk
        conns.append(s)
    print("READY", flush=True)
    sys.stdin.read()
    """

/// Starts downloads of a large file on many TLS connections from another process and then reads nothing more.
private let stalledClientScript = """
    import socket, ssl, sys
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    port, count = int(sys.argv[2]), int(sys.argv[3])
    conns = []
    for i in range(count):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        s.sendall(b"GET /big HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        if not s.recv(4096).startswith(b"HTTP/1.1 200"):
            raise SystemExit("no 200")
        conns.append(s)
    print("READY", flush=True)
    sys.stdin.read()
    """

// Part of the serialized transport suite: RSS is only meaningful while no other transport test runs.
extension TransportServerTests {
    @Test func idleTLSConnectionsHoldNoBuffers() async throws {
        let count = 3000
        let script = TransportFixtures.directory + "/idle-clients.py"
        try idleClientScript.write(toFile: script, atomically: true, encoding: .utf8)
        try await withTransportServer(configure: { $0.eventLoops = 1 }) { s in
            // Warm up allocator arenas and OpenSSL's lazily built tables with a few connections first.
            try await onThread {
                for _ in 0..<20 { _ = try s.client().request("GET", "/healthz") }
            }
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
            let before = residentKilobytes()
            let clients = try await ClientScript.start(script, port: "\(s.port)", count: count)
            #expect(s.server.stats.openConnections == count)
            let after = residentKilobytes()
            let perConnection = Double(after - before) * 1024 / Double(count)
            print("idle TLS connection costs \(Int(perConnection)) bytes of server RSS")
            // OpenSSL 3.0's own SSL object is ~9 KB bare and ~14.5 KB after a TLS 1.3 handshake; the transport adds
            // ~1.5 KB (connection, engine, parser) and no buffers: the smallest one it could leak (a 4 KiB queue, a
            // 17 KiB record buffer, the 256 KiB send buffer) would break this bound. Slack covers other suites.
            #expect(!TestBudget.checksMemory || perConnection < 19_000, "\(Int(perConnection)) bytes per idle connection")
            try clients.stop()
            #expect(await eventually(5) { s.server.stats.openConnections == 0 })
        }
    }

    @Test func stalledDownloadsHoldNoBodyBuffersOfTheirOwn() async throws {
        // A stalled download keeps at most two TLS records of ciphertext queued; file bytes pass through the
        // loop's shared buffer. Before, each one held a 256 KiB plaintext buffer and up to 272 KiB of
        // ciphertext: 1,000 slow downloads cost half a gigabyte.
        let count = 100
        let file = TransportFixtures.file(megabytes: 32)
        let script = TransportFixtures.directory + "/stalled-clients.py"
        try stalledClientScript.write(toFile: script, atomically: true, encoding: .utf8)
        try await withTransportServer(files: ["/big": file.path], configure: { $0.eventLoops = 1 }) { s in
            try await onThread { for _ in 0..<10 { _ = try s.client().request("GET", "/healthz") } }
            #expect(await eventually(3) { s.server.stats.openConnections == 0 })
            let before = residentKilobytes()
            let clients = try await ClientScript.start(script, port: "\(s.port)", count: count)
            #expect(s.server.stats.openConnections == count)
            try await Task.sleep(for: .seconds(1))  // every socket fills up; the server stops at its queue bound
            let perConnection = (residentKilobytes() - before) / count
            print("a stalled download costs \(perConnection) KiB of server RSS")
            // The SSL object (~15 KiB), the 32 KiB queue, the connection: well under 64 KiB. A 256 KiB buffer per
            // connection breaks the bound.
            #expect(!TestBudget.checksMemory || perConnection < 96, "\(perConnection) KiB per stalled download")
            try clients.stop()
            #expect(await eventually(5) { s.server.stats.openConnections == 0 })
        }
    }
}

/// A Python client script holding `count` TLS connections open until its standard input closes.
private struct ClientScript {
    let process: Process
    let input: Pipe
    let output: Pipe

    /// Starts `script` with the test CA, `port` and `count` and waits until it prints READY.
    static func start(_ script: String, port: String, count: Int) async throws -> ClientScript {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, TransportFixtures.certificates.caFile, port, "\(count)"]
        let clients = ClientScript(process: process, input: Pipe(), output: Pipe())
        process.standardInput = clients.input
        process.standardOutput = clients.output
        try process.run()
        let output = clients.output
        let line = try await onThread { () -> String in
            String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        #expect(line.contains("READY"))
        return clients
    }

    /// Closes the script's input (it closes its connections and exits) and waits for it.
    func stop() throws {
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        try output.fileHandleForReading.close()
    }
}
