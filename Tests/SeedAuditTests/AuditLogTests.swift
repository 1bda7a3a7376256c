import Foundation
import SeedAudit
import SeedCore
import SeedLicensing
import SeedTestSupport
import Testing

/// Writes `count` records through the real writer, rotating by size (4 KiB) and by day.
@discardableResult
func writeLog(
    _ dir: String, count: Int, start: AuditTime = day("2026-11-20T10:00:00Z"), maxFileBytes: Int = 4096
) throws -> AuditHead {
    let clock = ManualWallClock(start)
    var options = AuditLogOptions(directory: dir)
    options.maxFileBytes = maxFileBytes
    options.batchWindow = .milliseconds(5)
    let log = try AuditLog.open(options, clock: clock.function)
    for i in 1...count {
        log.record(event(i % 3 == 0 ? .reused : .issued, host: "ws\(i)", account: "acme", used: i, total: 1000))
        clock.advance(ms: 45 * 60 * 1000)  // 45 minutes: the run spans several days
    }
    try log.close()
    return log.durableHead
}

@Test func realWriterChainVerifiesAcrossRotatedFiles() async throws {
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 120)
        #expect(head.seq == 120)
        let files = try auditFiles(dir)
        #expect(files.count >= 3)
        // Days changed at least twice, so there are files of several dates...
        let dates = files.map { String($0.0.prefix(14)) }
        #expect(Set(dates).count >= 3)
        // ...and files filled up within a day.
        #expect(dates.count > Set(dates).count)
        #expect(files.contains { $0.0.hasSuffix("-002.jsonl") })
        for (name, _) in files {
            let size = try FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? Int ?? 0
            #expect(size <= 4096, "\(name) has \(size) bytes")
        }
        // The first record of a later file links to the last record of the file before.
        let secondFirst = AuditRecord.parse(Array(files[1].1[0].utf8))
        let lastOfFirst = files[0].1.last!
        #expect(try secondFirst.get().prev == sha256Hex(Array(lastOfFirst.utf8)))
        // Each line is the canonical encoding of its parsed record.
        for (_, lines) in files {
            for l in lines { #expect(try AuditRecord.parse(Array(l.utf8)).get().line == l) }
        }
        let stored = try FileAuditHeadStore(directory: dir).load()
        #expect(stored == head)
        let v = try AuditVerifier.verify(directory: dir, head: stored)
        #expect(v.isIntact, "\(v.summary)")
        #expect(v.records == 120)
        #expect(v.summary == "audit log intact: 120 records")
    }
}

@Test func recordFieldsAndTimeFormat() throws {
    var e = event(.issued, host: "ws01", account: "acme", used: 3, total: 10)
    e.comment = "line\nbreak \"quoted\" \u{1}"
    e.portalHMAC = "abc-_"
    e.aliasFlag = true
    let r = AuditRecord(seq: 7, time: day("2026-12-03T15:54:19.123Z"), event: e, prev: auditGenesisHash)
    #expect(r.line.hasPrefix("{\"seq\":7,\"time\":\"2026-12-03T15:54:19.123Z\",\"event\":\"issued\",\"route\":\"cloud\",\"account\":\"acme\""))
    #expect(r.line.contains("\"comment\":\"line\\nbreak \\\"quoted\\\" \\u0001\""))
    #expect(r.line.hasSuffix(",\"reportOnly\":false,\"alias\":true,\"reason\":null,\"prev\":\"\(auditGenesisHash)\"}"))
    #expect(try AuditRecord.parse(Array(r.line.utf8)).get() == r)
    #expect(AuditTime(parsing: "2026-12-03T16:54:19.1+01:00")?.rfc3339 == "2026-12-03T15:54:19.100Z")
    #expect(AuditTime(parsing: "2024-02-29")?.rfc3339 == "2024-02-29T00:00:00.000Z")
    #expect(AuditTime(parsing: "2023-02-29") == nil)
    #expect(day("2026-12-03T00:00:00Z").isoWeek == "2026-W49")
    #expect(day("2027-01-01T00:00:00Z").isoWeek == "2026-W53")
}

@Test func verifyNamesAnEditedByte() async throws {
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 60)
        var files = try auditFiles(dir)
        let (fi, li) = try #require(locate(files, seq: 23))
        files[fi].1[li] = files[fi].1[li].replacingOccurrences(of: "\"host\":\"ws23\"", with: "\"host\":\"ws24\"")
        try writeLines(dir, files[fi].0, files[fi].1)
        let v = try AuditVerifier.verify(directory: dir, head: head)
        let p = try #require(v.problem)
        #expect(p.kind == .edited)
        #expect(p.file == files[fi].0 && p.line == li + 1 && p.seq == 23)
        #expect(v.summary.contains("record edited at \(files[fi].0) line \(li + 1) (seq 23)"))
    }
}

