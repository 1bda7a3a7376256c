import Glibc
public import SeedCore
import SeedNet
import SeedPosix
public import SeedTLS
import Synchronization

/// Counters shared by every loop; relaxed atomics, read as a snapshot by `stats`.
final class ServerCounters: Sendable {
    let open = Atomic<Int>(0)
    let accepted = Atomic<UInt64>(0)
    let refused = Atomic<UInt64>(0)
    let handshakesCompleted = Atomic<UInt64>(0)
    let handshakesFailed = Atomic<UInt64>(0)
    let requests = Atomic<UInt64>(0)
    let bytesSent = Atomic<UInt64>(0)
    let requestIDs = Atomic<UInt64>(0)
}

/// An error starting the server: which listener, and why.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The HTTPS/1.1 server: epoll loops (one per core, SO_REUSEPORT), TLS, limits, timeouts, streaming bodies.
public final class HTTPSServer: Sendable {
    let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let logger: Logger
    let accessLog: (any AccessLogSink)?
    let counters = ServerCounters()
    private let tls: Lock<TLSServerContext>
    private let loops = Lock<[ServerLoop]>([])
    private let started = Atomic<Bool>(false)
    let shuttingDown = Atomic<Bool>(false)

    public init(
        configuration: HTTPServerConfiguration, tls: TLSServerContext, handler: any HTTPHandler, logger: Logger,
        accessLog: (any AccessLogSink)?
    ) {
        self.configuration = configuration
        self.tls = Lock(tls)
        self.handler = handler
        self.logger = logger
        self.accessLog = accessLog
    }

    /// The context new handshakes use.
    var currentTLSContext: TLSServerContext { tls.withLock { $0 } }

    /// Binds and starts every listener and loop; returns the bound addresses (port 0 resolved).
    /// Call once. Throws when an address is malformed or cannot be bound; nothing keeps running then.
    public func start() throws -> [ListenAddress] {
        precondition(!started.exchange(true, ordering: .acquiringAndReleasing), "HTTPSServer.start called twice")
        let count = configuration.eventLoops > 0 ? configuration.eventLoops : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        var created: [ServerLoop] = []
        var bound: [ListenAddress] = []
        var listenFDs: [[CInt]] = Array(repeating: [], count: count)
        do {
            for i in 0..<count { created.append(try ServerLoop(index: i, server: self)) }
            for address in configuration.listeners {
                var port = address.port
                for i in 0..<count {
                    let (fd, actual) = try Socket.listen(host: address.host, port: port, reusePort: true)
                    listenFDs[i].append(fd)
                    port = actual
                }
                bound.append(ListenAddress(host: address.host, port: port))
            }
        } catch {
            for fds in listenFDs { for fd in fds { Socket.close(fd) } }
            throw HTTPServerError(message: "cannot start HTTPS server: \(error)")
        }
        for (i, loop) in created.enumerated() {
            for fd in listenFDs[i] { try loop.addListener(fd: fd) }
            loop.eventLoop.start(name: "seed-loop-\(i)")
        }
        loops.withLock { $0 = created }
        logger.info("https server listening", [("listen", bound.map(\.description).joined(separator: " ")), ("loops", "\(count)")])
        return bound
    }

    /// New handshakes use `context`; open connections keep theirs.
    public func replaceTLSContext(_ context: TLSServerContext) {
        tls.withLock { $0 = context }
        logger.notice("tls context replaced")
    }

    /// Stops accepting, lets running responses finish within `grace`, then closes everything and stops the loops.
    public func shutdown(grace: Duration) async {
        shuttingDown.store(true, ordering: .releasing)
        let all = loops.withLock { $0 }
        for loop in all { loop.eventLoop.execute { loop.beginShutdown() } }
        let deadline = ContinuousClock.now + grace
        while counters.open.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for loop in all {
            loop.eventLoop.execute { loop.closeEverything() }
            loop.eventLoop.stop()
        }
        for loop in all {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                loop.eventLoop.whenStopped { c.resume() }
            }
        }
        loops.withLock { $0 = [] }
    }

    public var stats: ServerStats {
        var s = ServerStats()
        s.openConnections = counters.open.load(ordering: .relaxed)
        s.acceptedConnections = counters.accepted.load(ordering: .relaxed)
        s.refusedConnections = counters.refused.load(ordering: .relaxed)
        s.handshakesCompleted = counters.handshakesCompleted.load(ordering: .relaxed)
        s.handshakesFailed = counters.handshakesFailed.load(ordering: .relaxed)
        s.requests = counters.requests.load(ordering: .relaxed)
        s.bytesSent = counters.bytesSent.load(ordering: .relaxed)
        return s
    }
}

