import Foundation
import SeedAudit
import SeedHTTP
import SeedHTTPServer
import SeedLicensing
import SeedServer
import SeedTestSupport
import Testing

let adminSecret = "adm1n-S3cret-token-XYZ-0001"
let clientSecret = "cl1ent-S3cret-token-ABC-0002"

struct FixedLicenses: LicenseListing {
    func licenses() async throws -> [LicenseSummary] {
        [
            LicenseSummary(hostKey: "ws01", hostAsked: "WS01", type: "workstation", account: "acme", licenseRef: "lic-ws01",
                state: "active", issuedAt: day("2026-11-20T09:00:00Z"), timesServed: 2),
            LicenseSummary(hostKey: "srv-\"b1\"", type: "server", state: "revoked"),
        ]
    }
}

func context(_ address: String = "127.0.0.1") -> RequestContext {
    RequestContext(clientAddress: address, clientPort: 50000, localPort: 443, tlsVersion: "TLSv1.3",
        tlsCipher: "TLS_AES_128_GCM_SHA256", requestID: 1)
}

func get(_ routes: AdminRoutes, _ target: String, auth: String? = "Bearer \(adminSecret)", from: String = "127.0.0.1",
    method: String = "GET") async -> Response?
{
    var h = HTTPHeaders()
    if let auth { h.add("Authorization", auth) }
    switch routes.handle(HTTPRequest(method: method, target: target, headers: h), context: context(from)) {
    case nil: return nil
    case .response(let r)?: return r
    case .deferred(let f)?: return await f()
    }
}

extension Response {
    var text: String {
        String(decoding: body.segments.flatMap { s -> [UInt8] in
            if case .bytes(let b) = s { return b }
            return []
        }, as: UTF8.self)
    }
}

func config(_ json: String) throws -> AuditSection {
    try mirrorConfig(json).audit
}

func mirrorConfig(_ json: String) throws -> MirrorConfig {
    try MirrorConfig.parse(Data(json.utf8), source: "test.json", baseDir: "/srv/mirror")
}

@Test func adminRoutesNeedTheAdminTokenFromAnAdminNetwork() async throws {
    try await withTemporaryDirectory { dir in
        _ = try writeScenario(dir)
        let mirror = try mirrorConfig("""
            {"admin": {"token": "\(adminSecret)", "networks": ["127.0.0.0/8", "fd00::/8"]}}
            """)
        let routes = AdminRoutes(access: mirror.adminAccess, auditDirectory: dir, metrics: MetricsRegistry(),
            licenses: FixedLicenses(), clock: { day("2026-11-23T12:00:00Z") })
        for path in ["/api/mirror/usage", "/api/mirror/licenses", "/api/mirror/audit?since=3", "/metrics", "/dashboard"] {
            let none = try #require(await get(routes, path, auth: nil))
            #expect(none.status == 401, "\(path)")
            #expect(none.headers.values("WWW-Authenticate").first?.hasPrefix("Bearer") == true)
            #expect(try #require(await get(routes, path, auth: "Bearer wrong-token")).status == 401)
            // A client token is not an admin token.
            #expect(try #require(await get(routes, path, auth: "Bearer \(clientSecret)")).status == 401)
            #expect(try #require(await get(routes, path, auth: "Basic " + Data("x:\(clientSecret)".utf8).base64EncodedString())).status == 401)
            #expect(try #require(await get(routes, path, from: "192.0.2.7")).status == 403)
            #expect(try #require(await get(routes, path, from: "2001:db8::1")).status == 403)
            #expect(try #require(await get(routes, path)).status == 200, "\(path)")
            #expect(try #require(await get(routes, path, from: "fd00::5")).status == 200)
            #expect(try #require(await get(routes, path, from: "::ffff:127.0.0.9")).status == 200)
            #expect(try #require(await get(routes, path, method: "POST")).status == 405)
        }
        // The browser path: Basic with the token as password.
        #expect(try #require(await get(routes, "/dashboard", auth: "Basic " + Data("admin:\(adminSecret)".utf8).base64EncodedString())).status == 200)
        // Paths it does not own go back to the main router.
        #expect(await get(routes, "/api/public/thor10") == nil)
        #expect(await get(routes, "/api/mirror/other") == nil)

        let noToken = AdminRoutes(access: AdminAccess(token: nil), auditDirectory: dir, metrics: MetricsRegistry())
        #expect(try #require(await get(noToken, "/api/mirror/usage")).status == 403)
        let openMetrics = AdminRoutes(access: AdminAccess(token: adminSecret), metricsRequireAdmin: false,
            auditDirectory: dir, metrics: MetricsRegistry())
        #expect(try #require(await get(openMetrics, "/metrics", auth: nil)).status == 200)
        #expect(try #require(await get(openMetrics, "/dashboard", auth: nil)).status == 401)
    }
}

