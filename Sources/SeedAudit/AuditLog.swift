import Foundation
import Glibc
public import SeedCore
public import SeedLicensing
import SeedPosix

/// How the audit log writes: where, when to rotate, and how long records may wait for their fsync.
public struct AuditLogOptions: Sendable {
    public var directory: String
    /// A file is closed and a new one started before it would grow past this.
    public var maxFileBytes: Int = 64 << 20
    /// Start a new file when the UTC day changes.
    public var rotateDaily: Bool = true
    /// How long the first record of a batch may wait for more before the batch is written and fsynced.
    public var batchWindow: Duration = .milliseconds(50)
    /// A batch is written at once when this many records wait. Large, so that under load the window
    /// (`batchWindow`) decides: a few batches (each two fsyncs and a head store) a second, not one per 256
    /// records. The crash window stays `batchWindow`.
    public var batchMaxRecords: Int = 4096

    public init(directory: String) { self.directory = directory }
}

/// What `open` found on disk, compared with the head.
public enum AuditRecovery: Sendable, Equatable {
    /// No files and no head: a new chain.
    case fresh
    /// The files end where the head says.
    case clean
    /// The files were ahead of the head (the head write was lost); the chain was verified and the head advanced.
    case headAdvanced(from: UInt64?, to: UInt64)
    /// The head was ahead of the files: records `lost` were lost. An `audit-gap` record was written.
    case gap(lost: ClosedRange<UInt64>)
}

/// The append-only, hash-chained audit log (docs/audit.md). `record` only queues (it never waits for
/// the disk); a background thread writes batches, fsyncs them, then stores the head. A crash loses at
/// most the records of one batch window, and the next `open` reports such a loss in the log itself.
public final class AuditLog: DecisionSink, @unchecked Sendable {
    private enum Payload {
        case event(DecisionEvent)
        case record(AuditRecord)
    }

    private struct Pending {
        var seq: UInt64
        var time: AuditTime
        var payload: Payload
    }

    /// The file being appended to.
    private struct OpenFile {
        var name: AuditFileName
        var fd: CInt
        var size: Int
        var day: Int64
    }

    public let options: AuditLogOptions
    public let recovery: AuditRecovery
    private let headStore: any AuditHeadStore
    private let logger: Logger
    private let clock: @Sendable () -> AuditTime
    private let forwarder: SyslogForwarder?
    private let metrics: MetricsRegistry
    private let recordsCounter: Counter
    private let errorsCounter: Counter
    private let queueGauge: Gauge
    private let decisionCounters: CounterHandles<DecisionEvent.Kind>
    /// `licensesIssued` and `licensesReused`, resolved on first use.
    private let grantCounters: CounterHandles<Bool>
    private let reusedCounters: CounterHandles<Bool>

    // Guarded by `cond`.
    private let cond = NSCondition()
    private var pending: [Pending] = []
    /// Records taken off `pending` by the writer and not yet durable (counted in the queue gauge).
    private var inFlight = 0
    private var nextSeq: UInt64
    private var durableSeq: UInt64
    private var flushRequests = 0
    private var stopping = false
    private var stopped = false
    private var writeError: AuditError?
    private var writeErrorGeneration = 0

    // Owned by the writer thread (and by `open` before the thread starts).
    private var lastSeq: UInt64
    private var lastHash: String
    private var file: OpenFile?

    /// Opens (or creates) the log in `options.directory`, checks the files against the head and
    /// starts the writer thread. `headStore` defaults to `<dir>/HEAD`. Throws when the chain on disk
    /// contradicts the head (an edited record): run `seed-mirror audit verify`.
    public static func open(
        _ options: AuditLogOptions, headStore: (any AuditHeadStore)? = nil, logger: Logger = .discard,
        metrics: MetricsRegistry? = nil, forwarder: SyslogForwarder? = nil,
        clock: @escaping @Sendable () -> AuditTime = AuditTime.now
    ) throws(AuditError) -> AuditLog {
        try AuditLog(
            options: options, headStore: headStore ?? FileAuditHeadStore(directory: options.directory),
            logger: logger, metrics: metrics ?? MetricsRegistry(), forwarder: forwarder, clock: clock)
    }