/// Plaintext moved into a TLS engine per step of a response body: one full TLS record. With the refill
/// threshold below, a connection's ciphertext queue stays within 32 KiB, also for a client that reads slowly.
let bodyChunkBytes = 16 * 1024
/// A body is refilled only while less than this much ciphertext waits for the socket (one record fits on top
/// of it inside 32 KiB: 16,384 bytes plus at most 29 bytes of record overhead).
let bodyRefillBelowBytes = 16 * 1024 - 64

/// How response bodies move through TLS. Defaults are what measured best (large downloads, interleaved A/B): records are
/// written straight to the socket (TLSEngine.attachSocket) from a read-only mapping of the blob, one record per
/// SSL_write, up to `stepBytes` per step while the socket takes them; a record the socket refuses stays queued and
/// nothing more is encrypted until it is gone (so a slow client holds at most one record of ciphertext).
/// Development aids, read once at start: SEED_DIRECT_WRITE=0 (queue every record, flush per step),
/// SEED_MMAP=0 (pread into the loop's buffer), SEED_BODY_CHUNK, SEED_REFILL_BELOW, SEED_STEP_BYTES (bytes).
struct BodyTuning: Sendable {
    /// Plaintext per SSL_write.
    var chunkBytes: Int
    /// More body is encrypted only while at most this much ciphertext waits in the queue.
    var refillBelowBytes: Int
    /// Plaintext one pump step moves before it hands the turn back to the loop.
    var stepBytes: Int
    var directWrites: Bool
    var mapFiles: Bool

    static let current: BodyTuning = {
        func env(_ k: String) -> String? { getenv(k).map { String(cString: $0) } }
        let direct = env("SEED_DIRECT_WRITE") != "0"
        let chunk = max(1024, env("SEED_BODY_CHUNK").flatMap { Int($0) } ?? bodyChunkBytes)
        return BodyTuning(
            chunkBytes: chunk,
            refillBelowBytes: env("SEED_REFILL_BELOW").flatMap { Int($0) } ?? (direct ? 0 : bodyRefillBelowBytes),
            stepBytes: max(chunk, env("SEED_STEP_BYTES").flatMap { Int($0) } ?? 64 * 1024),
            directWrites: direct,
            mapFiles: env("SEED_MMAP") != "0")
    }()
}
let bodyTuning = BodyTuning.current
/// A connection serving a mapped file releases the pages behind it at least this often.
let mappedReleaseBytes: UInt64 = 1 << 20