@Test func adminRoutesServeUsageAuditAndLicenses() async throws {
    try await withTemporaryDirectory { dir in
        let (records, now) = try writeScenario(dir)
        let routes = AdminRoutes(access: AdminAccess(token: adminSecret), auditDirectory: dir, metrics: MetricsRegistry(),
            licenses: FixedLicenses(), clock: { now })
        let usage = try #require(await get(routes, "/api/mirror/usage?by=token&since=2026-11-21&until=2026-11-22"))
        #expect(usage.status == 200 && usage.headers["Content-Type"] == "application/json")
        let expected = UsageReport.compute(records: records, query: UsageQuery(
            since: day("2026-11-21"), until: day("2026-11-23"), groupBy: .token, now: now))
        #expect(usage.text == expected.json() + "\n")
        #expect(usage.text.contains("\"totals\":{\"requests\":15,"))
        let csv = try #require(await get(routes, "/api/mirror/usage?format=csv"))
        #expect(csv.text.hasSuffix("TOTAL,53,36,0,10,0,2,3,2,0,0,0\r\n"))
        #expect(try #require(await get(routes, "/api/mirror/usage?by=month")).status == 400)
        #expect(try #require(await get(routes, "/api/mirror/usage?since=yesterday")).status == 400)

        let audit = try #require(await get(routes, "/api/mirror/audit?since=50"))
        #expect(audit.headers["Content-Type"] == "application/x-ndjson")
        let lines = audit.text.split(separator: "\n").map(String.init)
        #expect(lines == records.suffix(4).map(\.line))
        let limited = try #require(await get(routes, "/api/mirror/audit?since=0&limit=2"))
        #expect(limited.text.split(separator: "\n").count == 2)
        #expect(try #require(await get(routes, "/api/mirror/audit?since=-1")).status == 400)

        let lic = try #require(await get(routes, "/api/mirror/licenses"))
        let list = try #require(try JSONSerialization.jsonObject(with: Data(lic.text.utf8)) as? [[String: Any]])
        #expect(list.count == 2 && list[0]["host"] as? String == "ws01" && list[1]["host"] as? String == "srv-\"b1\"")
        #expect(list[0]["issuedAt"] as? String == "2026-11-20T09:00:00.000Z")

        let page = try #require(await get(routes, "/dashboard"))
        #expect(page.headers["Content-Type"] == "text/html; charset=utf-8")
        #expect(page.headers["Content-Security-Policy"]?.contains("default-src 'none'") == true)
        #expect(page.text.contains("<svg id=\"chart-daily\""))
    }
}

@Test func noSecretReachesTheLogReportsOrMetrics() async throws {
    try await withTemporaryDirectory { dir in
        setenv("SEEDMIRROR_TEST_ADMIN_TOKEN", adminSecret, 1)
        let mirror = try mirrorConfig("""
            {"admin": {"token": {"env": "SEEDMIRROR_TEST_ADMIN_TOKEN"}}, "metrics": {"requireAdmin": true}}
            """)
        #expect(mirror.adminAccess.token == adminSecret)
        let listener = try UDPListener()
        let metrics = MetricsRegistry()
        let forwarder = SyslogForwarder(options: SyslogOptions(transport: .udp, host: "127.0.0.1", port: listener.port), metrics: metrics)
        let (_, now) = try writeScenario(dir, forwarder: forwarder, metrics: metrics)
        forwarder.drain()
        let routes = AdminRoutes(access: mirror.adminAccess, auditDirectory: dir, metrics: metrics,
            licenses: FixedLicenses(), clock: { now })
        var outputs: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            outputs.append(try String(contentsOfFile: dir + "/" + name, encoding: .utf8))
        }
        for path in ["/api/mirror/usage", "/api/mirror/usage?format=csv", "/api/mirror/usage?format=table",
            "/api/mirror/licenses", "/api/mirror/audit", "/metrics", "/dashboard"]
        {
            outputs.append(try #require(await get(routes, path)).text)
            // Refusals do not echo what was presented either.
            let wrong = try #require(await get(routes, path, auth: "Bearer \(clientSecret)"))
            outputs.append(wrong.text + wrong.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))
        }
        while let m = listener.receive() { outputs.append(m); if outputs.count > 200 { break } }
        forwarder.close()
        #expect(outputs.count > 60)
        #expect(outputs.contains { $0.contains("deploy-a") })  // token names are there...
        for o in outputs {
            #expect(!o.contains(adminSecret))  // ...token values never
            #expect(!o.contains(clientSecret))
        }
    }
}

