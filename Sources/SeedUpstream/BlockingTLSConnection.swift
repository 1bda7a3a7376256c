internal import CSeedOpenSSL
internal import CSeedShim
import Glibc
import SeedTLS

/// The client SSL_CTX: TLS 1.2+, peer verification against a CA file or the system store.
final class ClientTLSContext: @unchecked Sendable {
    // Owned from assignment on; deinit frees it even when a later configuration step throws.
    let ctx: OpaquePointer

    init(caFile: String?) throws(UpstreamError) {
        _ = seed_OPENSSL_init()
        guard let c = SSL_CTX_new(TLS_client_method()) else {
            throw UpstreamError(.tls, stage: .notSent, endpoint: "-", detail: "SSL_CTX_new: \(openSSLErrorText())")
        }
        ctx = c
        _ = seed_SSL_CTX_set_min_proto_version(c, seed_TLS1_2_VERSION())
        // Servers often close without close_notify; body framing (length, chunks) detects truncation instead.
        _ = seed_SSL_CTX_set_options64(c, seed_SSL_OP_IGNORE_UNEXPECTED_EOF())
        SSL_CTX_set_verify(c, seed_SSL_VERIFY_PEER(), nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(c, caFile, nil) == 1 else {
                throw UpstreamError(
                    .tls, stage: .notSent, endpoint: caFile,
                    detail: "cannot load CA file: \(openSSLErrorText()); check upstream.caFile")
            }
        } else {
            _ = SSL_CTX_set_default_verify_paths(c)
            _ = SSL_CTX_load_verify_locations(c, nil, "/etc/ssl/certs")
            ERR_clear_error()
        }
    }

    deinit { SSL_CTX_free(ctx) }
}


func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

/// One TLS connection over a blocking socket (optionally tunnelled through a proxy). Not thread-safe:
/// one thread reads and writes; `abort()` may be called from any thread to unblock it.
final class BlockingTLSConnection {
    private let fd: CInt
    private var ssl: OpaquePointer?
    let endpoint: String