    private init(
        options: AuditLogOptions, headStore: any AuditHeadStore, logger: Logger, metrics: MetricsRegistry,
        forwarder: SyslogForwarder?, clock: @escaping @Sendable () -> AuditTime
    ) throws(AuditError) {
        guard options.maxFileBytes >= 4096, options.batchMaxRecords >= 1 else {
            throw AuditError(.invalidArgument("maxFileBytes must be at least 4096 and batchMaxRecords at least 1"),
                path: options.directory)
        }
        self.options = options
        self.headStore = headStore
        self.logger = logger
        self.clock = clock
        self.forwarder = forwarder
        self.metrics = metrics
        recordsCounter = metrics.counter(MetricNames.auditRecords)
        errorsCounter = metrics.counter(MetricNames.auditWriteErrors)
        queueGauge = metrics.gauge(MetricNames.auditQueueDepth)
        decisionCounters = CounterHandles(metrics, MetricNames.decisions) { [("kind", $0.rawValue)] }
        grantCounters = CounterHandles(metrics, MetricNames.licensesIssued) { _ in [] }
        reusedCounters = CounterHandles(metrics, MetricNames.licensesReused) { _ in [] }
        let dir = options.directory
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw AuditError(.invalidArgument("cannot create the directory: \(error.localizedDescription)"), path: dir)
        }

        // The last complete line on disk; a torn tail (crash mid-write) is moved aside, never dropped.
        let files = try AuditFiles.list(directory: dir)
        var tail: (name: AuditFileName, seq: UInt64, hash: String, line: Int)?
        for name in files.reversed() {
            let path = dir + "/" + name.description
            var bytes = try AuditFiles.readAll(path)
            let split = AuditFiles.lines(bytes)
            if let torn = split.torn {
                try AuditLog.setAside(torn: Array(torn), of: path, keeping: bytes.count - torn.count, logger: logger)
                bytes.removeLast(torn.count)
            }
            guard let last = split.lines.last else { continue }
            guard case .success(let r) = AuditRecord.parse(last) else {
                throw AuditError(.chainBroken("the last line of \(name) (line \(split.lines.count)) is not a record"), path: dir)
            }
            tail = (name, r.seq, sha256Hex(last), split.lines.count)
            break
        }

        let head: AuditHead?
        do { head = try headStore.load() } catch let e as AuditError { throw e } catch {
            throw AuditError(.headStore("\(error)"), path: dir)
        }

