import CSeedOpenSSL
import Glibc

/// A growable byte queue over malloc'd memory: append at the end, consume from the front.
/// Memory is held only while bytes are queued or until `release()`; idle connections keep none.
struct ByteQueue: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private var start = 0
    private var end = 0

    init() {}

    var count: Int { end - start }
    var isEmpty: Bool { end == start }

    mutating func append(_ bytes: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        if end + n > capacity {
            if start > 0 && count + n <= capacity {
                // Compact instead of growing: the consumer has freed room at the front.
                if count > 0 { memmove(base!, base! + start, count) }
                end -= start
                start = 0
            } else {
                // Doubling, but never past what is needed when that is more: the rest of one refused TLS
                // record (at most 16,406 bytes) takes 16 KiB, where doubling from 4 KiB took 32.
                let needed = count + n
                let newCapacity = max(needed, capacity * 2, 4096)
                let fresh = malloc(newCapacity)!
                if count > 0 { memcpy(fresh, base! + start, count) }
                free(base)
                base = fresh
                capacity = newCapacity
                end = count
                start = 0
            }
        }
        memcpy(base! + end, bytes, n)
        end += n
    }

    /// Copies up to `max` bytes from the front into `destination` and consumes them.
    mutating func take(into destination: UnsafeMutableRawPointer, max: Int) -> Int {
        let n = min(max, count)
        if n > 0 {
            memcpy(destination, base! + start, n)
            consume(n)
        }
        return n
    }

    mutating func consume(_ n: Int) {
        precondition(n <= count, "consuming more than is queued")
        start += n
        if start == end {
            start = 0
            end = 0
        }
    }

    /// The queued bytes, contiguous.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let base else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return body(UnsafeRawBufferPointer(start: base + start, count: count))
    }

    /// Frees the storage when nothing is queued.
    mutating func releaseIfEmpty() {
        if isEmpty, base != nil {
            free(base)
            base = nil
            capacity = 0
        }
    }

    deinit { free(base) }
}

/// How a handshake step ended.
public enum TLSHandshakeStatus: Sendable {
    case complete
    /// More ciphertext from the peer is needed; send any pending output first.
    case wantInput
    case failed(TLSError)
}

/// How a read of plaintext ended.
public enum TLSReadStatus: Sendable {
    case bytes(Int)
    case wantInput
    /// The peer sent close_notify.
    case closed
    case failed(TLSError)
}

// One BIO method for every engine: reads come from the engine's input, writes append to its output queue.
// SSL never touches a socket, so engines run in memory and the caller decides when and how to do I/O.
nonisolated(unsafe) private let engineBIOMethod: OpaquePointer = {
    let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "seed-engine")!
    _ = BIO_meth_set_write_ex(method) { bio, data, length, written in
        guard let bio, let data, let raw = BIO_get_data(bio) else { return 0 }
        let engine = Unmanaged<TLSEngine>.fromOpaque(raw).takeUnretainedValue()
        engine.emit(data, count: length)
        written?.pointee = length
        return 1
    }
    _ = BIO_meth_set_read_ex(method) { bio, data, length, readBytes in
        guard let bio, let data, let raw = BIO_get_data(bio) else { return 0 }
        seed_BIO_clear_retry_flags(bio)
        let engine = Unmanaged<TLSEngine>.fromOpaque(raw).takeUnretainedValue()
        let n = engine.takeInput(into: data, max: length)
        if n == 0 {
            seed_BIO_set_retry_read(bio)
            readBytes?.pointee = 0
            return 0
        }
        readBytes?.pointee = n
        return 1
    }
    _ = BIO_meth_set_ctrl(method) { bio, command, _, _ in
        guard let bio, let raw = BIO_get_data(bio) else { return 0 }
        let engine = Unmanaged<TLSEngine>.fromOpaque(raw).takeUnretainedValue()
        switch command {
        case BIO_CTRL_FLUSH: return 1
        case BIO_CTRL_PENDING: return engine.bufferedInputCount
        case BIO_CTRL_WPENDING: return engine.output.count
        default: return 0
        }
    }
    _ = BIO_meth_set_create(method) { bio in
        BIO_set_init(bio, 1)
        return 1
    }
    return method
}()

