import Glibc
import SeedCore
import SeedHTTP
import SeedNet
import SeedPosix
import SeedTLS

/// Carries a loop-confined object through a @Sendable closure; only unwrapped back on its own loop.
struct LoopBound<T: AnyObject>: @unchecked Sendable {
    let value: T
}

/// One client connection: TLS handshake, request parsing, handler dispatch and response streaming.
/// Loop-confined: every method runs on the owning loop's thread. Edge-triggered, so `readable`/`writable`
/// remember the last edge until a read or write returns EAGAIN.
final class Connection: EventHandler {
    enum Phase { case handshaking, awaitingRequest, handling, sending, lingering, closed }
    enum DeadlineKind { case handshake, idle, head, body, writeStall, linger }

    let fd: CInt
    var token: EventToken?
    // Strong: a deferred answer or a stream delivery may hold the connection after its loop was shut
    // down; the loop's `connections` table drops the connection on close, which breaks the cycle.
    let loop: ServerLoop
    let engine: TLSEngine
    private var parser: RequestParser
    private let peerAddress: String
    private let peerPort: Int
    private let localPort: Int
    private var phase = Phase.handshaking
    private var readable = false
    /// The engine writes records straight to the socket while this is true (and nothing is queued), so the
    /// flag lives in the engine: a direct write that meets EAGAIN clears it, an EPOLLOUT edge sets it.
    private var writable: Bool {
        get { engine.socketWritable }
        set { engine.socketWritable = newValue }
    }
    private var peerEOF = false
    private var tlsVersion = ""
    private var tlsCipher = ""

    // Deadlines: one timer per connection, re-armed only when a deadline moves earlier.
    private var deadline: Int64 = 0
    private var deadlineKind = DeadlineKind.handshake
    private var timerArmedAt: Int64?
    private var timer: TimerID?
    /// Bytes of a request not yet answered have arrived (a partial head, a body in progress, or pipelined).
    private var requestBytesPending = false
    private var headStart: Int64?
    private var bodyStart: Int64?
    private var idleSince: Int64 = 0
    private var lastWriteProgress: Int64 = 0
    private var progressScheduled = false

    // The response being sent.
    private var segments: [BodySegment] = []
    private var segmentIndex = 0
    private var segmentOffset: UInt64 = 0
    private var streamChunk: [UInt8]?
    /// Where the pages of the current mapped file segment not yet released begin (an offset in that file).
    private var mappedReleaseFrom: UInt64 = 0
    private var streamPulling = false
    private var closeAfterResponse = false
    private var shutdownPending = false

    // Access-log facts of the current request.
    private var requestMethod = ""
    private var requestTarget = ""
    private var requestStartNs: Int64 = 0
    private var responseStatus = 0
    private var responseBodyBytes: UInt64 = 0

    init(accepted a: Socket.Accepted, engine: TLSEngine, loop: ServerLoop) {
        fd = a.fd
        peerAddress = a.peerAddress
        peerPort = a.peerPort
        localPort = a.localPort
        self.engine = engine
        self.loop = loop
        parser = RequestParser(limits: loop.server.configuration.limits)
        if bodyTuning.directWrites { engine.attachSocket(fd) }
    }

    private var server: HTTPSServer { loop.server }
    private var timeouts: ServerTimeouts { loop.server.configuration.timeouts }
    private var now: Int64 { loop.eventLoop.now }

    func start() {
        setDeadline(now + timeouts.handshake.nanoseconds, .handshake)
        readable = true
        progress()
    }

    func handleEvents(_ events: UInt32) {
        // A client that leaves while its answer is still being prepared (deferred work or a stream waiting on
        // upstream) is noticed here; nothing else would wake this connection. Cancelling releases upstream work.
        if events & (EpollEvents.error | EpollEvents.hangup | EpollEvents.readHangup) != 0,
            phase == .handling || streamPulling
        {
            close(reason: "client left while the response was being prepared")
            return
        }
        if events & (EpollEvents.input | EpollEvents.readHangup | EpollEvents.error | EpollEvents.hangup) != 0 {
            readable = true
        }
        if events & (EpollEvents.output | EpollEvents.error | EpollEvents.hangup) != 0 { writable = true }
        progress()
    }