    /// Connects (through the proxy when configured), then handshakes and verifies `url.host`.
    init(url: UpstreamURL, configuration: UpstreamConfiguration, tls: ClientTLSContext) throws(UpstreamError) {
        endpoint = url.description
        let timeout = configuration.connectTimeout
        if let proxy = configuration.proxy {
            fd = try connectTCP(
                host: configuration.resolve[proxy.host] ?? proxy.host, port: proxy.port, timeout: timeout,
                endpoint: "proxy \(proxy)")
            setSocketTimeouts(fd, timeout)
            // Every stored property is set from here on, so a throw runs deinit, which closes `fd`.
            try tunnel(fd: fd, proxy: proxy, to: url)
        } else {
            fd = try connectTCP(
                host: configuration.resolve[url.host] ?? url.host, port: url.port, timeout: timeout,
                endpoint: endpoint)
        }
        // The handshake is bounded by the connect timeout, everything after by the read timeout.
        setSocketTimeouts(fd, timeout)
        guard let s = SSL_new(tls.ctx) else {
            throw UpstreamError(.tls, stage: .notSent, endpoint: endpoint, detail: "SSL_new: \(openSSLErrorText())")
        }
        ssl = s
        _ = SSL_set_fd(s, fd)
        let isIP = isIPAddress(url.host)
        if isIP {
            _ = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), url.host)
        } else {
            _ = seed_SSL_set_tlsext_host_name(s, url.host)
            _ = SSL_set1_host(s, url.host)
        }
        let rc = SSL_connect(s)
        if rc != 1 {
            let verify = SSL_get_verify_result(s)
            let sslError = SSL_get_error(s, rc)
            let e = seed_errno()
            let reasons = openSSLErrorText()
            if verify != Int(seed_X509_V_OK()) {
                let text = String(cString: X509_verify_cert_error_string(verify))
                throw UpstreamError(.certificate, stage: .notSent, endpoint: endpoint, detail: text)
            }
            if sslError == SSL_ERROR_WANT_READ || sslError == SSL_ERROR_WANT_WRITE {
                throw UpstreamError(
                    .connectTimeout, stage: .notSent, endpoint: endpoint, detail: "TLS handshake timed out")
            }
            let detail = sslError == SSL_ERROR_SYSCALL && e != 0 ? errnoText(e) : reasons
            throw UpstreamError(.tls, stage: .notSent, endpoint: endpoint, detail: detail)
        }
        setSocketTimeouts(fd, configuration.readTimeout)
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        Glibc.close(fd)
    }

    /// The negotiated protocol, such as `TLSv1.3`.
    var protocolVersion: String { ssl.map { String(cString: SSL_get_version($0)) } ?? "" }

    func writeAll(_ bytes: [UInt8]) throws(UpstreamError) {
        guard let ssl else { throw lost("connection closed") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 {
                offset += Int(n)
                continue
            }
            let err = SSL_get_error(ssl, n)
            let e = seed_errno()
            let reasons = openSSLErrorText()
            if err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ {
                throw UpstreamError(.timeout, stage: .outcomeUnknown, endpoint: endpoint, detail: "write stalled")
            }
            throw lost(err == SSL_ERROR_SYSCALL && e != 0 ? errnoText(e) : reasons)
        }
    }

    /// Reads some bytes; 0 means the peer closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(UpstreamError) -> Int {
        guard let ssl else { throw lost("connection closed") }
        while true {
            let n = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
            if n > 0 { return Int(n) }
            let err = SSL_get_error(ssl, n)
            let e = seed_errno()
            let reasons = openSSLErrorText()
            switch err {
            case SSL_ERROR_ZERO_RETURN: return 0
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                if e == EAGAIN || e == EWOULDBLOCK {
                    throw UpstreamError(
                        .timeout, stage: .outcomeUnknown, endpoint: endpoint,
                        detail: "no data within the read timeout")
                }
                continue
            case SSL_ERROR_SYSCALL:
                if e == 0 { return 0 }
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK {
                    throw UpstreamError(
                        .timeout, stage: .outcomeUnknown, endpoint: endpoint,
                        detail: "no data within the read timeout")
                }
                throw lost(errnoText(e))
            default:
                throw lost(reasons)
            }
        }
    }

    /// Unblocks a thread stuck in `read`/`writeAll`; the connection is unusable afterwards.
    func abort() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    private func lost(_ detail: String) -> UpstreamError {
        UpstreamError(.connectionLost, stage: .outcomeUnknown, endpoint: endpoint, detail: detail)
    }
}

func isIPAddress(_ host: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
}

func setSocketTimeouts(_ fd: CInt, _ timeout: Duration) {
    let (s, atto) = timeout.components
    var tv = timeval(tv_sec: Int(max(s, 0)), tv_usec: Int(atto / 1_000_000_000_000))
    if tv.tv_sec == 0 && tv.tv_usec == 0 { tv.tv_usec = 1000 }
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}

func milliseconds(_ d: Duration) -> Int {
    let (s, atto) = d.components
    return max(0, Int(s) * 1000 + Int(atto / 1_000_000_000_000_000))
}

