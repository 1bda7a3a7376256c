import CSeedOpenSSL
import Foundation
import Glibc
public import SeedTLS

/// An error in the loopback test client: what it was doing and why.
public struct TestClientError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Opens a blocking TCP connection to a numeric loopback address.
public func connectTCP(host: String, port: UInt16, receiveTimeout: Double = 10) throws -> CInt {
    var hints = addrinfo()
    hints.ai_flags = AI_NUMERICHOST
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var result: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
        throw TestClientError("cannot resolve \(host)")
    }
    defer { freeaddrinfo(result) }
    let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestClientError("socket: \(String(cString: strerror(errno)))") }
    if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
        let e = errno
        Glibc.close(fd)
        throw TestClientError("connect \(host):\(port): \(String(cString: strerror(e)))")
    }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    setReceiveTimeout(fd, seconds: receiveTimeout)
    return fd
}

public func setReceiveTimeout(_ fd: CInt, seconds: Double) {
    var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}

/// A parsed HTTP/1.1 response as the test client saw it.
public struct TestResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking HTTPS/1.1 client over SeedTLS's client engine, for loopback tests.
/// Not thread-safe; one test drives it.
public final class TLSTestClient {
    public let fd: CInt
    public let engine: TLSEngine
    private var plain: [UInt8] = []
    private var closed = false
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var plainChunk = [UInt8](repeating: 0, count: 16 * 1024)
    public private(set) var peerClosed = false

    /// Connects and completes the handshake; throws with OpenSSL's reasons when it fails.
    public init(
        host: String, port: UInt16, context: TLSClientContext, serverName: String? = nil, receiveTimeout: Double = 10
    ) throws {
        fd = try connectTCP(host: host, port: port, receiveTimeout: receiveTimeout)
        do {
            engine = try TLSEngine(client: context, serverName: serverName ?? host)
        } catch {
            Glibc.close(fd)
            throw error
        }
        do { try handshake() } catch {
            Glibc.close(fd)
            closed = true
            throw error
        }
    }

    deinit { if !closed { Glibc.close(fd) } }

    private func handshake() throws {
        while true {
            switch engine.handshake() {
            case .complete:
                try flush()
                return
            case .wantInput:
                try flush()
                guard try readCiphertext() else { throw TestClientError("server closed during the handshake") }
            case .failed(let e):
                throw e
            }
        }
    }

    private func flush() throws {
        let out = engine.takeOutput()
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestClientError("send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// Reads one chunk of ciphertext into the engine; false on EOF.
    private func readCiphertext() throws -> Bool {
        while true {
            let n = readBuffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                readBuffer.withUnsafeBytes { engine.receive(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                return true
            }
            if n == 0 { return false }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw TestClientError("timed out waiting for the server") }
            if errno == ECONNRESET { return false }
            throw TestClientError("read: \(String(cString: strerror(errno)))")
        }
    }

    /// Encrypts and sends `bytes` at once.
    public func send(_ bytes: [UInt8]) throws {
        try engine.write(bytes)
        try flush()
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Decrypts more plaintext into the client's buffer; false when the server closed.
    @discardableResult
    public func fill() throws -> Bool {
        while true {
            let status = plainChunk.withUnsafeMutableBytes { engine.read(into: $0) }
            switch status {
            case .bytes(let n):
                plain.append(contentsOf: plainChunk[0..<n])
                return true
            case .closed:
                peerClosed = true
                return false
            case .failed(let e):
                throw e
            case .wantInput:
                try flush()
                if !(try readCiphertext()) {
                    peerClosed = true
                    return false
                }
            }
        }
    }

    /// Reads one response head (status and headers).
    public func readHead() throws -> TestResponse {
        while true {
            if let end = findHeadEnd() {
                let text = String(decoding: plain[0..<end], as: UTF8.self)
                plain.removeFirst(end + 4)
                var lines = text.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
                    throw TestClientError("bad status line in \(text)")
                }
                var headers: [(String, String)] = []
                for l in lines {
                    guard let c = l.firstIndex(of: ":") else { continue }
                    headers.append(
                        (String(l[..<c]), String(l[l.index(after: c)...]).trimmingCharacters(in: .whitespaces)))
                }
                return TestResponse(status: status, headers: headers, body: [])
            }
            guard try fill() else { throw TestClientError("connection closed before a response head") }
        }
    }

    /// Reads exactly `count` body bytes, handing them to `sink` in pieces as they arrive.
    public func readBody(count: UInt64, _ sink: ([UInt8]) -> Void) throws {
        var remaining = count
        while remaining > 0 {
            if plain.isEmpty {
                guard try fill() else { throw TestClientError("connection closed with \(remaining) body bytes missing") }
            }
            let n = Int(min(UInt64(plain.count), remaining))
            sink(Array(plain[0..<n]))
            plain.removeFirst(n)
            remaining -= UInt64(n)
        }
    }

    /// Reads a whole response with a Content-Length body (none for HEAD, 1xx, 204, 304).
    public func readResponse(method: String = "GET") throws -> TestResponse {
        var r = try readHead()
        if method == "HEAD" || r.status < 200 || r.status == 204 || r.status == 304 { return r }
        let length = UInt64(r.header("Content-Length") ?? "0") ?? 0
        var body: [UInt8] = []
        try readBody(count: length) { body += $0 }
        r.body = body
        return r
    }

    /// Sends one request and reads its response.
    public func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws -> TestResponse {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n"
        for (n, v) in headers { text += "\(n): \(v)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        try send(Array(text.utf8) + body)
        return try readResponse(method: method)
    }

    /// True when the server has closed the connection (reads EOF, close_notify or a reset).
    public func waitForClose() throws -> Bool {
        while true {
            do {
                if !(try fill()) { return true }
            } catch let e as TestClientError where e.message.contains("timed out") {
                return false
            } catch {
                return true
            }
        }
    }

    private func findHeadEnd() -> Int? {
        guard plain.count >= 4 else { return nil }
        for i in 0...(plain.count - 4)
        where plain[i] == 13 && plain[i + 1] == 10 && plain[i + 2] == 13 && plain[i + 3] == 10 {
            return i
        }
        return nil
    }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