    // MARK: the state machine

    /// Does as much work as the socket allows, then returns to the loop. A bounded number of steps per call
    /// keeps one fast client from starving the others; the rest continues on the next loop turn.
    private func progress() {
        var budget = 32
        while phase != .closed {
            if !collectDirectWrites() { return }
            budget -= 1
            if budget == 0 {
                scheduleProgress()
                return
            }
            if engine.pendingOutputCount > 0 {
                guard writable else {
                    armWriteStall()
                    return
                }
                flush()
                if phase == .closed { return }
                if engine.pendingOutputCount > 0 {
                    armWriteStall()
                    return
                }
            }
            switch phase {
            case .handshaking:
                if !stepHandshake() { return }
            case .awaitingRequest:
                if let event = parser.next() {
                    handle(event)
                    continue
                }
                if engine.hasBufferedInput {
                    decryptAll()
                    continue
                }
                if peerEOF {
                    close(reason: requestBytesPending ? "peer closed inside a request" : nil)
                    return
                }
                if shutdownPending && !requestBytesPending {
                    close(reason: nil)
                    return
                }
                guard readable else {
                    armRequestDeadline()
                    engine.releaseIdleBuffers()
                    return
                }
                readSocket()
            case .handling:
                return
            case .sending:
                if !pumpBody() { return }
                if phase == .sending && segmentIndex == segments.count && engine.pendingOutputCount == 0 {
                    finishResponse()
                }
            case .lingering:
                guard readable else { return }
                // Discard what the client still sends so closing does not reset the connection under our answer.
                switch Socket.read(fd, into: loop.readBuffer) {
                case .bytes: continue
                case .wouldBlock: readable = false
                case .endOfFile, .failed: close(reason: nil)
                }
                return
            case .closed:
                return
            }
        }
    }

    private func scheduleProgress() {
        guard !progressScheduled else { return }
        progressScheduled = true
        _ = loop.eventLoop.schedule(at: now) { [weak self] in
            guard let self else { return }
            self.progressScheduled = false
            self.progress()
        }
    }

    /// Returns false when the caller should return to the loop.
    /// Runs one handshake step; on completion records the session facts and moves on to requests.
    private func advanceHandshake() -> TLSHandshakeStatus {
        let status = engine.handshake()
        if case .complete = status, phase == .handshaking {
            tlsVersion = engine.protocolVersion
            tlsCipher = engine.cipherName
            server.counters.handshakesCompleted.add(1, ordering: .relaxed)
            phase = .awaitingRequest
            idleSince = now
        }
        return status
    }

    private func stepHandshake() -> Bool {
        switch advanceHandshake() {
        case .complete:
            return true
        case .wantInput:
            if engine.pendingOutputCount > 0 { return true }
            if peerEOF {
                handshakeFailed("peer closed during the handshake")
                return false
            }
            guard readable else { return false }
            readSocket()
            return phase != .closed
        case .failed(let error):
            handshakeFailed("\(error)")
            return false
        }
    }

    private func handshakeFailed(_ why: String) {
        server.counters.handshakesFailed.add(1, ordering: .relaxed)
        server.logger.debug("tls handshake failed", [("client.address", peerAddress), ("error", why)])
        // One attempt to deliver the alert OpenSSL queued; then close.
        if collectDirectWrites(), engine.pendingOutputCount > 0 && writable { flush() }
        close(reason: nil)
    }