@Test func verifyNamesAnEditedPrevAndTheLastRecord() async throws {
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 30)
        var files = try auditFiles(dir)
        // One byte of the prev field of seq 12.
        let (fi, li) = try #require(locate(files, seq: 12))
        var bytes = Array(files[fi].1[li].utf8)
        let at = bytes.count - 5
        bytes[at] = bytes[at] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        files[fi].1[li] = String(decoding: bytes, as: UTF8.self)
        try writeLines(dir, files[fi].0, files[fi].1)
        let p = try #require(try AuditVerifier.verify(directory: dir, head: head).problem)
        #expect(p.kind == .edited && p.seq == 12 && p.line == li + 1)
    }
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 30)
        var files = try auditFiles(dir)
        let last = files.count - 1
        files[last].1[files[last].1.count - 1] = files[last].1.last!.replacingOccurrences(of: "ws30", with: "ws31")
        try writeLines(dir, files[last].0, files[last].1)
        let p = try #require(try AuditVerifier.verify(directory: dir, head: head).problem)
        #expect(p.kind == .edited && p.seq == 30 && p.file == files[last].0 && p.line == files[last].1.count)
    }
}

@Test func verifyNamesADeletedLine() async throws {
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 60)
        var files = try auditFiles(dir)
        let (fi, li) = try #require(locate(files, seq: 41))
        files[fi].1.remove(at: li)
        try writeLines(dir, files[fi].0, files[fi].1)
        let v = try AuditVerifier.verify(directory: dir, head: head)
        let p = try #require(v.problem)
        #expect(p.kind == .deleted(missing: 41...41))
        #expect(p.seq == 42)
        let (fj, lj) = try #require(locate(try auditFiles(dir), seq: 42))
        #expect(p.file == files[fj].0 && p.line == lj + 1)
        #expect(v.summary.contains("record seq 41 is missing"))
    }
}

@Test func verifyNamesReorderedLines() async throws {
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 60)
        var files = try auditFiles(dir)
        var (fi, li) = try #require(locate(files, seq: 30))
        if li + 1 >= files[fi].1.count { (fi, li) = try #require(locate(files, seq: 32)) }
        let seqA = li
        files[fi].1.swapAt(seqA, seqA + 1)
        try writeLines(dir, files[fi].0, files[fi].1)
        let p = try #require(try AuditVerifier.verify(directory: dir, head: head).problem)
        #expect(p.kind == .reordered)
        #expect(p.file == files[fi].0 && p.line == li + 1)
        let moved = try AuditRecord.parse(Array(files[fi].1[li].utf8)).get().seq
        #expect(p.seq == moved)
    }
}

@Test func verifyNamesATruncatedTail() async throws {
    try await withTemporaryDirectory { dir in
        let head = try writeLog(dir, count: 60)
        var files = try auditFiles(dir)
        // Cut the last three records, across files if need be (a file may be left empty).
        var cut = 3
        for fi in files.indices.reversed() where cut > 0 {
            let n = min(cut, files[fi].1.count)
            files[fi].1.removeLast(n)
            cut -= n
            try writeLines(dir, files[fi].0, files[fi].1)
        }
        let v = try AuditVerifier.verify(directory: dir, head: head)
        let p = try #require(v.problem)
        #expect(p.kind == .truncatedTail(headSeq: 60))
        let (fi, li) = try #require(locate(files, seq: 57))
        #expect(p.seq == 57 && p.file == files[fi].0 && p.line == li + 1)
        #expect(v.summary.contains("records 58-60 are missing from the end"))
    }
}

@Test func restartAfterLostTailWritesAGapRecordLoudly() async throws {
    try await withTemporaryDirectory { dir in
        try writeLog(dir, count: 20, start: day("2026-11-20T00:00:00Z"), maxFileBytes: 1 << 20)
        var files = try auditFiles(dir)
        let last = files.count - 1
        #expect(files.count == 1)
        files[last].1.removeLast(3)
        try writeLines(dir, files[last].0, files[last].1)

        let sink = MemoryLogSink()
        let clock = ManualWallClock(day("2026-11-21T12:00:00Z"))
        let log = try AuditLog.open(AuditLogOptions(directory: dir), logger: Logger(level: .info, sink: sink), clock: clock.function)
        #expect(log.recovery == .gap(lost: 18...20))
        #expect(sink.lines.contains { $0.hasPrefix("error auditGap:") && $0.contains("audit.lost.first=18") })
        log.record(event(.issued, host: "after-restart"))
        try log.close()
        #expect(log.durableHead.seq == 22)
        let all = try AuditFiles.records(directory: dir)
        let gap = try #require(all.first { $0.event == AuditRecord.gapEvent })
        #expect(gap.seq == 21)
        #expect(gap.reason?.contains("records 18-20 lost") == true)
        let v = try AuditVerifier.verify(directory: dir, head: try FileAuditHeadStore(directory: dir).load())
        #expect(v.isIntact, "\(v.summary)")
        #expect(v.warnings.contains { $0.contains("acknowledged gap") && $0.contains("records 18-20") })
    }
}

