import Foundation
import Glibc
import SeedCore
import SeedHTTP
import SeedHTTPServer
import SeedPosix
import SeedStore
import SeedTLS
import SeedTestSupport
import Synchronization

/// Runs blocking client code on its own thread so it never starves the cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let t = Thread {
            do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
        }
        t.stackSize = 4 << 20
        t.start()
    }
}

/// Certificates and generated body files shared by the transport tests (minted once per process).
enum TransportFixtures {
    static let directory: String = {
        let d = NSTemporaryDirectory() + "seed-transport-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()
    static let certificates: TransportTestCertificates = {
        try! TransportTestCertificates.make(in: directory + "/certs-a")
    }()
    static let otherCertificates: TransportTestCertificates = {
        try! TransportTestCertificates.make(in: directory + "/certs-b")
    }()
    static let clientContext: TLSClientContext = { try! TLSClientContext(caFile: certificates.caFile) }()

    /// A file of `megabytes` MiB of a deterministic pattern, and its SHA-256.
    static func file(megabytes: Int) -> (path: String, sha256: String) {
        let path = directory + "/body-\(megabytes).bin"
        let hasher = SHA256Hasher()
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<block.count {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            block[i] = UInt8(truncatingIfNeeded: x)
        }
        let exists = FileManager.default.fileExists(atPath: path)
        let out = exists ? nil : FileHandle(forWritingAtPath: { _ = FileManager.default.createFile(atPath: path, contents: nil); return path }())
        for i in 0..<megabytes {
            block[0] = UInt8(truncatingIfNeeded: i)
            block[1] = UInt8(truncatingIfNeeded: i >> 8)
            hasher.update(block)
            if let out { out.write(Data(block)) }
        }
        try? out?.close()
        return (path, hasher.finalHex())
    }
}

/// Collects access-log entries.
final class CollectingAccessLog: AccessLogSink {
    let entries = Lock<[AccessLogEntry]>([])
    func record(_ entry: AccessLogEntry) { entries.withLock { $0.append(entry) } }
}

/// A body stream that produces `total` bytes of 0x5A in chunks, from another thread.
final class PatternStream: BodyStream {
    let total: Int
    let produced = Lock<Int>(0)
    let cancelled = Atomic<Bool>(false)
    init(total: Int) { self.total = total }
    func pull(maxBytes: Int, _ deliver: @escaping @Sendable (BodyChunk) -> Void) {
        let n = produced.withLock { p -> Int in
            let n = min(maxBytes, total - p, 10_000)
            p += n
            return n
        }
        DispatchQueue.global().async { deliver(n == 0 ? .end : .data([UInt8](repeating: 0x5A, count: n))) }
    }
    func cancel() { cancelled.store(true, ordering: .relaxed) }
}

/// A stream that never delivers: it records that it was pulled and whether the server cancelled it.
final class HangingStream: BodyStream {
    static let last = Lock<HangingStream?>(nil)
    let pulled = Atomic<Bool>(false)
    let cancelled = Atomic<Bool>(false)
    func pull(maxBytes: Int, _ deliver: @escaping @Sendable (BodyChunk) -> Void) { pulled.store(true, ordering: .relaxed) }
    func cancel() { cancelled.store(true, ordering: .relaxed) }
}

/// The trivial application the transport tests run: /healthz, file bodies, echo, deferred and streamed answers.
struct TransportTestHandler: HTTPHandler {
    let files: [String: SharedFile]

    func handle(_ request: HTTPRequest, context: RequestContext) -> HandlerResult {
        switch request.path {
        case "/healthz":
            return .response(.text(200, "ok"))
        case "/echo":
            return .response(Response(status: 200, body: .bytes(request.body)))
        case "/deferred":
            return .deferred {
                try? await Task.sleep(for: .milliseconds(5))
                return .text(200, "deferred ok")
            }
        case "/stream":
            return .response(Response(status: 200, body: ResponseBody([.stream(PatternStream(total: 100_000), length: 100_000)])))
        case "/hanging":
            let stream = HangingStream()
            HangingStream.last.withLock { $0 = stream }
            return .response(Response(status: 200, body: ResponseBody([.bytes([1, 2, 3]), .stream(stream, length: 10)])))
        case "/context":
            return .response(.text(200, "\(context.tlsVersion) \(context.tlsCipher) \(context.clientAddress)"))
        default:
            if let file = files[request.path] {
                // Two file segments around an in-memory piece, so segment boundaries are exercised.
                let half = file.size / 2
                var headers = HTTPHeaders()
                headers.add("ETag", "\"v1\"")
                let body = ResponseBody([
                    .file(file, offset: 0, length: half), .file(file, offset: half, length: file.size - half),
                ])
                return .response(Response(status: 200, headers: headers, body: body, acceptsRanges: true))
            }
            return .response(.text(404, "no route for \(request.path)"))
        }
    }
}

struct RunningTransport: Sendable {
    let server: HTTPSServer
    let port: UInt16
    let addresses: [ListenAddress]
    let accessLog: CollectingAccessLog

