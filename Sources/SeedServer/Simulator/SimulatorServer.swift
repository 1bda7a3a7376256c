internal import CSeedOpenSSL
internal import CSeedShim
import Dispatch
import Foundation
public import SeedCore
import SeedHTTP
public import SeedHTTPServer
public import SeedTLS

/// Why the simulator's own server could not start.
public struct SimulatorError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A small blocking HTTPS/1.1 server (thread per connection, one request per connection) that hosts any
/// `HTTPHandler`. The simulator uses it so that faults (reset, stall, short body) reach the wire exactly as
/// planned, independent of the production server. Not for production traffic.
public final class SimulatorServer: Sendable {
    private final class Context: @unchecked Sendable {
        let ctx: OpaquePointer
        init(ctx: OpaquePointer) { self.ctx = ctx }
        deinit { SSL_CTX_free(ctx) }
    }

    private struct State {
        var listener: CInt = -1
        var open: Set<CInt> = []
        var stopped = false
        var nextRequestID: UInt64 = 0
    }

    private let handler: any HTTPHandler
    private let tls: Context
    private let logger: Logger
    private let state = Lock(State())
    /// Longest a request head or body may take to arrive.
    public let readTimeout: Duration

    /// Loads the certificate chain and key (PEM); throws naming the file that failed.
    public init(
        handler: any HTTPHandler, certificate: CertificateKeyPair, logger: Logger = .discard,
        readTimeout: Duration = .seconds(10)
    ) throws(SimulatorError) {
        signal(SIGPIPE, SIG_IGN)
        _ = seed_OPENSSL_init()
        guard let c = SSL_CTX_new(TLS_server_method()) else { throw SimulatorError("SSL_CTX_new failed") }
        let context = Context(ctx: c)
        _ = seed_SSL_CTX_set_min_proto_version(c, seed_TLS1_2_VERSION())
        guard SSL_CTX_use_certificate_chain_file(c, certificate.certificateChainPath) == 1 else {
            throw SimulatorError("cannot load certificate \(certificate.certificateChainPath): \(openSSLErrorText())")
        }
        guard SSL_CTX_use_PrivateKey_file(c, certificate.privateKeyPath, SSL_FILETYPE_PEM) == 1,
            SSL_CTX_check_private_key(c) == 1
        else {
            throw SimulatorError("cannot load key \(certificate.privateKeyPath): \(openSSLErrorText())")
        }
        self.tls = context
        self.handler = handler
        self.logger = logger
        self.readTimeout = readTimeout
    }

    deinit { stop() }

