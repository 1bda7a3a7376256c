import Foundation
import Glibc
import SeedAudit
import SeedTestSupport
import Testing

/// A UDP socket on 127.0.0.1 with an ephemeral port, receiving with a 3 s timeout.
final class UDPListener {
    let fd: CInt
    let port: UInt16
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 ? getsockname(fd, $0, &len) : -1 }
        }
        precondition(rc == 0, "bind failed")
        port = UInt16(bigEndian: addr.sin_port)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    func receive() -> String? {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
    }
    deinit { close(fd) }
}

@Test func auditRecordsArriveAtASyslogUDPListener() async throws {
    try await withTemporaryDirectory { dir in
        let listener = try UDPListener()
        let metrics = MetricsRegistry()
        var options = SyslogOptions(transport: .udp, host: "127.0.0.1", port: listener.port, appName: "seed-mirror")
        options.queueCapacity = 100
        let forwarder = SyslogForwarder(options: options, metrics: metrics)
        let (records, _) = try writeScenario(dir, forwarder: forwarder)
        #expect(forwarder.drain())
        var messages: [String] = []
        while messages.count < records.count, let m = listener.receive() { messages.append(m) }
        forwarder.close()
        #expect(messages.count == 54)
        #expect(forwarder.sent == 54 && forwarder.dropped == 0)
        // <PRI>1 TIME HOST APP PROCID MSGID - MSG, with MSG the exact audit line.
        let first = messages[0]
        let parts = first.split(separator: " ", maxSplits: 7).map(String.init)
        #expect(parts[0] == "<110>1")  // facility 13 (log audit) * 8 + severity 6 (info)
        #expect(parts[1] == records[0].time.rfc3339)
        #expect(parts[3] == "seed-mirror" && parts[4] == String(getpid()) && parts[5] == "issued" && parts[6] == "-")
        #expect(parts[7] == records[0].line)
        let refused = try #require(messages.first { $0.contains(" refused - ") })
        #expect(refused.hasPrefix("<109>1 "))  // notice
    }
}

@Test func syslogDropsWithACounterWhenTheQueueIsFull() {
    // A TCP collector that is not listening: sends fail and the small queue overflows without blocking.
    var options = SyslogOptions(transport: .tcp, host: "127.0.0.1", port: 9, appName: "seed-mirror")
    options.queueCapacity = 2
    let forwarder = SyslogForwarder(options: options)
    let start = ContinuousClock.now
    for i in 0..<50 { forwarder.send(line: "{\"seq\":\(i)}", event: "issued", time: AuditTime(millisecondsSinceEpoch: 0)) }
    #expect(ContinuousClock.now - start < .seconds(1))
    #expect(forwarder.drain(timeout: .seconds(10)))
    #expect(forwarder.dropped == 50 && forwarder.sent == 0)
    forwarder.close()
}

@Test func syslogTCPUsesOctetCounting() {
    let msg = SyslogForwarder.format(
        line: "{\"seq\":1}", event: "issued", time: AuditTime(millisecondsSinceEpoch: 0), facility: 13, severity: 6,
        hostname: "mirror 1", appName: "", procID: "42")
    #expect(String(decoding: msg, as: UTF8.self) == "<110>1 1970-01-01T00:00:00.000Z mirror1 - 42 issued - {\"seq\":1}")
}

@Test func dashboardHasItsChartsAndEscapesClientText() async throws {
    try await withTemporaryDirectory { dir in
        var (records, now) = try writeScenario(dir)
        var hostile = records[0]
        hostile.seq = 999
        hostile.host = "<script>alert(1)</script>"
        hostile.event = "revoke"
        hostile.quotaUsed = nil
        hostile.quotaTotal = nil
        hostile.time = now
        records.append(hostile)
        let html = Dashboard.render(records: records, now: now)
        for id in ["chart-daily", "chart-quota", "chart-refusals", "chart-networks"] {
            #expect(html.contains("<svg id=\"\(id)\""), "missing \(id)")
        }
        #expect(html.contains("<table id=\"recent\""))
        // 30 days, two bars each.
        #expect(html.components(separatedBy: "class=\"bar-issued\"").count - 1 == 30)
        #expect(html.components(separatedBy: "class=\"bar-reused\"").count - 1 == 30)
        #expect(html.contains("<title>2026-11-20: 30 issued</title>"))
        #expect(html.contains("<title>2026-11-21: 10 reused</title>"))
        #expect(html.contains("class=\"gauge-used\""))
        #expect(html.contains("runs out around 2026-12-01"))
        #expect(html.contains("acme: 0 of 75 left (exhausted) · beta: 40 of 50 left"))
        #expect(html.contains("<title>sandbox-networks: 2</title>"))
        #expect(html.contains("<title>10.1.2.0/24: 40</title>"))
        #expect(html.contains("<title>192.0.2.0/24: 5</title>"))
        // Self-contained and safe.
        #expect(!html.contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<link") && !html.contains("@import"))
        try checkInChromium(html)
    }
}

/// Opens the page in headless Chromium when it is installed: no console errors, and a screenshot.
func checkInChromium(_ html: String) throws {
    guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first(where: FileManager.default.isExecutableFile)
    else {
        print("skipped: Chromium is not installed (apt-get install chromium)")
        return
    }
    let dir = NSTemporaryDirectory() + "seedmirror-dashboard-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let page = dir + "/dashboard.html"
    try html.write(toFile: page, atomically: true, encoding: .utf8)
    let shot = ProcessInfo.processInfo.environment["SEEDMIRROR_DASHBOARD_PNG"] ?? (dir + "/dashboard.png")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: chromium)
    p.arguments = [
        "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(dir)/profile", "--enable-logging=stderr",
        "--v=0", "--window-size=1366,900", "--screenshot=\(shot)", "file://\(page)",
    ]
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "chromium: \(log.suffix(2000))")
    let consoleErrors = log.split(separator: "\n").filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }
    #expect(consoleErrors.isEmpty, "console: \(consoleErrors)")
    let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
    #expect(size > 10_000, "screenshot missing or empty")
}

@Test func auditRecordsArriveOverTCPWithOctetCounting() async throws {
    let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(server) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(server, $0, len) == 0 && listen(server, 1) == 0 ? getsockname(server, $0, &len) : -1
        }
    }
    #expect(rc == 0)
    let port = UInt16(bigEndian: addr.sin_port)
    let forwarder = SyslogForwarder(options: SyslogOptions(transport: .tcp, host: "127.0.0.1", port: port))
    let lines = (1...3).map { "{\"seq\":\($0),\"note\":\"two words\"}" }
    for l in lines { forwarder.send(line: l, event: "issued", time: AuditTime(millisecondsSinceEpoch: 0)) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let conn = accept(server, nil, nil)
    #expect(conn >= 0)
    defer { close(conn) }
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    #expect(forwarder.drain())
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    var frames: [String] = []
    while frames.count < 3 {
        let n = buf.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { break }
        data += buf[0..<n]
        // Parse "LEN SP MSG" frames.
        while let sp = data.firstIndex(of: 0x20), let count = Int(String(decoding: data[..<sp], as: UTF8.self)),
            data.count >= sp + 1 + count
        {
            frames.append(String(decoding: data[(sp + 1)..<(sp + 1 + count)], as: UTF8.self))
            data.removeFirst(sp + 1 + count)
        }
    }
    forwarder.close()
    #expect(frames.count == 3)
    for (f, l) in zip(frames, lines) {
        #expect(f.hasPrefix("<110>1 1970-01-01T00:00:00.000Z "))
        #expect(f.hasSuffix(" issued - " + l))
    }
}
