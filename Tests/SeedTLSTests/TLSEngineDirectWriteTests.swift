import Foundation
import SeedTLS
import SeedTestSupport
import Testing

/// A connected pair of non-blocking stream sockets with a small send buffer, so writes stop mid-record.
private func smallBufferPair() throws -> (CInt, CInt) {
    var fds: [CInt] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
        throw TestClientError("socketpair failed: errno \(errno)")
    }
    var size: CInt = 4096
    _ = setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
    _ = setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return (fds[0], fds[1])
}

/// Reads whatever the socket holds right now.
private func readAvailable(_ fd: CInt) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return out }
        out += buffer[0..<n]
    }
}

@Test func directWritesMeetEAGAINMidRecordAndKeepOrder() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: TLSFixtures.client, serverName: "localhost")
    try pumpHandshake(client, server)
    let (serverFD, clientFD) = try smallBufferPair()
    defer {
        close(serverFD)
        close(clientFD)
    }
    server.attachSocket(serverFD)

    // 1 MiB in writes of odd sizes; the socket takes a few KiB at a time, so most records are cut by EAGAIN
    // and the rest of each goes to the queue, then later records queue behind it.
    let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
    var got: [UInt8] = []
    var sentDirectly = 0
    var sawBlocked = false
    var offset = 0
    var steps = 0
    while offset < body.count || server.pendingOutputCount > 0 {
        steps += 1
        guard steps < 100_000 else { throw TestClientError("no progress") }
        if server.pendingOutputCount == 0 && offset < body.count {
            let n = min(10_007, body.count - offset)
            try body.withUnsafeBytes { try server.write(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + n])) }
            offset += n
        }
        sentDirectly += server.takeDirectWriteCount()
        if !server.socketWritable { sawBlocked = true }
        #expect(server.directWriteErrno == 0)
        // Drain the peer side, then let the owner flush the queue as the connection would.
        client.receive(readAvailable(clientFD))
        got += try drain(client)
        server.socketWritable = true
        server.withPendingOutput { pending in
            let n = send(serverFD, pending.baseAddress, pending.count, Int32(MSG_NOSIGNAL))
            if n < pending.count { server.socketWritable = false }
            return max(n, 0)
        }
    }
    client.receive(readAvailable(clientFD))
    got += try drain(client)
    #expect(sawBlocked)
    #expect(sentDirectly > 0)
    #expect(got.count == body.count)
    #expect(got == body)
}

@Test func directWritesGoToTheQueueWhileTheSocketIsBlocked() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: TLSFixtures.client, serverName: "localhost")
    try pumpHandshake(client, server)
    let (serverFD, clientFD) = try smallBufferPair()
    defer {
        close(serverFD)
        close(clientFD)
    }
    server.attachSocket(serverFD)
    server.socketWritable = false
    try server.write(Array(repeating: 0x41, count: 3000))
    #expect(server.takeDirectWriteCount() == 0)
    #expect(readAvailable(clientFD).isEmpty)
    let queued = server.takeOutput()
    #expect(queued.count > 3000)
    client.receive(queued)
    #expect(try drain(client) == Array(repeating: 0x41, count: 3000))

    // Writable again with an empty queue: the next record goes straight to the socket, nothing is queued.
    server.socketWritable = true
    try server.write(Array(repeating: 0x42, count: 100))
    #expect(server.pendingOutputCount == 0)
    let direct = server.takeDirectWriteCount()
    let arrived = readAvailable(clientFD)
    #expect(direct == arrived.count && direct > 100)
    client.receive(arrived)
    #expect(try drain(client) == Array(repeating: 0x42, count: 100))
}

@Test func aFailedDirectWriteIsReportedAndLaterRecordsDropped() throws {
    let server = try TLSEngine(server: TLSFixtures.server)
    let client = try TLSEngine(client: TLSFixtures.client, serverName: "localhost")
    try pumpHandshake(client, server)
    let (serverFD, clientFD) = try smallBufferPair()
    defer { close(serverFD) }
    close(clientFD)
    server.attachSocket(serverFD)
    try server.write(Array(repeating: 0x43, count: 100))
    #expect(server.directWriteErrno == EPIPE)
    try server.write(Array(repeating: 0x43, count: 100))
    #expect(server.pendingOutputCount == 0)
}