        lastSeq = tail?.seq ?? 0
        lastHash = tail?.hash ?? auditGenesisHash
        var recovery = AuditRecovery.clean
        var gapRecord: AuditRecord?
        switch (head, tail) {
        case (nil, nil):
            recovery = .fresh
        case (let h?, let t?) where h.seq == t.seq:
            guard h.hash == t.hash else {
                throw AuditError(.chainBroken(
                    "the last record (\(t.name) line \(t.line), seq \(t.seq)) does not hash to the head's \(h.hash.prefix(12))"),
                    path: dir)
            }
        case (let h, let t?) where h == nil || h!.seq < t.seq:
            // The head write was lost (or the head store is new): accept the files only if they verify.
            let v = try AuditVerifier.verify(directory: dir, head: h)
            if let p = v.problem { throw AuditError(.chainBroken(p.description), path: dir) }
            recovery = .headAdvanced(from: h?.seq, to: t.seq)
            logger.notice("audit head behind the log; chain verified, head advanced",
                [("audit.head.seq", h.map { String($0.seq) } ?? "none"), ("audit.last.seq", String(t.seq))])
        case (let h?, _):
            // Head ahead of the files: records that were reported durable are gone. Say so, in the log too.
            let lost = (lastSeq + 1)...h.seq
            recovery = .gap(lost: lost)
            metrics.counter(MetricNames.auditGaps).increment()
            logger.error("auditGap: audit records lost before this start",
                [("audit.lost.first", String(lost.lowerBound)), ("audit.lost.last", String(lost.upperBound)),
                 ("audit.head.seq", String(h.seq)), ("audit.last.seq", String(lastSeq))])
            var g = AuditRecord(seq: 0, time: clock(), event: AuditRecord.gapEvent, prev: "")
            g.reason = "records \(lost.lowerBound)-\(lost.upperBound) lost: the head was at seq \(h.seq) "
                + "(\(h.hash.prefix(16))) but the log ended at seq \(lastSeq)"
            gapRecord = g
            lastSeq = h.seq
        default:
            break
        }
        self.recovery = recovery
        nextSeq = lastSeq + 1
        durableSeq = lastSeq
        durableHash = lastHash
        if let t = tail {
            let path = dir + "/" + t.name.description
            let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw AuditError(.io(SystemError.current("open", path: path)), path: path) }
            var st = stat()
            _ = fstat(fd, &st)
            file = OpenFile(name: t.name, fd: fd, size: Int(st.st_size), day: dayOf(t.name))
        }
        if case .headAdvanced(_, let to) = recovery {
            do { try headStore.store(AuditHead(seq: to, hash: lastHash)) } catch {
                throw AuditError(.headStore("\(error)"), path: dir)
            }
        }
        if var g = gapRecord {
            g.seq = nextSeq
            nextSeq += 1
            try writeBatch([Pending(seq: g.seq, time: g.time, payload: .record(g))])
            durableSeq = g.seq
            durableHash = lastHash
        }
        let t = Thread { [self] in writerLoop() }
        t.name = "seed-audit-writer"
        t.start()
    }

    deinit {
        if let f = file { _ = Glibc.close(f.fd) }
    }

    /// Queues one decision. Never waits for the disk; safe from any thread, including event loops.
    public func record(_ event: DecisionEvent) {
        let time = clock()
        decisionCounters.counter(event.kind).increment()
        switch event.kind {
        case .issued, .renewed: grantCounters.counter(true).increment()
        case .reused: reusedCounters.counter(false).increment()
        default: break
        }
        if let used = event.quotaUsed, let total = event.quotaTotal {
            metrics.gauge(MetricNames.quotaRemaining, labels: [("account", event.account ?? "default")])
                .set(Double(total - used))
        }
        cond.lock()
        if stopping {
            cond.unlock()
            logger.error("audit record after close dropped", [("audit.event", event.kind.rawValue)])
            return
        }
        pending.append(Pending(seq: nextSeq, time: time, payload: .event(event)))
        nextSeq += 1
        queueGauge.set(Double(pending.count + inFlight))
        if pending.count == 1 || pending.count >= options.batchMaxRecords { cond.broadcast() }
        cond.unlock()
    }

    /// Waits until every record queued before this call is on disk and the head is stored.
    /// Throws the write error when the disk refuses them (they stay queued and are retried).
    public func flush() throws(AuditError) {
        cond.lock()
        defer { cond.unlock() }
        let target = nextSeq - 1
        let generation = writeErrorGeneration
        flushRequests += 1
        cond.broadcast()
        defer { flushRequests -= 1 }
        while durableSeq < target {
            if writeErrorGeneration != generation, let e = writeError { throw e }
            if stopped { throw AuditError(.closed, path: options.directory) }
            cond.wait()
        }
    }

    /// Flushes, stops the writer thread and closes the file. Later records are dropped with an error log.
    public func close() throws(AuditError) {
        defer {
            cond.lock()
            stopping = true
            cond.broadcast()
            while !stopped { cond.wait() }
            cond.unlock()
        }
        try flush()
    }

    /// The head as of the last durable batch.
    public var durableHead: AuditHead {
        cond.lock()
        defer { cond.unlock() }
        return AuditHead(seq: durableSeq, hash: durableHash)
    }
    private var durableHash = auditGenesisHash

    private func writerLoop() {
        cond.lock()
        while true {
            while pending.isEmpty && !stopping { cond.wait() }
            if pending.isEmpty && stopping { break }
            // Let the batch fill for up to one window, unless someone is waiting or it is full.
            let deadline = Date().addingTimeInterval(seconds(options.batchWindow))
            while pending.count < options.batchMaxRecords && flushRequests == 0 && !stopping {
                if !cond.wait(until: deadline) { break }
            }
            // Take the whole queue in O(1): event loops calling `record` never wait behind a copy of
            // thousands of records. It is written in batches of at most `batchMaxRecords`, outside the lock.
            var taken: [Pending] = []
            swap(&taken, &pending)
            inFlight = taken.count
            var failure: AuditError?
            var written = 0
            while written < taken.count {
                let end = min(taken.count, written + options.batchMaxRecords)
                cond.unlock()
                do throws(AuditError) {
                    try writeBatch(written == 0 && end == taken.count ? taken : Array(taken[written..<end]))
                } catch {
                    failure = error
                }
                cond.lock()
                if failure != nil { break }
                written = end
                inFlight = taken.count - written
                durableSeq = taken[end - 1].seq
                durableHash = lastHash
                cond.broadcast()
            }
            inFlight = 0
            if let failure {
                // What was not written goes back in front of what came meanwhile, in order, for the retry.
                pending.insert(contentsOf: taken[written...], at: 0)
                errorsCounter.increment()
                writeError = failure
                writeErrorGeneration += 1
                cond.broadcast()
                logger.error("audit batch write failed; retrying", [("audit.error", failure.description)])
                if stopping { break }
                _ = cond.wait(until: Date().addingTimeInterval(max(0.2, seconds(options.batchWindow))))
                continue
            }
            queueGauge.set(Double(pending.count))
        }
        stopped = true
        cond.broadcast()
        cond.unlock()
    }

    /// Writes records in order, rotating as needed, fsyncs, then stores the head. On failure the files
    /// are cut back to where they were, so a retry writes the same records again.
    private func writeBatch(_ batch: [Pending]) throws(AuditError) {
        let startSeq = lastSeq
        let startHash = lastHash
        let startFile = file
        var created: [AuditFileName] = []
        var buffer: [UInt8] = []
        var bytes: [UInt8] = []
        var lines: [(String, String, AuditTime)] = []
        do throws(AuditError) {
            for p in batch {
                var r: AuditRecord
                switch p.payload {
                case .event(let e): r = AuditRecord(seq: p.seq, time: p.time, event: e, prev: lastHash)
                case .record(let t):
                    r = t
                    r.seq = p.seq
                    r.prev = lastHash
                }
                bytes.removeAll(keepingCapacity: true)
                r.appendLine(to: &bytes)
                let hash = sha256Hex(bytes)
                bytes.append(0x0A)
                if needsRotation(buffered: buffer.count, adding: bytes.count, day: p.time.dayNumber) {
                    try writeBuffered(&buffer)
                    try rotate(day: p.time.dayNumber, time: p.time, created: &created)
                }
                buffer += bytes
                lastHash = hash
                lastSeq = p.seq
                if forwarder != nil { lines.append((String(decoding: bytes.dropLast(), as: UTF8.self), r.event, r.time)) }
            }
            try writeBuffered(&buffer)
            if let f = file {
                do { _ = try retryingEINTR("fsync", path: name(f.name)) { fsync(f.fd) } } catch {
                    throw AuditError(.io(error), path: name(f.name))
                }
            }
            do { try headStore.store(AuditHead(seq: lastSeq, hash: lastHash)) } catch let e as AuditError { throw e } catch {
                throw AuditError(.headStore("\(error)"), path: options.directory)
            }
        } catch {
            rollBack(to: startFile, created: created)
            lastSeq = startSeq
            lastHash = startHash
            throw error
        }
        recordsCounter.increment(by: UInt64(batch.count))
        if let forwarder {
            for (line, event, time) in lines { forwarder.send(line: line, event: event, time: time) }
        }
    }

    private func needsRotation(buffered: Int, adding bytes: Int, day: Int64) -> Bool {
        guard let f = file else { return true }
        let current = f.size + buffered
        // A record longer than a whole file still goes in, alone.
        if current > 0 && current + bytes > options.maxFileBytes { return true }
        return options.rotateDaily && day > f.day && current > 0
    }

    private func writeBuffered(_ buffer: inout [UInt8]) throws(AuditError) {
        guard !buffer.isEmpty, let f = file else { return }
        do { try writeAll(f.fd, buffer, path: name(f.name)) } catch { throw AuditError(.io(error), path: name(f.name)) }
        file!.size += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    private func rotate(day: Int64, time: AuditTime, created: inout [AuditFileName]) throws(AuditError) {
        var newName: AuditFileName
        if let f = file {
            do { _ = try retryingEINTR("fsync", path: name(f.name)) { fsync(f.fd) } } catch {
                throw AuditError(.io(error), path: name(f.name))
            }
            // Never name a file before its predecessor, even when the clock stepped back.
            let date = max(time.compactDate, f.name.compactDate)
            newName = AuditFileName(compactDate: date, index: date == f.name.compactDate ? f.name.index + 1 : 1)
            if startsEmpty(f) { return }
        } else {
            newName = AuditFileName(compactDate: time.compactDate, index: 1)
        }
        while FileManager.default.fileExists(atPath: name(newName)) { newName.index += 1 }
        let path = name(newName)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw AuditError(.io(SystemError.current("open", path: path)), path: path) }
        fsyncDirectory(of: path)
        if let f = file { _ = Glibc.close(f.fd) }
        created.append(newName)
        file = OpenFile(name: newName, fd: fd, size: 0, day: dayOf(newName))
    }

    /// An empty current file is reused rather than followed by another.
    private func startsEmpty(_ f: OpenFile) -> Bool { f.size == 0 }

    private func rollBack(to start: OpenFile?, created: [AuditFileName]) {
        if var s = start, file?.name == s.name {
            _ = ftruncate(s.fd, off_t(s.size))
            s.fd = file!.fd
            file = s
            return
        }
        if let f = file { _ = Glibc.close(f.fd) }
        for n in created { unlink(name(n)) }
        file = nil
        if var s = start {
            // The old descriptor was closed at rotation; open it again.
            s.fd = Glibc.open(name(s.name), O_WRONLY | O_APPEND | O_CLOEXEC)
            if s.fd >= 0 {
                _ = ftruncate(s.fd, off_t(s.size))
                file = s
            }
        }
    }

    private func name(_ n: AuditFileName) -> String { options.directory + "/" + n.description }

    private static func setAside(torn: [UInt8], of path: String, keeping size: Int, logger: Logger) throws(AuditError) {
        let aside = path + ".torn"
        let fd = Glibc.open(aside, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw AuditError(.io(SystemError.current("open", path: aside)), path: aside) }
        defer { _ = Glibc.close(fd) }
        do {
            try writeAll(fd, torn + [0x0A], path: aside)
            _ = try retryingEINTR("fsync", path: aside) { fsync(fd) }
            _ = try retryingEINTR("truncate", path: path) { truncate(path, off_t(size)) }
        } catch { throw AuditError(.io(error), path: path) }
        logger.warning("audit log ended in a torn line (crash during a write); moved aside",
            [("audit.file", path), ("audit.torn.bytes", String(torn.count)), ("audit.aside", aside)])
    }
}

private func dayOf(_ n: AuditFileName) -> Int64 {
    AuditTime(parsing: "\(n.compactDate.prefix(4))-\(n.compactDate.dropFirst(4).prefix(2))-\(n.compactDate.suffix(2))")?
        .dayNumber ?? 0
}

func seconds(_ d: Duration) -> Double {
    let (s, a) = d.components
    return Double(s) + Double(a) / 1e18
}
