import Foundation
import Glibc
import SeedCore

/// A tiny blocking HTTP CONNECT proxy on 127.0.0.1 for tests: optional Basic credentials, a host map
/// (`cloud.test` → `127.0.0.1`), and a record of what it was asked.
final class LoopbackConnectProxy: @unchecked Sendable {
    struct Seen: Sendable {
        var target: String
        var proxyAuthorization: String?
    }

    let port: UInt16
    private let listener: CInt
    private let credentials: String?
    private let hosts: [String: String]
    private let seenRequests = Lock<[Seen]>([])

    /// `credentials` is `user:pass` to require, nil to allow anyone.
    init(credentials: String?, hosts: [String: String] = ["cloud.test": "127.0.0.1"]) throws {
        self.credentials = credentials
        self.hosts = hosts
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = UInt16(bigEndian: addr.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var seen: [Seen] { seenRequests.withLock { $0 } }

    func stop() {
        _ = shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            let t = Thread { [self] in
                handle(fd)
                close(fd)
            }
            t.start()
        }
    }

    private func handle(_ client: CInt) {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && Array(head.suffix(4)) == [13, 10, 13, 10]) {
            guard recv(client, &byte, 1, 0) == 1 else { return }
            head.append(byte)
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count == 3, parts[0] == "CONNECT" else {
            reply(client, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        }
        let auth = lines.first { $0.lowercased().hasPrefix("proxy-authorization:") }
            .map { String($0.dropFirst("proxy-authorization:".count)).trimmingCharacters(in: .whitespaces) }
        seenRequests.withLock { $0.append(Seen(target: String(parts[1]), proxyAuthorization: auth)) }
        if let credentials {
            let expected = "Basic " + Data(credentials.utf8).base64EncodedString()
            guard auth == expected else {
                reply(
                    client,
                    "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n"
                        + "Content-Length: 0\r\n\r\n")
                return
            }
        }
        let target = String(parts[1])
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
            reply(client, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        }
        let host = String(target[..<colon])
        let ip = hosts[host] ?? host
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(upstream) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(ip)
        addr.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            reply(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        }
        reply(client, "HTTP/1.1 200 Connection established\r\n\r\n")
        relay(client, upstream)
    }

    private func reply(_ fd: CInt, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private func relay(_ a: CInt, _ b: CInt) {
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while poll(&fds, 2, 15_000) > 0 {
            for i in 0..<2 where fds[i].revents != 0 {
                let from = fds[i].fd
                let to = fds[1 - i].fd
                let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                var off = 0
                while off < n {
                    let w = buffer[off..<n].withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if w <= 0 { return }
                    off += w
                }
            }
        }
    }
}