@Test func auditSectionReadsItsKeys() throws {
    let s = try config("""
        {"audit": {"dir": "audit", "rotation": {"maxBytes": 1048576, "daily": false}, "batchWindowMs": 20,
                   "batchMaxRecords": 64,
                   "syslog": {"protocol": "tcp", "host": "siem.example", "port": 6514, "appName": "mirror-a"}},
         "admin": {"networks": ["10.0.0.0/8", "::1"]},
         "metrics": {"listen": "127.0.0.1:9464", "requireAdmin": false}}
        """)
    #expect(s.directory == "/srv/mirror/audit")
    let o = s.auditLogOptions(cacheDirectory: "/var/cache/seed")
    #expect(o.directory == "/srv/mirror/audit" && o.maxFileBytes == 1_048_576 && !o.rotateDaily)
    #expect(o.batchWindow == .milliseconds(20) && o.batchMaxRecords == 64)
    #expect(s.syslog?.transport == .tcp && s.syslog?.host == "siem.example" && s.syslog?.port == 6514)
    #expect(s.syslog?.appName == "mirror-a")
    #expect(s.adminNetworks == [IPNetwork("10.0.0.0/8"), IPNetwork("::1")].compactMap { $0 })
    #expect(s.metricsListen?.description == "127.0.0.1:9464" && !s.metricsRequireAdmin)

    let d = try config("{}")
    #expect(d.auditDirectory(cacheDirectory: "/var/cache/seed") == "/var/cache/seed/audit")
    #expect(d.metricsRequireAdmin && d.metricsListen == nil && d.adminNetworks.isEmpty && d.syslog == nil)
    let m = try mirrorConfig("{\"paths\": {\"cacheDir\": \"/var/cache/seed\"}}")
    #expect(m.auditDirectory == "/var/cache/seed/audit" && m.auditLogOptions.directory == "/var/cache/seed/audit")
    #expect(m.adminAccess.token == nil)

    func rejects(_ json: String, _ words: String) {
        do {
            _ = try config(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect("\(error)".contains(words), "\(error)")
        }
    }
    rejects("{\"audit\": {\"rotate\": 5}}", "audit.rotate")
    rejects("{\"audit\": {\"syslog\": {\"protocol\": \"http\", \"host\": \"x\"}}}", "audit.syslog.protocol")
    rejects("{\"audit\": {\"syslog\": {\"protocol\": \"udp\"}}}", "audit.syslog.host")
    rejects("{\"admin\": {\"token\": \"0123456789abcdef\", \"networks\": [\"10.0.0.0/33\"]}}", "admin.networks[0]")
    rejects("{\"admin\": {\"tokn\": \"0123456789abcdef\"}}", "admin.tokn")
    rejects("{\"metrics\": {\"listen\": \"nowhere\"}}", "metrics.listen")
    rejects("{\"metrics\": {\"requireAdmin\": \"yes\"}}", "metrics.requireAdmin")
}

@Test func adminNetworksMatchAsConfigured() throws {
    // admin.networks uses SeedLicensing's IPNetwork (the licensing policy's too): the cases the admin API relies on.
    let n = try #require(IPNetwork("10.1.0.0/16"))
    #expect(n.contains(try #require(IPAddress("10.1.255.3"))))
    #expect(!n.contains(try #require(IPAddress("10.2.0.1"))))
    #expect(n.contains(try #require(IPAddress("::ffff:10.1.0.9"))))
    let v6 = try #require(IPNetwork("2001:db8:abcd::/48"))
    #expect(v6.contains(try #require(IPAddress("2001:db8:abcd:12::1"))))
    #expect(!v6.contains(try #require(IPAddress("2001:db8:abce::1"))))
    #expect(!v6.contains(try #require(IPAddress("10.1.0.1"))))
    #expect(IPNetwork("10.0.0.0/8/1") == nil && IPNetwork("fe80::/129") == nil)
    #expect(try #require(IPNetwork("0.0.0.0/0")).contains(try #require(IPAddress("8.8.8.8"))))
    let mapped = try #require(IPNetwork("::ffff:10.0.0.0/104"), "an IPv4-mapped block with its prefix in IPv6 bits")
    #expect(mapped.contains(try #require(IPAddress("10.200.0.1"))))
    #expect(!mapped.contains(try #require(IPAddress("11.0.0.1"))))
    #expect(IPNetwork("::ffff:10.0.0.0/95") == nil && IPNetwork("10.0.0.0/104") == nil)
    #expect(IPAddress("fe80::1%eth0") == IPAddress("fe80::1"))
}

@Test func commandsVerifyAndReport() async throws {
    try await withTemporaryDirectory { dir in
        try writeLog(dir, count: 30)
        #expect(await SeedMirrorCLI.main(["audit", "verify", "--dir", dir]) == 0)
        let configPath = dir + "/mirror.json"
        try "{\"audit\": {\"dir\": \"\(dir)\"}}".write(toFile: configPath, atomically: true, encoding: .utf8)
        #expect(await SeedMirrorCLI.main(["audit", "verify", "--config", configPath]) == 0)
        #expect(await SeedMirrorCLI.main(["usage", "--config", configPath, "--format", "json"]) == 0)
        #expect(await SeedMirrorCLI.main(["audit", "verify", "--config", configPath, "--dir", dir]) == 1)
        #expect(await SeedMirrorCLI.main(["usage", "--dir", dir, "--by", "week", "--format", "csv"]) == 0)
        #expect(await SeedMirrorCLI.main(["usage", "--dir", dir, "--by", "month"]) == 1)
        var files = try auditFiles(dir)
        files[0].1.remove(at: 1)
        try writeLines(dir, files[0].0, files[0].1)
        #expect(await SeedMirrorCLI.main(["audit", "verify", "--dir", dir]) == 1)
        #expect(await SeedMirrorCLI.main(["audit", "verify", "--dir", dir, "--from", files[1].0]) == 0)
        #expect(await SeedMirrorCLI.main(["audit", "verify", "--dir", dir + "/missing"]) == 1)
    }
}