    func client(
        context: TLSClientContext = TransportFixtures.clientContext, host: String = "127.0.0.1",
        timeout: Double = 10
    ) throws -> TLSTestClient {
        try TLSTestClient(host: host, port: port, context: context, receiveTimeout: timeout)
    }
}

/// Starts the real server on 127.0.0.1 port 0 with real TLS, runs `body`, shuts it down.
func withTransportServer(
    files: [String: String] = [:], configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    tls: TLSServerContext? = nil,
    _ body: (RunningTransport) async throws -> Void
) async throws {
    var configuration = HTTPServerConfiguration(listeners: [ListenAddress(host: "127.0.0.1", port: 0)])
    configuration.eventLoops = 2
    configure(&configuration)
    let context = try tls ?? TLSServerContext(configuration: TransportFixtures.certificates.serverConfiguration)
    var shared: [String: SharedFile] = [:]
    for (route, path) in files { shared[route] = try SharedFile(openingForReading: path) }
    let log = CollectingAccessLog()
    let server = HTTPSServer(
        configuration: configuration, tls: context, handler: TransportTestHandler(files: shared), logger: .discard,
        accessLog: log)
    let addresses = try server.start()
    let running = RunningTransport(server: server, port: addresses[0].port, addresses: addresses, accessLog: log)
    do {
        try await body(running)
    } catch {
        await server.shutdown(grace: .milliseconds(100))
        throw error
    }
    await server.shutdown(grace: .milliseconds(500))
}

func openFileDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Open descriptors of this process that are TCP sockets with `port` at either end (found through the
/// socket inode in /proc/self/fd and /proc/net/tcp{,6}). Other tests' sockets never count.
func socketDescriptors(port: UInt16) -> Int {
    var inodes = Set<String>()
    let hexPort = String(format: ":%04X", port)
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // /proc files report size 0: read until EOF rather than trusting a length.
        guard let handle = FileHandle(forReadingAtPath: table) else { continue }
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        try? handle.close()
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 9 else { continue }
            if f[1].hasSuffix(hexPort) || f[2].hasSuffix(hexPort) { inodes.insert(String(f[9])) }
        }
    }
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    var count = 0
    for fd in fds {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd),
            target.hasPrefix("socket:[")
        else { continue }
        if inodes.contains(String(target.dropFirst(8).dropLast())) { count += 1 }
    }
    return count
}

/// Open epoll and eventfd descriptors of this process.
func eventDescriptors() -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        let t = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)) ?? ""
        return t == "anon_inode:[eventpoll]" || t == "anon_inode:[eventfd]"
    }.count
}

private let mallocTrim: (@convention(c) (Int) -> Int32)? = {
    guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
}()

/// Resident set size in KiB, after handing freed heap memory back to the kernel so that memory earlier
/// tests freed cannot hide growth.
func residentKilobytes() -> Int {
    // malloc_trim is not in the Glibc module map; look it up once through the default symbol scope.
    if let trim = mallocTrim { _ = trim(0) }
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
    }
    return -1
}

/// Waits (polling) until `condition` holds or `seconds` pass; returns whether it held.
func eventually(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// A hand-made ClientHello offering only `version` (0x0300 SSLv3, 0x0301 TLS 1.0, 0x0302 TLS 1.1), so the
/// refusal is the server's doing, not a client library's.
func legacyClientHello(version: UInt16) -> [UInt8] {
    let hi = UInt8(version >> 8)
    let lo = UInt8(version & 0xFF)
    var hello: [UInt8] = [hi, lo] + [UInt8](repeating: 0x42, count: 32) + [0]
    let suites: [UInt8] = [0x00, 0x2F, 0x00, 0x35, 0xC0, 0x13, 0xC0, 0x14, 0x00, 0x0A]
    hello += [0, UInt8(suites.count)] + suites + [1, 0]
    let handshake: [UInt8] = [1, 0, UInt8(hello.count >> 8), UInt8(hello.count & 0xFF)] + hello
    return [0x16, hi, lo, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake
}

/// Sends raw bytes on a plain TCP connection and returns everything the server sends until it closes.
func rawExchange(port: UInt16, _ bytes: [UInt8], timeout: Double = 5) throws -> (reply: [UInt8], closed: Bool) {
    let fd = try connectTCP(host: "127.0.0.1", port: port, receiveTimeout: timeout)
    defer { Glibc.close(fd) }
    if !bytes.isEmpty {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            reply += buffer[0..<n]
            continue
        }
        return (reply, n == 0 || errno == ECONNRESET)
    }
}
