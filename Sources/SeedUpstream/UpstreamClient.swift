import Foundation
public import SeedCore
import SeedHTTP

/// HTTPS/1.1 client for the vendor cloud, the vendor portal or a parent SeedMirror.
///
/// Each call opens one connection (`Connection: close`), optionally through a `CONNECT` proxy, and runs its
/// blocking socket work on a thread of its own, never on the Swift concurrency pool. Nothing is retried:
/// a request that may issue a license is sent at most once, and `UpstreamError.stage` says whether it left.
public final class UpstreamClient: Sendable {
    public let configuration: UpstreamConfiguration
    private let logger: Logger
    private let tls: ClientTLSContext

    /// Loads the trust store once; throws when the CA file cannot be read.
    public init(configuration: UpstreamConfiguration, logger: Logger) throws(UpstreamError) {
        // A peer that closes mid-write must give EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        self.configuration = configuration
        self.logger = logger
        self.tls = try ClientTLSContext(caFile: configuration.caFile)
    }

    /// Sends `request` and reads the whole answer (any status), bounded by `maxBodyBytes`.
    public func send(_ request: UpstreamRequest) async throws(UpstreamError) -> UpstreamResponse {
        let result = await runOnThread { () -> Result<UpstreamResponse, UpstreamError> in
            do throws(UpstreamError) { return .success(try self.sendBlocking(request)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The blocking form of `send`, for callers already on a thread of their own.
    public func sendBlocking(_ request: UpstreamRequest) throws(UpstreamError) -> UpstreamResponse {
        let started = ContinuousClock.now
        let limit = UInt64(configuration.maxBodyBytes)
        let (reader, head) = try open(request, bodyLimit: limit)
        if let declared = head.contentLength, declared > limit {
            throw UpstreamError(
                .bodyTooLarge(limit: limit), stage: .answered, endpoint: reader.endpoint,
                detail: "Content-Length \(declared)")
        }
        var body: [UInt8] = []
        while let piece = try reader.readBody(maxBytes: 256 * 1024) { body += piece }
        logger.debug(
            "upstream answered",
            [
                ("upstream.url", request.url.description), ("http.method", request.method),
                ("http.status", String(head.status)), ("body.bytes", String(body.count)),
                ("duration.ms", String(milliseconds(ContinuousClock.now - started))),
            ])
        return UpstreamResponse(head: head, body: body)
    }

    /// Sends `request` and returns once the answer's head is in; pull the body from the returned stream.
    public func stream(_ request: UpstreamRequest) async throws(UpstreamError) -> UpstreamBodyStream {
        let worker = BlockingWorker(name: "seed-upstream-stream")
        let result = await worker.run { () -> Result<UpstreamBodyStream, UpstreamError> in
            do throws(UpstreamError) {
                return .success(try self.openStream(request, worker: worker))
            } catch {
                return .failure(error)
            }
        }
        if case .failure = result { worker.stop() }
        return try result.get()
    }

    /// The blocking form of `stream`; the returned stream's `nextBlocking` must be used from one thread at a time.
    public func streamBlocking(_ request: UpstreamRequest) throws(UpstreamError) -> UpstreamBodyStream {
        let worker = BlockingWorker(name: "seed-upstream-stream")
        do throws(UpstreamError) {
            return try openStream(request, worker: worker)
        } catch {
            worker.stop()
            throw error
        }
    }

    private func openStream(_ request: UpstreamRequest, worker: BlockingWorker) throws(UpstreamError)
        -> UpstreamBodyStream
    {
        let limit = configuration.maxStreamBytes
        let (reader, head) = try open(request, bodyLimit: limit)
        if let declared = head.contentLength, declared > limit {
            throw UpstreamError(
                .bodyTooLarge(limit: limit), stage: .answered, endpoint: reader.endpoint,
                detail: "Content-Length \(declared)")
        }
        logger.debug(
            "upstream stream started",
            [
                ("upstream.url", request.url.description), ("http.method", request.method),
                ("http.status", String(head.status)),
            ])
        return UpstreamBodyStream(head: head, reader: reader, worker: worker)
    }

    private func open(_ request: UpstreamRequest, bodyLimit: UInt64) throws(UpstreamError) -> (
        ResponseReader, UpstreamResponseHead
    ) {
        let wire = try serialize(request)
        let connection: BlockingTLSConnection
        do throws(UpstreamError) {
            connection = try BlockingTLSConnection(url: request.url, configuration: configuration, tls: tls)
        } catch {
            logger.info(
                "upstream connection failed",
                [("upstream.url", request.url.description), ("error", error.description)])
            throw error
        }
        try connection.writeAll(wire)
        let reader = ResponseReader(
            connection: connection, bodyLimit: bodyLimit, maxHeadBytes: configuration.maxHeadBytes)
        let head = try reader.readHead(requestMethod: request.method)
        return (reader, head)
    }

    private func serialize(_ request: UpstreamRequest) throws(UpstreamError) -> [UInt8] {
        func bad(_ detail: String) -> UpstreamError {
            UpstreamError(.invalidRequest, stage: .notSent, endpoint: request.url.description, detail: detail)
        }
        func clean(_ s: String) -> Bool { !s.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) }
        guard !request.method.isEmpty, request.method.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
            throw bad("method must be upper-case letters")
        }
        guard request.url.target.hasPrefix("/"), clean(request.url.target), !request.url.target.contains(" ") else {
            throw bad("request target must be an origin-form path")
        }
        var head = "\(request.method) \(request.url.target) HTTP/1.1\r\nHost: \(request.url.authority)\r\n"
        var hasUserAgent = false
        for (name, value) in request.headers {
            let lower = name.lowercased()
            if ["host", "content-length", "connection", "transfer-encoding"].contains(lower) { continue }
            // The value may be a secret, so the error names only the header.
            guard !name.isEmpty, clean(name), !name.contains(":"), !name.contains(" "), clean(value) else {
                throw bad("header \(clean(name) ? name : "?") has a forbidden character")
            }
            if lower == "user-agent" { hasUserAgent = true }
            head += "\(name): \(value)\r\n"
        }
        if !hasUserAgent { head += "User-Agent: \(configuration.userAgent)\r\n" }
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            head += "Content-Length: \(request.body.count)\r\n"
        }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + request.body
    }
}

/// The body of an upstream answer, pulled piece by piece while it arrives (a cold miss relayed to a seed).
/// Calls must not overlap; `cancel` may be called from anywhere, at any time.
public final class UpstreamBodyStream: @unchecked Sendable {
    public let head: UpstreamResponseHead
    // `reader` is used only by the one caller at a time (or the worker thread for `next`).
    private let reader: ResponseReader
    private let worker: BlockingWorker
    private let cancelled = Lock(false)