    /// One read from the socket, decrypted straight out of the loop's buffer into the parser.
    private func readSocket() {
        switch Socket.read(fd, into: loop.readBuffer) {
        case .bytes(let n):
            if n < loop.readBuffer.count { readable = false }
            // OpenSSL reports why a handshake failed only once: keep that reason for the log line (a later
            // SSL_do_handshake on the failed session says no more than "SSL error 5").
            var failure: TLSError?
            engine.withBorrowedInput(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<n])) {
                if phase == .handshaking, case .failed(let error) = advanceHandshake() { failure = error }
                if phase == .awaitingRequest { decryptAll() }
            }
            if let failure { handshakeFailed("\(failure)") }
        case .wouldBlock:
            readable = false
        case .endOfFile:
            readable = false
            peerEOF = true
        case .failed(let e):
            close(reason: phase == .handshaking ? nil : "read failed: \(SystemError(call: "read", errno: e))")
        }
    }

    private func decryptAll() {
        guard phase != .handshaking else { return }
        while true {
            switch engine.read(into: loop.plainBuffer) {
            case .bytes(let n):
                if !requestBytesPending {
                    requestBytesPending = true
                    headStart = now
                }
                parser.append(UnsafeRawBufferPointer(rebasing: loop.plainBuffer[0..<n]))
            case .wantInput:
                return
            case .closed:
                peerEOF = true
                return
            case .failed(let error):
                server.logger.debug("tls read failed", [("client.address", peerAddress), ("error", "\(error)")])
                close(reason: nil)
                return
            }
        }
    }

    /// Accounts for the records the engine wrote straight to the socket; closes when such a write failed.
    /// Returns false when the connection is closed.
    private func collectDirectWrites() -> Bool {
        let n = engine.takeDirectWriteCount()
        if n > 0 {
            lastWriteProgress = now
            server.counters.bytesSent.add(UInt64(n), ordering: .relaxed)
        }
        if engine.directWriteErrno != 0 && phase != .closed { writeFailed(engine.directWriteErrno) }
        return phase != .closed
    }

    private func flush() {
        var failure: Int32?
        var total = 0
        engine.withPendingOutput { pending in
            while total < pending.count {
                switch Socket.write(fd, UnsafeRawBufferPointer(rebasing: pending[total...])) {
                case .bytes(let n): total += n
                case .wouldBlock:
                    writable = false
                    return total
                case .failed(let e):
                    failure = e
                    return total
                case .endOfFile:
                    return total
                }
            }
            return total
        }
        if total > 0 {
            lastWriteProgress = now
            server.counters.bytesSent.add(UInt64(total), ordering: .relaxed)
        }
        if let failure { writeFailed(failure) }
    }

    private func writeFailed(_ errno: Int32) {
        let e = SystemError(call: "write", errno: errno)
        if errno == EPIPE || errno == ECONNRESET {
            server.logger.debug("peer went away", [("client.address", peerAddress), ("error", "\(e)")])
            close(reason: nil)
        } else {
            close(reason: "write failed: \(e)")
        }
    }

    // MARK: requests

    private func handle(_ event: ParseEvent) {
        switch event {
        case .continueExpected:
            bodyStart = now
            let line: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"
            writePlain(UnsafeRawBufferPointer(start: line.utf8Start, count: line.utf8CodeUnitCount))
        case .error(let error):
            // The reason names the rule broken and never echoes header values, so it is safe to log.
            server.logger.info(
                "request refused",
                [("client.address", peerAddress), ("status", "\(error.status)"), ("reason", error.reason)])
            requestMethod = "-"
            requestTarget = "-"
            requestStartNs = headStart ?? now
            headStart = nil
            bodyStart = nil
            closeAfterResponse = true
            startResponse(Response.text(error.status, error.reason), method: "GET", request: nil)
        case .request(let request):
            // What is still buffered belongs to the next (pipelined) request; its clock starts now.
            requestBytesPending = parser.bufferedByteCount > 0
            headStart = requestBytesPending ? now : nil
            bodyStart = nil
            dispatch(request)
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        let counters = server.counters
        counters.requests.add(1, ordering: .relaxed)
        let id = counters.requestIDs.add(1, ordering: .relaxed).newValue
        requestMethod = request.method
        requestTarget = request.target
        requestStartNs = now
        closeAfterResponse = !request.keepAlive || shutdownPending
        let context = RequestContext(
            clientAddress: peerAddress, clientPort: peerPort, localPort: localPort, tlsVersion: tlsVersion,
            tlsCipher: tlsCipher, requestID: id)
        clearDeadline()
        switch server.handler.handle(request, context: context) {
        case .response(let response):
            startResponse(response, method: request.method, request: request)
        case .deferred(let work):
            phase = .handling
            let bound = LoopBound(value: self)
            let eventLoop = loop.eventLoop
            let box = LoopBound(value: RequestBox(request))
            Task.detached {
                let response = await work()
                eventLoop.execute {
                    bound.value.deferredFinished(response, request: box.value.request)
                }
            }
        }
    }

    private func deferredFinished(_ response: Response, request: HTTPRequest) {
        guard phase == .handling else {
            cancelStreams(response.body.segments)
            return
        }
        startResponse(response, method: request.method, request: request)
        progress()
    }

    private func startResponse(_ response: Response, method: String, request: HTTPRequest?) {
        var status = response.status
        var body = response.body
        var contentRange: String?
        let acceptsRanges = response.acceptsRanges && body.isSliceable
        if acceptsRanges, status == 200, let request, method == "GET" || method == "HEAD" {
            let total = body.length
            let answer = BodyPlan.rangeAnswer(
                range: request.headers["Range"], ifRange: request.headers["If-Range"],
                etag: response.headers["ETag"], length: total)
            switch answer {
            case .full: break
            case .partial(let s, let e):
                status = 206
                body = ResponseBody(BodyPlan.slice(body.segments, start: s, count: e - s + 1))
                contentRange = "bytes \(s)-\(e)/\(total)"
            case .unsatisfiable:
                status = 416
                body = .empty
                contentRange = "bytes */\(total)"
            }
        }
        if response.closeConnection { closeAfterResponse = true }
        let bodyAllowed = status >= 200 && status != 204 && status != 304
        let contentLength = body.length
        responseStatus = status
        if method == "HEAD" || !bodyAllowed {
            cancelStreams(body.segments)
            body = .empty
        }
        responseBodyBytes = body.length

        // The handler's fields go through SeedHTTP's sanitizing encoder; fields the server owns are dropped
        // from that set and appended directly (fixed names, numbers and the cached date need no sanitizing).
        var handlerHeaders = response.headers
        if handlerHeaders.fields.contains(where: { isServerOwnedField($0.name) }) {
            handlerHeaders = HTTPHeaders(handlerHeaders.fields.filter { !isServerOwnedField($0.name) })
        }
        loop.headBuffer.removeAll(keepingCapacity: true)
        encodeResponseHead(status: status, headers: handlerHeaders, into: &loop.headBuffer)
        loop.headBuffer.removeLast(2)  // reopen the head after the handler's fields
        if acceptsRanges { loop.headBuffer.append(contentsOf: "Accept-Ranges: bytes\r\n".utf8) }
        if let contentRange {
            loop.headBuffer.append(contentsOf: "Content-Range: ".utf8)
            loop.headBuffer.append(contentsOf: contentRange.utf8)
            loop.headBuffer.append(contentsOf: "\r\n".utf8)
        }
        if bodyAllowed {
            loop.headBuffer.append(contentsOf: "Content-Length: ".utf8)
            appendDecimal(contentLength, to: &loop.headBuffer)
            loop.headBuffer.append(contentsOf: "\r\n".utf8)
        }
        loop.appendDateField(to: &loop.headBuffer)
        if closeAfterResponse { loop.headBuffer.append(contentsOf: "Connection: close\r\n".utf8) }
        loop.headBuffer.append(contentsOf: "\r\n".utf8)
        // Head and a small in-memory body go out in one TLS record.
        // The body's segment array is kept as it is (a package has over a thousand segments; no copy per
        // connection), starting after the segments sent with the head.
        var first = 0
        while first < body.segments.count, case .bytes(let b) = body.segments[first],
            loop.headBuffer.count + b.count <= 16 * 1024
        {
            loop.headBuffer.append(contentsOf: b)
            first += 1
        }
        loop.headBuffer.withUnsafeBytes { writePlain($0) }
        segments = body.segments
        segmentIndex = first
        segmentOffset = 0
        phase = .sending
        lastWriteProgress = now
    }

    private func writePlain(_ bytes: UnsafeRawBufferPointer) {
        do throws(TLSError) { try engine.write(bytes) } catch {
            server.logger.error("tls write failed", [("client.address", peerAddress), ("error", "\(error)")])
            close(reason: nil)
        }
    }

    /// Moves body bytes into the TLS engine (and, with direct writes, through it onto the socket) until about
    /// one send buffer of ciphertext is queued or one step's worth was sent.
    /// Returns false while waiting for a stream chunk (or after closing).
    private func pumpBody() -> Bool {
        let bufferSize = server.configuration.sendBufferBytes
        let chunkBytes = bodyTuning.chunkBytes
        var stepBudget = bodyTuning.stepBytes
        while segmentIndex < segments.count {
            // Refill only once the socket took (nearly) everything: with direct writes the queue holds at most the
            // rest of one record the socket refused (16 KiB of storage), else at most two records (32 KiB),
            // however slowly the client reads.
            if engine.pendingOutputCount > bodyTuning.refillBelowBytes || engine.directWriteErrno != 0 { return true }
            // Records written straight to the socket leave nothing queued: hand the turn back now and then.
            if stepBudget <= 0 { return true }
            let segment = segments[segmentIndex]
            let remaining = segment.length - segmentOffset
            if remaining == 0 {
                segmentIndex += 1
                segmentOffset = 0
                continue
            }
            switch segment {
            case .bytes(let b):
                let n = Int(min(remaining, UInt64(chunkBytes)))
                stepBudget -= n
                b.withUnsafeBytes { p in
                    writePlain(UnsafeRawBufferPointer(rebasing: p[Int(segmentOffset)..<Int(segmentOffset) + n]))
                }
                segmentOffset += UInt64(n)
            case .file(let file, let offset, _):
                let want = Int(min(remaining, UInt64(chunkBytes)))
                stepBudget -= want
                if bodyTuning.mapFiles, let mapped = file.mapped(), offset + segmentOffset + UInt64(want) <= UInt64(mapped.count) {
                    // Encrypted straight out of the page cache (blobs are immutable, see SharedFile.mapped()).
                    if segmentOffset == 0 { mappedReleaseFrom = offset }
                    let start = Int(offset + segmentOffset)
                    writePlain(UnsafeRawBufferPointer(rebasing: mapped[start..<start + want]))
                    segmentOffset += UInt64(want)
                    // Pages sent leave the resident set (a served package must not count as our memory).
                    let position = offset + segmentOffset
                    if segmentOffset == segment.length || position - mappedReleaseFrom >= mappedReleaseBytes {
                        file.releaseMappedPages(from: mappedReleaseFrom, to: position)
                        mappedReleaseFrom = position
                    }
                    if phase == .closed { return false }
                    continue
                }
                let buffer = loop.fileBuffer
                var got = 0
                while got < want {
                    let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[got..<want])
                    let n: Int
                    do { n = try file.read(into: chunk, at: offset + segmentOffset + UInt64(got)) } catch {
                        server.logger.error("reading a response body failed", [("error", "\(error)")])
                        close(reason: nil)
                        return false
                    }
                    if n == 0 {
                        server.logger.error(
                            "response file is shorter than its planned length",
                            [("path", file.path), ("offset", "\(offset + segmentOffset + UInt64(got))")])
                        close(reason: nil)
                        return false
                    }
                    got += n
                }
                writePlain(UnsafeRawBufferPointer(rebasing: buffer[0..<want]))
                segmentOffset += UInt64(want)
            case .stream(let stream, let length):
                if let chunk = streamChunk {
                    streamChunk = nil
                    if UInt64(chunk.count) > remaining {
                        server.logger.error("body stream produced more than its planned length", [])
                        stream.cancel()
                        close(reason: nil)
                        return false
                    }
                    chunk.withUnsafeBytes { writePlain($0) }
                    segmentOffset += UInt64(chunk.count)
                    stepBudget -= chunk.count
                    continue
                }
                if streamPulling { return false }
                streamPulling = true
                // A producer that delivers nothing for as long as a stalled client would be allowed is cut off too.
                setDeadline(now + timeouts.writeStall.nanoseconds, .writeStall)
                let bound = LoopBound(value: self)
                let eventLoop = loop.eventLoop
                let maxBytes = Int(min(remaining, UInt64(bufferSize)))
                _ = length
                stream.pull(maxBytes: maxBytes) { chunk in
                    eventLoop.execute { bound.value.streamDelivered(chunk) }
                }
                return false
            }
            if phase == .closed { return false }
        }
        return true
    }

    private func streamDelivered(_ chunk: BodyChunk) {
        streamPulling = false
        guard phase == .sending else { return }
        switch chunk {
        case .data(let bytes):
            if bytes.isEmpty {
                server.logger.error("body stream delivered an empty chunk", [])
                close(reason: nil)
                return
            }
            streamChunk = bytes
            progress()
        case .end:
            if segmentIndex < segments.count, segmentOffset < segments[segmentIndex].length {
                server.logger.error("body stream ended before its planned length", [])
                close(reason: nil)
                return
            }
            progress()
        case .failed(let why):
            server.logger.warning("body stream failed; closing the connection", [("error", why)])
            close(reason: nil)
        }
    }

    private func finishResponse() {
        segments = []
        segmentIndex = 0
        segmentOffset = 0
        if let sink = server.accessLog {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            sink.record(
                AccessLogEntry(
                    time: Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9, clientAddress: peerAddress, clientPort: peerPort,
                    method: requestMethod, path: redactTokens(inTarget: requestTarget), status: responseStatus,
                    bytes: responseBodyBytes, durationMilliseconds: Double(now - requestStartNs) / 1e6,
                    tlsVersion: tlsVersion, tlsCipher: tlsCipher))
        }
        if closeAfterResponse {
            startLingeringClose()
            return
        }
        phase = .awaitingRequest
        idleSince = now
        engine.releaseIdleBuffers()
    }

    private func startLingeringClose() {
        engine.close()
        if collectDirectWrites(), engine.pendingOutputCount > 0 && writable { flush() }
        if phase == .closed { return }
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
        phase = .lingering
        setDeadline(now + 2_000_000_000, .linger)
    }

    func shutdownRequested() {
        shutdownPending = true
        switch phase {
        case .handshaking: close(reason: nil)
        case .awaitingRequest where !requestBytesPending: close(reason: nil)
        case .lingering: close(reason: nil)
        default: closeAfterResponse = true
        }
    }

    // MARK: deadlines

    private func armRequestDeadline() {
        // The parser moves body bytes out of its buffer as they arrive, but keeps a head until it is complete:
        // so nothing buffered while a request is pending means its body is being received.
        if requestBytesPending && (bodyStart != nil || parser.bufferedByteCount == 0) {
            let start = bodyStart ?? now
            bodyStart = start
            setDeadline(start + timeouts.requestBody.nanoseconds, .body)
        } else if requestBytesPending {
            let start = headStart ?? now
            headStart = start
            setDeadline(start + timeouts.requestHead.nanoseconds, .head)
        } else {
            setDeadline(idleSince + timeouts.idle.nanoseconds, .idle)
        }
    }

    private func armWriteStall() {
        guard phase == .sending || phase == .awaitingRequest || phase == .handshaking || phase == .lingering else {
            return
        }
        if phase == .handshaking { return }
        setDeadline(lastWriteProgress + timeouts.writeStall.nanoseconds, .writeStall)
    }

    private func setDeadline(_ at: Int64, _ kind: DeadlineKind) {
        deadline = at
        deadlineKind = kind
        if let armed = timerArmedAt, armed <= at { return }
        if let timer { loop.eventLoop.cancel(timer) }
        timerArmedAt = at
        timer = loop.eventLoop.schedule(at: at) { [weak self] in self?.timerFired() }
    }

    private func clearDeadline() { deadline = 0 }

    private func timerFired() {
        timerArmedAt = nil
        timer = nil
        guard deadline != 0, phase != .closed else { return }
        if deadline > now {
            let at = deadline
            deadline = 0
            setDeadline(at, deadlineKind)
            return
        }
        deadline = 0
        switch deadlineKind {
        case .handshake:
            server.counters.handshakesFailed.add(1, ordering: .relaxed)
            server.logger.debug("tls handshake timed out", [("client.address", peerAddress)])
            close(reason: nil)
        case .idle, .linger:
            close(reason: nil)
        case .writeStall:
            if streamPulling {
                server.logger.warning("body stream delivered nothing in time; closing", [("client.address", peerAddress)])
                close(reason: nil)
            } else if phase == .sending || engine.pendingOutputCount > 0 {
                server.logger.info("closing a stalled download", [("client.address", peerAddress)])
                close(reason: nil)
            }
        case .head, .body:
            guard phase == .awaitingRequest else { return }
            let what = deadlineKind == .head ? "request head" : "request body"
            let limit = deadlineKind == .head ? timeouts.requestHead : timeouts.requestBody
            server.logger.info("request timed out", [("client.address", peerAddress), ("timeout", what)])
            requestMethod = "-"
            requestTarget = "-"
            requestStartNs = headStart ?? now
            closeAfterResponse = true
            startResponse(Response.text(408, "\(what) not received within \(limit)"), method: "GET", request: nil)
            progress()
        }
    }

    // MARK: closing

    private func cancelStreams(_ segments: [BodySegment]) {
        for s in segments { if case .stream(let stream, _) = s { stream.cancel() } }
    }

    /// Closes the socket now. `reason` (when not nil) is logged at debug level.
    func close(reason: String?) {
        guard phase != .closed else { return }
        if let reason { server.logger.debug("connection closed", [("client.address", peerAddress), ("reason", reason)]) }
        let wasSending = phase == .sending || phase == .handling
        phase = .closed
        if segmentIndex < segments.count, case .file(let file, let offset, _) = segments[segmentIndex], segmentOffset > 0 {
            file.releaseMappedPages(from: mappedReleaseFrom, to: offset + segmentOffset)
        }
        if wasSending { cancelStreams(Array(segments[segmentIndex...])) }
        segments = []
        streamChunk = nil
        if let timer { loop.eventLoop.cancel(timer) }
        timer = nil
        if let token { loop.eventLoop.deregister(fd: fd, token: token) }
        engine.attachSocket(-1)  // the descriptor number may be reused by the next accept
        Socket.close(fd)
        server.counters.open.subtract(1, ordering: .relaxed)
        loop.connections[ObjectIdentifier(self)] = nil
    }

}

/// Content-Length, Transfer-Encoding, Connection and Date are the server's to set, compared without allocating.
func isServerOwnedField(_ name: String) -> Bool {
    func equalsLowercase(_ name: String, _ lower: StaticString) -> Bool {
        let n = name.utf8
        guard n.count == lower.utf8CodeUnitCount else { return false }
        var p = lower.utf8Start
        for byte in n {
            let folded = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if folded != p.pointee { return false }
            p += 1
        }
        return true
    }
    switch name.utf8.count {
    case 4: return equalsLowercase(name, "date")
    case 10: return equalsLowercase(name, "connection")
    case 14: return equalsLowercase(name, "content-length")
    case 17: return equalsLowercase(name, "transfer-encoding")
    default: return false
    }
}

func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
    var divisor: UInt64 = 1
    while divisor <= value / 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
        out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
        rest %= divisor
        divisor /= 10
    }
}

/// Lets a request cross to a detached task and back; only read on the owning loop.
final class RequestBox {
    let request: HTTPRequest
    init(_ request: HTTPRequest) { self.request = request }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
