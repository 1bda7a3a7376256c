import CSeedOpenSSL
import Foundation
import Glibc
public import SeedCore
public import SeedTLS
import Synchronization

/// Keeps every log record a server writes, for tests that assert a clear log line names what happened.
public final class CollectingLogSink: LogSink {
    private let records = Lock<[LogRecord]>([])
    public init() {}
    public func write(_ record: LogRecord) { records.withLock { $0.append(record) } }
    public var all: [LogRecord] { records.withLock { $0 } }

    /// One text line per record: `level message key=value ...`.
    public var lines: [String] {
        all.map { r in ([r.level.description, r.message] + r.metadata.map { "\($0.0)=\($0.1)" }).joined(separator: " ") }
    }

    /// Records whose message is `message` (and, when given, whose metadata text contains `detail`).
    public func count(_ message: String, detail: String? = nil) -> Int {
        all.filter { r in
            r.message == message
                && (detail.map { d in r.metadata.contains { $0.1.localizedCaseInsensitiveContains(d) } } ?? true)
        }.count
    }
}

/// A well-behaved HTTPS client that keeps fetching one path on its own thread while a test attacks the
/// server, reconnecting every few requests so new handshakes are exercised too. Every failure is kept.
public final class WellBehavedClient: Sendable {
    public let port: UInt16
    public let path: String
    public let context: TLSClientContext
    public let expectedStatus: Int
    private let stopFlag = Atomic<Bool>(false)
    private let result = Lock<(ok: Int, failures: [String])>((0, []))
    private let finished = DispatchSemaphore(value: 0)

    public init(port: UInt16, context: TLSClientContext, path: String = "/healthz", expectedStatus: Int = 200) {
        self.port = port
        self.context = context
        self.path = path
        self.expectedStatus = expectedStatus
    }

    public func start() {
        let t = Thread { [self] in
            var client: TLSTestClient?
            var sinceConnect = 0
            while !stopFlag.load(ordering: .relaxed) {
                do {
                    if client == nil || sinceConnect >= 5 {
                        client?.close()
                        client = try TLSTestClient(host: "127.0.0.1", port: port, context: context, receiveTimeout: 5)
                        sinceConnect = 0
                    }
                    let started = Date()
                    let r = try client!.request("GET", path)
                    sinceConnect += 1
                    let took = Date().timeIntervalSince(started)
                    if r.status != expectedStatus {
                        result.withLock { $0.failures.append("status \(r.status) for \(path)") }
                    } else if took > TestBudget.seconds(2) {
                        result.withLock { $0.failures.append("answer took \(took) s") }
                    } else {
                        result.withLock { $0.ok += 1 }
                    }
                } catch {
                    result.withLock { $0.failures.append("\(error)") }
                    client?.close()
                    client = nil
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            client?.close()
            finished.signal()
        }
        t.stackSize = 1 << 20
        t.start()
    }

    /// Requests answered correctly so far.
    public var answered: Int { result.withLock { $0.ok } }

    /// Stops the client and returns how many requests succeeded and every failure.
    public func stop() -> (ok: Int, failures: [String]) {
        stopFlag.store(true, ordering: .relaxed)
        finished.wait()
        return result.withLock { $0 }
    }
}

/// A blocking TLS client straight over OpenSSL on a socket, for what SeedTLS's engine refuses to do on
/// purpose: a TLS 1.2 client that asks for renegotiation. Verification is off (the test only probes).
public final class RawOpenSSLClient {
    public let fd: CInt
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    public init(port: UInt16) throws {
        _ = seed_OPENSSL_init()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TestClientError("SSL_CTX_new failed") }
        context = ctx
        _ = seed_SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)
        guard let s = SSL_new(ctx) else {
            SSL_CTX_free(ctx)
            throw TestClientError("SSL_new failed")
        }
        ssl = s
        do { fd = try connectTCP(host: "127.0.0.1", port: port, receiveTimeout: 5) } catch {
            SSL_free(s)
            SSL_CTX_free(ctx)
            throw error
        }
        SSL_set_fd(s, fd)
        ERR_clear_error()
        guard SSL_connect(s) == 1 else {
            let e = Self.drainErrors()
            SSL_free(s)
            SSL_CTX_free(ctx)
            Glibc.close(fd)
            throw TestClientError("handshake failed: \(e)")
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
        Glibc.close(fd)
    }

    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// Asks the server for a renegotiation and drives the handshake; returns OpenSSL's verdict: nil when the
    /// renegotiation completed, else the error text (for example "no renegotiation").
    public func renegotiate() -> String? {
        ERR_clear_error()
        guard SSL_renegotiate(ssl) == 1 else { return "SSL_renegotiate refused locally: \(Self.drainErrors())" }
        let r = SSL_do_handshake(ssl)
        if r == 1 && SSL_renegotiate_pending(ssl) == 0 { return nil }
        let code = SSL_get_error(ssl, r)
        let reasons = Self.drainErrors()
        return "SSL_do_handshake returned \(r), SSL_get_error \(code): \(reasons)"
    }

    /// Sends `text` and reads until the server closes or `maxBytes` arrived; nil when the write failed.
    public func exchange(_ text: String, maxBytes: Int = 4096) -> String? {
        let bytes = Array(text.utf8)
        let w = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        if w <= 0 {
            _ = Self.drainErrors()
            return nil
        }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < maxBytes {
            let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n <= 0 { break }
            out += buffer[0..<Int(n)]
            if String(decoding: out, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        _ = Self.drainErrors()
        return String(decoding: out, as: UTF8.self)
    }

    static func drainErrors() -> String { openSSLErrorReasons().joined(separator: "; ") }
}

/// The first flight a real TLS client sends (its ClientHello records), made with SeedTLS's client engine.
public func makeClientHello(context: TLSClientContext, serverName: String = "localhost") throws -> [UInt8] {
    let engine = try TLSEngine(client: context, serverName: serverName)
    _ = engine.handshake()
    return engine.takeOutput()
}

/// Deterministic pseudo-random bytes (xorshift), so a failing hostile case can be replayed.
public func hostileBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}