    init(head: UpstreamResponseHead, reader: ResponseReader, worker: BlockingWorker) {
        self.head = head
        self.reader = reader
        self.worker = worker
    }

    deinit { worker.stop() }

    /// Body bytes delivered so far.
    public var bytesDelivered: UInt64 { reader.delivered }

    /// The next piece of the body (at most `maxBytes`), or nil once it is complete.
    public func next(maxBytes: Int = 256 * 1024) async throws(UpstreamError) -> [UInt8]? {
        let result = await worker.run { () -> Result<[UInt8]?, UpstreamError> in
            do throws(UpstreamError) { return .success(try self.nextBlocking(maxBytes: maxBytes)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Callback form of `next` (fits `BodyStream.pull`): reads on the stream's own thread and calls `deliver`
    /// there with the next piece, nil at the end, or the error. Calls must not overlap.
    public func pull(maxBytes: Int, _ deliver: @escaping @Sendable (Result<[UInt8]?, UpstreamError>) -> Void) {
        worker.submit {
            do throws(UpstreamError) { deliver(.success(try self.nextBlocking(maxBytes: maxBytes))) } catch {
                deliver(.failure(error))
            }
        }
    }

    /// The blocking form of `next`.
    public func nextBlocking(maxBytes: Int = 256 * 1024) throws(UpstreamError) -> [UInt8]? {
        if cancelled.withLock({ $0 }) {
            throw UpstreamError(.cancelled, stage: .outcomeUnknown, endpoint: reader.endpoint, detail: "cancelled")
        }
        do throws(UpstreamError) {
            return try reader.readBody(maxBytes: maxBytes)
        } catch {
            if cancelled.withLock({ $0 }) {
                throw UpstreamError(.cancelled, stage: .outcomeUnknown, endpoint: reader.endpoint, detail: "cancelled")
            }
            throw error
        }
    }

    /// Stops the transfer and closes the connection; a blocked `next` fails with `.cancelled`.
    public func cancel() {
        cancelled.withLock { $0 = true }
        reader.abort()
    }
}

/// Runs blocking closures one after another on a dedicated thread.
final class BlockingWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopped = false

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            submit { c.resume(returning: body()) }
        }
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets queued jobs finish, then ends the thread.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }
}

/// Runs one blocking closure on a fresh thread.
func runOnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        let thread = Thread { c.resume(returning: body()) }
        thread.name = "seed-upstream"
        thread.start()
    }
}