/// Loop-confined state of one event loop: its listeners, connections and scratch buffers.
final class ServerLoop: @unchecked Sendable {
    let eventLoop: EventLoop
    // Strong on purpose: a running loop keeps its server alive even if the caller drops it without
    // `shutdown`, so no connection event can reach a freed server. `shutdown` breaks the cycle.
    let server: HTTPSServer
    private var listeners: [ListenerHandler] = []
    var connections: [ObjectIdentifier: Connection] = [:]
    /// Ciphertext read from sockets; shared by every connection of this loop.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// Decrypted request bytes on their way into a parser.
    let plainBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    /// File body bytes on their way into a TLS engine: read and encrypted in one step, so no connection
    /// keeps plaintext of its own between writes (1,000 slow downloads must not hold 1,000 buffers).
    let fileBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bodyChunkBytes, bodyTuning.chunkBytes), alignment: 16)
    /// Response heads (and small bodies coalesced with them) are encoded here.
    var headBuffer: [UInt8] = []
    private var dateSecond = -1
    private var dateField: [UInt8] = []

    init(index: Int, server: HTTPSServer) throws {
        eventLoop = try EventLoop(index: index)
        self.server = server
        headBuffer.reserveCapacity(4096)
    }

    deinit {
        readBuffer.deallocate()
        plainBuffer.deallocate()
        fileBuffer.deallocate()
    }

    func addListener(fd: CInt) throws {
        let l = ListenerHandler(fd: fd, loop: self)
        l.token = try eventLoop.register(fd: fd, events: EpollEvents.input, handler: l)
        listeners.append(l)
    }

    /// Appends `Date: <IMF-fixdate>\r\n`; the text is formatted once per second per loop.
    func appendDateField(to out: inout [UInt8]) {
        var t = time(nil)
        if Int(t) != dateSecond {
            dateSecond = Int(t)
            var parts = tm()
            gmtime_r(&t, &parts)
            var text = [CChar](repeating: 0, count: 64)
            let n = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            dateField = Array("Date: ".utf8) + text[0..<n].map { UInt8(bitPattern: $0) } + [13, 10]
        }
        out.append(contentsOf: dateField)
    }

    func accepted(_ a: Socket.Accepted) {
        let counters = server.counters
        counters.accepted.add(1, ordering: .relaxed)
        if server.shuttingDown.load(ordering: .relaxed)
            || counters.open.load(ordering: .relaxed) >= server.configuration.maxConnections
        {
            // Refused at once so the client sees a close, not a hang.
            counters.refused.add(1, ordering: .relaxed)
            Socket.close(a.fd)
            return
        }
        let engine: TLSEngine
        do { engine = try TLSEngine(server: server.currentTLSContext) } catch {
            server.logger.error("cannot create TLS session", [("error", "\(error)")])
            Socket.close(a.fd)
            return
        }
        counters.open.add(1, ordering: .relaxed)
        let c = Connection(accepted: a, engine: engine, loop: self)
        do {
            c.token = try eventLoop.register(
                fd: a.fd,
                events: EpollEvents.input | EpollEvents.output | EpollEvents.readHangup | EpollEvents.edgeTriggered,
                handler: c)
        } catch {
            server.logger.error("cannot register connection", [("error", "\(error)")])
            counters.open.subtract(1, ordering: .relaxed)
            Socket.close(a.fd)
            return
        }
        connections[ObjectIdentifier(c)] = c
        c.start()
    }

    func pauseAccepting(_ listener: ListenerHandler) {
        try? eventLoop.modify(fd: listener.fd, token: listener.token!, events: 0)
        _ = eventLoop.schedule(at: eventLoop.now + 100_000_000) { [weak self, weak listener] in
            guard let self, let listener, !listener.closed else { return }
            try? self.eventLoop.modify(fd: listener.fd, token: listener.token!, events: EpollEvents.input)
        }
    }

    func beginShutdown() {
        for l in listeners {
            eventLoop.deregister(fd: l.fd, token: l.token!)
            l.closed = true
            Socket.close(l.fd)
        }
        listeners.removeAll()
        for c in Array(connections.values) { c.shutdownRequested() }
    }

    func closeEverything() {
        for c in Array(connections.values) { c.close(reason: "server shutdown") }
    }
}

final class ListenerHandler: EventHandler {
    let fd: CInt
    var token: EventToken?
    var closed = false
    unowned let loop: ServerLoop

    init(fd: CInt, loop: ServerLoop) {
        self.fd = fd
        self.loop = loop
    }

    func handleEvents(_ events: UInt32) {
        // Bounded so one busy listener cannot starve the connections of this loop.
        for _ in 0..<64 {
            switch Socket.accept(fd) {
            case .accepted(let a): loop.accepted(a)
            case .wouldBlock: return
            case .transient(let e):
                loop.server.logger.debug("accept failed", [("error", "\(e)")])
            case .exhausted(let e):
                loop.server.logger.warning("accept paused: out of descriptors or memory", [("error", "\(e)")])
                loop.pauseAccepting(self)
                return
            }
        }
    }
}
