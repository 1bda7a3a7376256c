import Foundation
import Glibc
import SeedCore

/// A small HTTP CONNECT proxy on loopback for tests: one thread per connection, optional Basic
/// credentials (`407` without them), counts the tunnels it opened. Only CONNECT is served.
public final class MirrorTestProxy: @unchecked Sendable {
    public let port: UInt16
    private let listener: Int32
    private let credentials: String?
    private let state = Lock((tunnels: 0, refused: 0, targets: [String](), open: Set<Int32>(), stopped: false))

    /// `username`/`password` set: require `Proxy-Authorization: Basic base64(user:pass)`.
    public init(username: String? = nil, password: String? = nil) throws {
        signal(SIGPIPE, SIG_IGN)
        credentials = username.map { Data("\($0):\(password ?? "")".utf8).base64EncodedString() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw ProxyError("bind/listen failed")
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = UInt16(bigEndian: bound.sin_port)
        let t = Thread { [self] in acceptLoop() }
        t.name = "test-proxy-accept"
        t.start()
    }

    /// `http://[user:pass@]127.0.0.1:PORT` for the mirror's `upstream.proxy`.
    public func url(username: String? = nil, password: String? = nil) -> String {
        if let username { return "http://\(username):\(password ?? "")@127.0.0.1:\(port)" }
        return "http://127.0.0.1:\(port)"
    }

    public var tunnels: Int { state.withLock { $0.tunnels } }
    public var refused: Int { state.withLock { $0.refused } }
    public var targets: [String] { state.withLock { $0.targets } }

    public func stop() {
        let open = state.withLock { s -> Set<Int32> in
            s.stopped = true
            return s.open
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            if state.withLock({ $0.stopped }) {
                close(fd)
                return
            }
            let t = Thread { [self] in serve(fd) }
            t.name = "test-proxy-conn"
            t.start()
        }
    }

    private func serve(_ client: Int32) {
        track(client)
        defer {
            untrack(client)
            close(client)
        }
        var head: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !head.containsCRLFCRLF {
            let n = read(client, &buf, buf.count)
            if n <= 0 || head.count > 16384 { return }
            head += buf[0..<n]
        }
        let text = String(decoding: head, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count == 3, parts[0] == "CONNECT" else {
            reply(client, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        }
        if let credentials {
            let auth = lines.first { $0.lowercased().hasPrefix("proxy-authorization:") }
            let value = auth.map {
                String($0.dropFirst("proxy-authorization:".count)).trimmingCharacters(in: .whitespaces)
            }
            guard value == "Basic \(credentials)" else {
                state.withLock { $0.refused += 1 }
                reply(
                    client,
                    "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n"
                )
                return
            }
        }
        let target = String(parts[1])
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
            reply(client, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        }
        let host = String(target[..<colon])
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(upstream)
            reply(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        }
        track(upstream)
        state.withLock {
            $0.tunnels += 1
            $0.targets.append(target)
        }
        reply(client, "HTTP/1.1 200 Connection established\r\n\r\n")
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            pump(from: upstream, to: client)
            shutdown(client, Int32(SHUT_WR))
            done.signal()
        }
        t.start()
        pump(from: client, to: upstream)
        shutdown(upstream, Int32(SHUT_WR))
        done.wait()
        untrack(upstream)
        close(upstream)
    }

    private func track(_ fd: Int32) { state.withLock { _ = $0.open.insert(fd) } }
    private func untrack(_ fd: Int32) { state.withLock { _ = $0.open.remove(fd) } }

    private func reply(_ fd: Int32, _ s: String) {
        let b = Array(s.utf8)
        _ = b.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

private func pump(from: Int32, to: Int32) {
    var buf = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = read(from, &buf, buf.count)
        if n <= 0 { return }
        var off = 0
        while off < n {
            let w = buf.withUnsafeBytes { write(to, $0.baseAddress! + off, n - off) }
            if w <= 0 { return }
            off += w
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate var containsCRLFCRLF: Bool {
        guard count >= 4 else { return false }
        for i in 0...(count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 {
            return true
        }
        return false
    }
}

public struct ProxyError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