/// One TLS connection driven through memory: feed it ciphertext, take ciphertext out, read and write
/// plaintext. Not thread-safe: one owner (an event loop or a test) uses it at a time.
public final class TLSEngine {
    private let ssl: OpaquePointer
    private let keepAlive: AnyObject  // the context outlives every SSL made from it
    fileprivate var output = ByteQueue()
    /// With a socket attached (`attachSocket`), records go straight to it while nothing is queued.
    private var directFD: CInt = -1
    /// Whether the attached socket may take more bytes; cleared when a direct write meets EAGAIN, set again
    /// by the owner when the socket reports it is writable. While false, records are queued.
    public var socketWritable = true
    /// Ciphertext written straight to the socket since the last `takeDirectWriteReport()`.
    private var directWritten = 0
    /// The errno of a failed direct write (the socket is then broken; later records are dropped), or 0.
    public private(set) var directWriteErrno: Int32 = 0
    private var stash = ByteQueue()
    private var borrowed: UnsafeRawBufferPointer?
    private var borrowedOffset = 0
    public private(set) var isHandshakeComplete = false

    /// A server-side engine for one accepted connection.
    public init(server context: TLSServerContext) throws(TLSError) {
        ERR_clear_error()
        guard let s = SSL_new(context.context) else { throw TLSError.capture("SSL_new") }
        ssl = s
        keepAlive = context
        attachBIO()
        SSL_set_accept_state(s)
    }