    /// Binds `address` (port 0: any free port), starts accepting on a thread of its own, returns the bound address.
    public func start(listen address: ListenAddress) throws(SimulatorError) -> ListenAddress {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &list) == 0, let ai = list else {
            throw SimulatorError("cannot parse listen address \(address)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SimulatorError("socket: \(String(cString: strerror(seed_errno())))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, Glibc.listen(fd, 256) == 0 else {
            let text = String(cString: strerror(seed_errno()))
            close(fd)
            throw SimulatorError("cannot listen on \(address): \(text)")
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let port = withUnsafePointer(to: &storage) { p -> UInt16 in
            if Int32(p.pointee.ss_family) == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        state.withLock { $0.listener = fd }
        let thread = Thread { [self] in acceptLoop(fd) }
        thread.name = "seed-sim-accept"
        thread.start()
        return ListenAddress(host: address.host, port: port)
    }

    /// Stops accepting and cuts every open connection.
    public func stop() {
        let (listener, open) = state.withLock { s -> (CInt, Set<CInt>) in
            s.stopped = true
            let l = s.listener
            s.listener = -1
            return (l, s.open)
        }
        if listener >= 0 {
            _ = shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        for fd in open { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop(_ listener: CInt) {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                let e = seed_errno()
                if e == EINTR || e == ECONNABORTED { continue }
                if state.withLock({ $0.stopped }) { return }
                if e == EMFILE || e == ENFILE {
                    usleep(10_000)
                    continue
                }
                return
            }
            let accepted = state.withLock { s -> Bool in
                if s.stopped { return false }
                s.open.insert(fd)
                return true
            }
            guard accepted else {
                close(fd)
                return
            }
            let thread = Thread { [self] in
                serve(fd)
                state.withLock { _ = $0.open.remove(fd) }
                close(fd)
            }
            thread.name = "seed-sim-conn"
            thread.start()
        }
    }

    private func serve(_ fd: CInt) {
        let (s, atto) = readTimeout.components
        var tv = timeval(tv_sec: Int(s), tv_usec: Int(atto / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var wtv = timeval(tv_sec: 60, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wtv, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(tls.ctx) else { return }
        defer { SSL_free(ssl) }
        _ = SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1 else {
            ERR_clear_error()
            return
        }
        guard let request = readRequest(ssl) else {
            ERR_clear_error()
            return
        }
        let peer = peerAddress(fd)
        let requestID = state.withLock { s -> UInt64 in
            s.nextRequestID += 1
            return s.nextRequestID
        }
        let context = RequestContext(
            clientAddress: peer.0, clientPort: peer.1, localPort: 0,
            tlsVersion: String(cString: SSL_get_version(ssl)),
            tlsCipher: String(cString: SSL_CIPHER_get_name(SSL_get_current_cipher(ssl))), requestID: requestID)
        let response: Response
        switch handler.handle(request, context: context) {
        case .response(let r): response = r
        case .deferred(let work): response = waitFor(work)
        }
        if write(response, method: request.method, ssl: ssl, fd: fd) {
            _ = SSL_shutdown(ssl)
        }
        ERR_clear_error()
    }

    private func waitFor(_ work: @escaping @Sendable () async -> Response) -> Response {
        let box = Lock<Response?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let r = await work()
            box.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    /// Reads one request; nil on timeout, close or a malformed request (the connection is then dropped).
    private func readRequest(_ ssl: OpaquePointer) -> HTTPRequest? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            let n = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n <= 0 { return nil }
            buffer += chunk[..<Int(n)]
            if let r = firstRange(of: terminator, in: buffer) { headEnd = r }
            if headEnd == nil && buffer.count > 32 * 1024 { return nil }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return nil }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.add(
                String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(buffer[(headEnd! + 4)...])
        let length = Int(headers["Content-Length"] ?? "0") ?? -1
        guard length >= 0, length <= 4 * 1024 * 1024 else { return nil }
        if body.count < length, headers["Expect"]?.lowercased() == "100-continue" {
            guard writeAll(ssl, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return nil }
        }
        while body.count < length {
            let n = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n <= 0 { return nil }
            body += chunk[..<Int(n)]
        }
        return HTTPRequest(
            method: String(requestLine[0]), target: String(requestLine[1]),
            versionMinor: requestLine[2] == "HTTP/1.0" ? 0 : 1, headers: headers, body: Array(body.prefix(length)),
            keepAlive: false)
    }

    /// Writes the response; false when the connection must be dropped without a TLS close (a reset).
    /// A handler-set `Transfer-Encoding: chunked` makes the body go out in chunks instead of with a length.
    private func write(_ response: Response, method: String, ssl: OpaquePointer, fd: CInt) -> Bool {
        let chunked = response.headers["Transfer-Encoding"]?.lowercased() == "chunked"
        var head = "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n"
        for (name, value) in response.headers where name.lowercased() != "content-length" {
            head += "\(name): \(value)\r\n"
        }
        if !chunked { head += "Content-Length: \(response.body.length)\r\n" }
        head += "Connection: close\r\n\r\n"
        guard writeAll(ssl, Array(head.utf8)) else { return false }
        if method == "HEAD" { return true }
        func emit(_ bytes: [UInt8]) -> Bool {
            guard chunked else { return writeAll(ssl, bytes) }
            guard !bytes.isEmpty else { return true }
            return writeAll(ssl, Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + [13, 10])
        }
        for segment in response.body.segments {
            switch segment {
            case .bytes(let b):
                // Pieces of at most 64 KiB, so chunked answers have many chunks.
                var offset = 0
                while offset < b.count {
                    let end = min(b.count, offset + 64 * 1024)
                    guard emit(Array(b[offset..<end])) else { return false }
                    offset = end
                }
            case .file(let file, let offset, let length):
                var done: UInt64 = 0
                var buf = [UInt8](repeating: 0, count: 64 * 1024)
                while done < length {
                    let want = Int(min(UInt64(buf.count), length - done))
                    let got = buf.withUnsafeMutableBytes { p in
                        (try? file.read(into: UnsafeMutableRawBufferPointer(rebasing: p[..<want]), at: offset + done))
                            ?? 0
                    }
                    guard got > 0, emit(Array(buf[..<got])) else { return false }
                    done += UInt64(got)
                }
            case .stream(let stream, let length):
                var sent: UInt64 = 0
                while sent < length {
                    switch pullBlocking(stream, maxBytes: Int(min(length - sent, 64 * 1024))) {
                    case .data(let b):
                        guard emit(b) else {
                            stream.cancel()
                            return false
                        }
                        sent += UInt64(b.count)
                    case .end:
                        // Shorter than declared: close as is, the client sees a truncated body.
                        return false
                    case .failed:
                        resetConnection(fd)
                        return false
                    }
                }
            }
        }
        return chunked ? writeAll(ssl, Array("0\r\n\r\n".utf8)) : true
    }

    private func pullBlocking(_ stream: any BodyStream, maxBytes: Int) -> BodyChunk {
        let box = Lock<BodyChunk?>(nil)
        let done = DispatchSemaphore(value: 0)
        stream.pull(maxBytes: maxBytes) { chunk in
            box.withLock { $0 = chunk }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    private func writeAll(_ ssl: OpaquePointer, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            if n <= 0 { return false }
            offset += Int(n)
        }
        return true
    }

    private func resetConnection(_ fd: CInt) {
        // SO_LINGER with zero timeout makes close() send RST instead of FIN.
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    private func peerAddress(_ fd: CInt) -> (String, Int) {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        _ = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        let h = String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let s = String(decoding: serv.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (h, Int(s) ?? 0)
    }
}

private func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
        if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
    }
    return nil
}