/// Resolves and connects a blocking TCP socket within `timeout`, trying each address in turn.
func connectTCP(host: String, port: UInt16, timeout: Duration, endpoint: String) throws(UpstreamError) -> CInt {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &list)
    guard rc == 0, let first = list else {
        throw UpstreamError(
            .nameResolution, stage: .notSent, endpoint: endpoint,
            detail: "\(host): \(String(cString: gai_strerror(rc)))")
    }
    defer { freeaddrinfo(first) }
    let deadline = ContinuousClock.now + timeout
    var lastError = UpstreamError(.connect, stage: .notSent, endpoint: endpoint, detail: "no address for \(host)")
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let ai = cursor {
        cursor = ai.pointee.ai_next
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 {
            lastError = UpstreamError(.connect, stage: .notSent, endpoint: endpoint, detail: errnoText(seed_errno()))
            continue
        }
        let flags = seed_fcntl_get(fd, F_GETFL)
        _ = seed_fcntl_int(fd, F_SETFL, flags | O_NONBLOCK)
        var result = Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen)
        var err = result == 0 ? 0 : seed_errno()
        if result != 0 && err == EINPROGRESS {
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            repeat {
                let left = milliseconds(deadline - ContinuousClock.now)
                result = poll(&pfd, 1, Int32(min(left, Int(Int32.max))))
            } while result < 0 && seed_errno() == EINTR
            if result == 0 {
                Glibc.close(fd)
                lastError = UpstreamError(
                    .connectTimeout, stage: .notSent, endpoint: endpoint,
                    detail: "no connection to \(host):\(port) within \(timeout)")
                if ContinuousClock.now >= deadline { break }
                continue
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            err = soError
        }
        if err != 0 {
            Glibc.close(fd)
            lastError = UpstreamError(
                .connect, stage: .notSent, endpoint: endpoint, detail: "\(host):\(port): \(errnoText(err))")
            continue
        }
        _ = seed_fcntl_int(fd, F_SETFL, flags & ~O_NONBLOCK)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }
    throw lastError
}

/// Sends `CONNECT` to the proxy on `fd` and reads its answer head; throws unless it is 2xx.
func tunnel(fd: CInt, proxy: UpstreamProxy, to url: UpstreamURL) throws(UpstreamError) {
    let endpoint = "proxy \(proxy)"
    let authority = url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
    var head = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
    if let user = proxy.username {
        let credentials = base64(Array("\(user):\(proxy.password ?? "")".utf8))
        head += "Proxy-Authorization: Basic \(credentials)\r\n"
    }
    head += "\r\n"
    let bytes = Array(head.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0 {
            let e = seed_errno()
            if e == EINTR { continue }
            throw UpstreamError(.proxy(status: nil), stage: .notSent, endpoint: endpoint, detail: errnoText(e))
        }
        offset += n
    }
    // Byte at a time: nothing after the head may be consumed, it belongs to TLS.
    var answer: [UInt8] = []
    var byte: UInt8 = 0
    while !answer.ends(with: [13, 10, 13, 10]) {
        let n = recv(fd, &byte, 1, 0)
        if n == 1 {
            answer.append(byte)
            if answer.count > 16 * 1024 {
                throw UpstreamError(
                    .proxy(status: nil), stage: .notSent, endpoint: endpoint, detail: "CONNECT answer head too large")
            }
            continue
        }
        let e = n < 0 ? seed_errno() : 0
        if n < 0 && e == EINTR { continue }
        let why = n == 0 ? "proxy closed the connection" : (e == EAGAIN ? "no answer in time" : errnoText(e))
        throw UpstreamError(.proxy(status: nil), stage: .notSent, endpoint: endpoint, detail: why)
    }
    let statusLine = String(decoding: answer.prefix(while: { $0 != 13 }), as: UTF8.self)
    let parts = statusLine.split(separator: " ", maxSplits: 2)
    guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
        throw UpstreamError(
            .proxy(status: nil), stage: .notSent, endpoint: endpoint, detail: "malformed CONNECT answer")
    }
    guard (200..<300).contains(status) else {
        let reason = parts.count > 2 ? String(parts[2]) : ""
        let hint = status == 407 ? "; check the proxy credentials" : ""
        throw UpstreamError(
            .proxy(status: status), stage: .notSent, endpoint: endpoint,
            detail: "CONNECT \(authority) answered \(status) \(reason)\(hint)")
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix) }
}

/// Standard base64 with padding (RFC 4648 §4).
func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)], table[Int(v & 63)]]
        i += 3
    }
    let rest = bytes.count - i
    if rest == 1 {
        let v = UInt32(bytes[i]) << 16
        out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], 61, 61]
    } else if rest == 2 {
        let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)], 61]
    }
    return String(decoding: out, as: UTF8.self)
}