@Test func restartAfterLostHeadWriteAdvancesTheHead() async throws {
    try await withTemporaryDirectory { dir in
        try writeLog(dir, count: 10)
        let files = try auditFiles(dir)
        let (fi, li) = try #require(locate(files, seq: 7))
        let store = FileAuditHeadStore(directory: dir)
        try store.store(AuditHead(seq: 7, hash: sha256Hex(Array(files[fi].1[li].utf8))))
        let v = try AuditVerifier.verify(directory: dir, head: try store.load())
        #expect(v.isIntact && v.warnings.contains { $0.contains("behind the log") })
        let log = try AuditLog.open(AuditLogOptions(directory: dir))
        #expect(log.recovery == .headAdvanced(from: 7, to: 10))
        #expect(try store.load()?.seq == 10)
        try log.close()
    }
}

@Test func restartRefusesAHeadThatContradictsTheFiles() async throws {
    try await withTemporaryDirectory { dir in
        try writeLog(dir, count: 10)
        try FileAuditHeadStore(directory: dir).store(AuditHead(seq: 10, hash: String(repeating: "ab", count: 32)))
        #expect(throws: AuditError.self) { try AuditLog.open(AuditLogOptions(directory: dir)) }
    }
}

@Test func tornFinalLineIsMovedAsideAndTheChainGoesOn() async throws {
    try await withTemporaryDirectory { dir in
        try writeLog(dir, count: 5)
        let name = try AuditFiles.list(directory: dir).last!.description
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + name))
        h.seekToEndOfFile()
        h.write(Data("{\"seq\":6,\"time\":\"2026-".utf8))
        try h.close()
        let v0 = try AuditVerifier.verify(directory: dir, head: try FileAuditHeadStore(directory: dir).load())
        #expect(v0.isIntact && v0.warnings.contains { $0.contains("incomplete line") })
        let log = try AuditLog.open(AuditLogOptions(directory: dir))
        log.record(event(.reused, host: "ws1"))
        try log.close()
        #expect(FileManager.default.fileExists(atPath: dir + "/" + name + ".torn"))
        let v = try AuditVerifier.verify(directory: dir, head: try FileAuditHeadStore(directory: dir).load())
        #expect(v.isIntact && v.records == 6, "\(v.summary)")
    }
}

@Test func recordReturnsBeforeTheBatchIsWrittenAndFlushMakesItDurable() async throws {
    try await withTemporaryDirectory { dir in
        var options = AuditLogOptions(directory: dir)
        options.batchWindow = .seconds(30)  // nothing is written until a flush
        let log = try AuditLog.open(options)
        for i in 0..<50 { log.record(event(.issued, host: "h\(i)")) }
        #expect(log.durableHead.seq == 0)
        try log.flush()
        #expect(log.durableHead.seq == 50)
        #expect(try AuditFiles.records(directory: dir).count == 50)
        try log.close()
    }
}

@Test func auditLinesSinceSeq() async throws {
    try await withTemporaryDirectory { dir in
        try writeLog(dir, count: 40)
        let lines = try AuditFiles.lines(directory: dir, since: 33, limit: 100)
        #expect(lines.map(\.0.seq) == Array(34...40))
        #expect(try AuditFiles.lines(directory: dir, since: 0, limit: 5).map(\.0.seq) == [1, 2, 3, 4, 5])
    }
}

/// A head store that fails its first `failures` writes (a full disk, a locked ledger).
final class FlakyHeadStore: AuditHeadStore, @unchecked Sendable {
    private let lock = NSLock()
    private var failures: Int
    private var successesFirst: Int
    private var head: AuditHead?
    /// Stores `successesFirst` heads, then fails `failures` times, then stores again.
    init(failures: Int, successesFirst: Int = 0) {
        self.failures = failures
        self.successesFirst = successesFirst
    }
    func load() throws -> AuditHead? { lock.withLock { head } }
    func store(_ h: AuditHead) throws {
        try lock.withLock {
            if successesFirst > 0 {
                successesFirst -= 1
            } else if failures > 0 {
                failures -= 1
                throw AuditError(.headStore("simulated failure"), path: "flaky")
            }
            head = h
        }
    }
}