    /// A client-side engine. `serverName` goes out as SNI (unless it is an IP address) and, when the context
    /// verifies peers, the certificate must match it (DNS SAN, or IP SAN for an address).
    public init(client context: TLSClientContext, serverName: String?) throws(TLSError) {
        ERR_clear_error()
        guard let s = SSL_new(context.context) else { throw TLSError.capture("SSL_new") }
        ssl = s
        keepAlive = context
        attachBIO()
        if let serverName {
            let isAddress = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
            if !isAddress { _ = seed_SSL_set_tlsext_host_name(s, serverName) }
            if context.verifyPeer {
                let ok =
                    isAddress
                    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), serverName)
                    : SSL_set1_host(s, serverName)
                guard ok == 1 else { throw TLSError.capture("setting the expected peer name \(serverName)") }
            }
        }
        SSL_set_connect_state(s)
    }

    private func attachBIO() {
        let bio = BIO_new(engineBIOMethod)!
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        BIO_up_ref(bio)
        SSL_set0_rbio(ssl, bio)
        SSL_set0_wbio(ssl, bio)
    }

    deinit { SSL_free(ssl) }

    // MARK: ciphertext in

    /// Copies ciphertext from the peer into the engine.
    public func receive(_ ciphertext: UnsafeRawBufferPointer) {
        guard let base = ciphertext.baseAddress else { return }
        stash.append(base, count: ciphertext.count)
    }

    public func receive(_ ciphertext: [UInt8]) { ciphertext.withUnsafeBytes { receive($0) } }

    /// Lets OpenSSL read `ciphertext` in place while `body` runs; what it did not consume is copied in.
    public func withBorrowedInput<R>(_ ciphertext: UnsafeRawBufferPointer, _ body: () throws -> R) rethrows -> R {
        precondition(borrowed == nil, "nested borrowed input")
        borrowed = ciphertext
        borrowedOffset = 0
        defer {
            if let b = borrowed, borrowedOffset < b.count {
                stash.append(b.baseAddress! + borrowedOffset, count: b.count - borrowedOffset)
            }
            borrowed = nil
        }
        return try body()
    }

    /// True when received ciphertext waits for a handshake step or a read.
    public var hasBufferedInput: Bool { !stash.isEmpty }

    var bufferedInputCount: Int { stash.count + (borrowed.map { $0.count - borrowedOffset } ?? 0) }

    fileprivate func takeInput(into destination: UnsafeMutableRawPointer, max: Int) -> Int {
        var n = stash.take(into: destination, max: max)
        if n < max, let b = borrowed, borrowedOffset < b.count {
            let m = min(max - n, b.count - borrowedOffset)
            memcpy(destination + n, b.baseAddress! + borrowedOffset, m)
            borrowedOffset += m
            n += m
        }
        return n
    }

    // MARK: protocol steps

    /// Advances the handshake as far as the buffered input allows.
    public func handshake() -> TLSHandshakeStatus {
        if isHandshakeComplete { return .complete }
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            isHandshakeComplete = true
            return .complete
        }
        let code = SSL_get_error(ssl, rc)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return .wantInput }
        var error = TLSError.capture("TLS handshake")
        if code == SSL_ERROR_SSL, SSL_get_verify_result(ssl) != X509_V_OK {
            error.reasons.append(String(cString: X509_verify_cert_error_string(SSL_get_verify_result(ssl))))
        }
        if error.reasons.isEmpty { error.reasons.append("SSL error \(code)") }
        return .failed(error)
    }

    /// Decrypts at most one record's worth of plaintext into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSReadStatus {
        ERR_clear_error()
        var n = 0
        let rc = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n)
        if rc == 1 { return .bytes(n) }
        let code = SSL_get_error(ssl, rc)
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantInput
        case SSL_ERROR_ZERO_RETURN: return .closed
        default:
            var error = TLSError.capture("TLS read")
            if error.reasons.isEmpty { error.reasons.append("SSL error \(code)") }
            return .failed(error)
        }
    }

    /// Encrypts all of `plaintext` into the output queue (the queue never refuses bytes).
    public func write(_ plaintext: UnsafeRawBufferPointer) throws(TLSError) {
        guard plaintext.count > 0 else { return }
        ERR_clear_error()
        var n = 0
        let rc = SSL_write_ex(ssl, plaintext.baseAddress, plaintext.count, &n)
        guard rc == 1, n == plaintext.count else {
            let code = SSL_get_error(ssl, rc)
            var error = TLSError.capture("TLS write")
            if error.reasons.isEmpty { error.reasons.append("SSL error \(code)") }
            throw error
        }
    }

    public func write(_ plaintext: [UInt8]) throws(TLSError) {
        var failure: TLSError?
        plaintext.withUnsafeBytes { p in
            do throws(TLSError) { try write(p) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Queues a close_notify alert.
    public func close() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    // MARK: ciphertext out

    /// Lets records go straight to `fd` (a non-blocking stream socket owned by the caller) whenever nothing is
    /// queued and `socketWritable` is true: one copy less than queueing them. What the socket does not take
    /// (EAGAIN or a short write) is queued in order and `socketWritable` turns false; the caller flushes the
    /// queue with `withPendingOutput` as before. A failed write sets `directWriteErrno` and drops the rest.
    /// `-1` detaches: records are queued again.
    public func attachSocket(_ fd: CInt) {
        directFD = fd
    }

    /// Bytes written straight to the socket since the last call (and resets the count).
    public func takeDirectWriteCount() -> Int {
        defer { directWritten = 0 }
        return directWritten
    }

    /// Where one record of ciphertext goes: the socket when it can take it in order, else the queue.
    fileprivate func emit(_ data: UnsafeRawPointer, count length: Int) {
        guard directFD >= 0, output.isEmpty, socketWritable else {
            if directWriteErrno == 0 { output.append(data, count: length) }
            return
        }
        var sent = 0
        while sent < length {
            let n = send(directFD, data + sent, length - sent, Int32(MSG_NOSIGNAL))
            if n > 0 {
                sent += n
                continue
            }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n == 0 || e == EAGAIN || e == EWOULDBLOCK {
                socketWritable = false
                break
            }
            directWriteErrno = e
            directWritten += sent
            return
        }
        directWritten += sent
        if sent < length { output.append(data + sent, count: length - sent) }
    }

    public var pendingOutputCount: Int { output.count }

    /// Lends the pending ciphertext to `body`, which returns how many bytes it sent.
    public func withPendingOutput(_ body: (UnsafeRawBufferPointer) -> Int) {
        let sent = output.withBytes { body($0) }
        output.consume(sent)
    }

    /// Removes and returns all pending ciphertext.
    public func takeOutput() -> [UInt8] {
        var bytes: [UInt8] = []
        withPendingOutput { p in
            bytes = Array(p)
            return p.count
        }
        return bytes
    }

    /// Frees the engine's own queues when they are empty (between requests on an idle connection).
    public func releaseIdleBuffers() {
        output.releaseIfEmpty()
        stash.releaseIfEmpty()
    }

    /// Bytes of memory the engine's queues hold right now (not counting OpenSSL's own buffers).
    public var queuedCapacity: Int { output.capacity + stash.capacity }

    // MARK: facts

    /// "TLSv1.3", "TLSv1.2", ...
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The negotiated suite's OpenSSL name, or "" before the handshake.
    public var cipherName: String {
        guard let c = SSL_get_current_cipher(ssl) else { return "" }
        return String(cString: SSL_CIPHER_get_name(c))
    }

    public var sessionReused: Bool { seed_SSL_session_reused(ssl) == 1 }

    /// The client's resumable session (DER), once the server sent one; nil before.
    public func exportSession() -> [UInt8]? {
        guard let session = SSL_get1_session(ssl) else { return nil }
        defer { SSL_SESSION_free(session) }
        guard SSL_SESSION_is_resumable(session) == 1 else { return nil }
        let n = i2d_SSL_SESSION(session, nil)
        guard n > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(n))
        bytes.withUnsafeMutableBufferPointer { b in
            var p: UnsafeMutablePointer<UInt8>? = b.baseAddress
            _ = i2d_SSL_SESSION(session, &p)
        }
        return bytes
    }

    /// Offers a session from `exportSession()` for resumption; call before the first handshake step.
    public func resumeSession(_ der: [UInt8]) throws(TLSError) {
        ERR_clear_error()
        let session: OpaquePointer? = der.withUnsafeBufferPointer { b in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_SSL_SESSION(nil, &p, b.count)
        }
        guard let session else { throw TLSError.capture("decoding a saved TLS session") }
        defer { SSL_SESSION_free(session) }
        guard SSL_set_session(ssl, session) == 1 else { throw TLSError.capture("offering a saved TLS session") }
    }

    /// The peer certificate's serial number in upper-case hex without leading zeros, or nil without one.
    public var peerCertificateSerial: String? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        guard let bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nil) else { return nil }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { return nil }
        defer { CRYPTO_free(hex, #fileID, #line) }
        let text = String(cString: hex).drop { $0 == "0" }
        return text.isEmpty ? "0" : String(text)
    }

    /// True when the peer certificate carries `name` as a DNS SAN, or as an IP SAN for an address.
    public func peerCertificateMatches(_ name: String) -> Bool {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return false }
        defer { X509_free(cert) }
        let isAddress = name.contains(":") || name.allSatisfy { $0.isNumber || $0 == "." }
        if isAddress { return X509_check_ip_asc(cert, name, 0) == 1 }
        return X509_check_host(cert, name, name.utf8.count, 0, nil) == 1
    }

    /// The length of the chain the peer sent (leaf included).
    public var peerChainLength: Int {
        guard let chain = SSL_get_peer_cert_chain(ssl) else { return 0 }
        return Int(seed_sk_X509_num(chain))
    }

    /// True when the peer's chain verified against the trusted CAs (client side, with verifyPeer).
    public var peerVerified: Bool { SSL_get_verify_result(ssl) == X509_V_OK && SSL_get0_peer_certificate(ssl) != nil }
}