@Test func aFailedBatchIsCutBackAndRetriedWithoutDuplicates() async throws {
    try await withTemporaryDirectory { dir in
        let store = FlakyHeadStore(failures: 1)
        let metrics = MetricsRegistry()
        var options = AuditLogOptions(directory: dir)
        options.batchWindow = .milliseconds(1)
        let log = try AuditLog.open(options, headStore: store, metrics: metrics)
        for i in 0..<20 { log.record(event(.issued, host: "h\(i)")) }
        #expect(throws: AuditError.self) { try log.flush() }
        // The writer retries on its own; the next flush sees everything durable, once.
        try log.flush()
        try log.close()
        #expect(metrics.value(MetricNames.auditWriteErrors) == 1)
        let records = try AuditFiles.records(directory: dir)
        #expect(records.map(\.seq) == Array(1...20))
        let v = try AuditVerifier.verify(directory: dir, head: try store.load())
        #expect(v.isIntact && v.records == 20, "\(v.summary)")
    }
}

@Test func aQueueLongerThanOneBatchFailingHalfwayKeepsItsOrder() async throws {
    // The writer takes the whole queue and writes it in batches of `batchMaxRecords`; when a later batch
    // fails, what was not written goes back in front of the records that came meanwhile.
    try await withTemporaryDirectory { dir in
        let store = FlakyHeadStore(failures: 1, successesFirst: 1)
        let metrics = MetricsRegistry()
        var options = AuditLogOptions(directory: dir)
        options.batchWindow = .milliseconds(200)
        options.batchMaxRecords = 8
        let log = try AuditLog.open(options, headStore: store, metrics: metrics)
        for i in 0..<20 { log.record(event(.issued, host: "h\(i)")) }
        #expect(throws: AuditError.self) { try log.flush() }
        #expect(log.durableHead.seq >= 8, "the first batch is durable before the second fails")
        for i in 20..<25 { log.record(event(.issued, host: "h\(i)")) }
        try log.flush()
        try log.close()
        #expect(metrics.value(MetricNames.auditWriteErrors) == 1)
        let records = try AuditFiles.records(directory: dir)
        #expect(records.map(\.seq) == Array(1...25))
        #expect(records.compactMap(\.host) == (0..<25).map { "h\($0)" })
        let v = try AuditVerifier.verify(directory: dir, head: try store.load())
        #expect(v.isIntact && v.records == 25, "\(v.summary)")
    }
}

@Test func recordFromManyThreadsKeepsOneChain() async throws {
    try await withTemporaryDirectory { dir in
        var options = AuditLogOptions(directory: dir)
        options.batchWindow = .milliseconds(2)
        options.batchMaxRecords = 32
        options.maxFileBytes = 16 * 1024
        let log = try AuditLog.open(options)
        await withTaskGroup(of: Void.self) { g in
            for t in 0..<8 {
                g.addTask { for i in 0..<250 { log.record(event(.reused, host: "t\(t)-\(i)")) } }
            }
        }
        try log.close()
        let v = try AuditVerifier.verify(directory: dir, head: try FileAuditHeadStore(directory: dir).load())
        #expect(v.isIntact && v.records == 2000, "\(v.summary)")
        #expect(v.files.count > 1)
        let hosts = Set(try AuditFiles.records(directory: dir).compactMap(\.host))
        #expect(hosts.count == 2000)
    }
}

@Test func keyValueHeadStoreRoundTrips() async throws {
    try await withTemporaryDirectory { dir in
        let memory = MemoryAuditHeadStore()
        let kv = KeyValueAuditHeadStore(
            read: { try memory.load().map { "\($0.seq) \($0.hash)" } },
            write: { text in
                let p = text.split(separator: " ")
                try memory.store(AuditHead(seq: UInt64(p[0])!, hash: String(p[1])))
            })
        var options = AuditLogOptions(directory: dir)
        options.batchWindow = .milliseconds(1)
        let log = try AuditLog.open(options, headStore: kv)
        for i in 0..<5 { log.record(event(.issued, host: "kv\(i)")) }
        try log.close()
        #expect(try kv.load() == log.durableHead)
        #expect(try kv.load()?.seq == 5)
        #expect(!FileManager.default.fileExists(atPath: dir + "/HEAD"))
        let bad = KeyValueAuditHeadStore(read: { "12 nothex" }, write: { _ in })
        #expect(throws: AuditError.self) { try bad.load() }
    }
}
