import Foundation
import SeedHTTPServer
import SeedServer
import SeedTLS
import SeedTestSupport
import Testing

/// Parses `json` as if it sat in `/srv/mirror/config/`.
private func parse(_ json: String, baseDir: String = "/srv/mirror") throws(ConfigError) -> MirrorConfig {
    try MirrorConfig.parse(Data(json.utf8), source: "test.json", baseDir: baseDir)
}

/// The error message `body` throws, or nil.
private func message(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return "\(error)"
    }
}

private func write(_ text: String, to path: String, mode: Int = 0o600) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
}

@Suite struct ConfigTests {
    @Test func emptyObjectGivesDocumentedDefaults() throws {
        let c = try parse("{}")
        #expect(c.listen.map(\.description) == ["0.0.0.0:443", "0.0.0.0:8443"])
        #expect(c.paths.cacheDir == "/srv/mirror/cache" && c.paths.certsDir == "/srv/mirror/certs")
        #expect(
            c.tls.certificates == [
                CertificateKeyPair(
                    certificateChainPath: "/srv/mirror/certs/server-rsa.pem",
                    privateKeyPath: "/srv/mirror/certs/server-rsa.key"),
                CertificateKeyPair(
                    certificateChainPath: "/srv/mirror/certs/server-ecdsa.pem",
                    privateKeyPath: "/srv/mirror/certs/server-ecdsa.key"),
            ])
        #expect(c.tlsServerConfiguration == TLSServerConfiguration(certificates: c.tls.certificates))
        #expect(c.server.maxConnections == 20_000 && c.server.shutdownGrace == .seconds(30))
        #expect(c.server.timeouts == ServerTimeouts())
        #expect(c.log.level == .info && c.log.accessLog == .stderr)
        #expect(c.upstream.mode == .offline && c.upstream.token == nil && c.upstream.account == "default")
        #expect(c.upstream.url.host == "cloud.nextron-systems.com" && c.upstream.url.port == 443)
        #expect(c.upstream.portalURL.host == "portal.nextron-systems.com")
        #expect(c.upstream.refreshInterval == .seconds(12 * 3600))
        #expect(c.clients.clients.isEmpty && c.admin.token == nil && c.warnings.isEmpty)
        let http = c.httpServerConfiguration
        #expect(http.listeners == c.listen && http.maxConnections == 20_000 && http.limits.maxHeadBytes == 16_384)
    }

    @Test func settingsMapToTheServerStructs() throws {
        let c = try parse(
            """
            {"listen": ["127.0.0.1:0", "[::1]:8443"],
             "server": {"maxHeadBytes": 8192, "maxHeaderCount": 50, "maxBodyBytes": 4096, "maxConnections": 10,
                        "eventLoops": 2, "shutdownGraceSeconds": 5,
                        "timeouts": {"handshakeSeconds": 1.5, "requestHeadSeconds": 2, "idleSeconds": 3,
                                     "writeStallSeconds": 4, "requestBodySeconds": 5}},
             "tls": {"certificates": [{"certificate": "/etc/m/a.pem", "key": "k/a.key"}],
                     "cipherList": "ECDHE-RSA-AES128-GCM-SHA256", "sessionTickets": false},
             "log": {"level": "debug", "accessLog": "logs/access.log"},
             "paths": {"cacheDir": "/var/cache/seed", "certsDir": "pki"}}
            """)
        #expect(c.listen == [ListenAddress(host: "127.0.0.1", port: 0), ListenAddress(host: "::1", port: 8443)])
        let http = c.httpServerConfiguration
        #expect(http.eventLoops == 2 && http.maxConnections == 10)
        #expect(
            http.limits.maxHeadBytes == 8192 && http.limits.maxHeaderCount == 50 && http.limits.maxBodyBytes == 4096)
        #expect(http.timeouts.handshake == .milliseconds(1500) && http.timeouts.requestHead == .seconds(2))
        #expect(http.timeouts.idle == .seconds(3) && http.timeouts.writeStall == .seconds(4))
        #expect(http.timeouts.requestBody == .seconds(5) && c.server.shutdownGrace == .seconds(5))
        let tls = c.tlsServerConfiguration
        #expect(
            tls.certificates == [
                CertificateKeyPair(certificateChainPath: "/etc/m/a.pem", privateKeyPath: "/srv/mirror/k/a.key")
            ])
        #expect(tls.cipherList == "ECDHE-RSA-AES128-GCM-SHA256" && !tls.sessionTickets)
        #expect(tls.cipherSuites == TLSServerConfiguration(certificates: []).cipherSuites)
        #expect(c.log.level == .debug && c.log.accessLog == .file("/srv/mirror/logs/access.log"))
        #expect(c.paths.cacheDir == "/var/cache/seed" && c.paths.certsDir == "/srv/mirror/pki")
        #expect(try parse(#"{"log": {"accessLog": "off"}}"#).log.accessLog == .off)
    }

    @Test(arguments: [
        (#"{"lisen": []}"#, "unknown config key lisen"),
        (#"{"server": {"maxConections": 1}}"#, "unknown config key server.maxConections"),
        (#"{"server": {"timeouts": {"idle": 1}}}"#, "unknown config key server.timeouts.idle"),
        (#"{"upstream": {"tokn": "x"}}"#, "unknown config key upstream.tokn"),
        (#"{"clients": [{"name": "a", "token": "0123456789abcdef", "revokd": true}]}"#, "clients[0].revokd"),
        (#"{"tls": {"certificates": [{"certificate": "a", "key": "b", "chain": "c"}]}}"#, "tls.certificates[0].chain"),
    ])
    func unknownKeysAreNamed(json: String, expected: String) {
        let m = message { _ = try parse(json) }
        #expect(m?.contains(expected) == true, "\(m ?? "no error")")
    }

    @Test(arguments: [
        (#"{"listen": "0.0.0.0:443"}"#, "listen: expected an array"),
        (#"{"listen": ["0.0.0.0"]}"#, "listen[0]"),
        (#"{"listen": ["0.0.0.0:443", "0.0.0.0:443"]}"#, "listen[1]"),
        (#"{"listen": []}"#, "listen"),
        (#"{"server": {"maxConnections": "many"}}"#, "server.maxConnections: expected an integer"),
        (#"{"server": {"maxConnections": 0}}"#, "server.maxConnections: 0 is out of range"),
        (#"{"server": {"timeouts": {"idleSeconds": true}}}"#, "server.timeouts.idleSeconds: expected a number"),
        (#"{"tls": {"sessionTickets": 1}}"#, "tls.sessionTickets: expected true or false"),
        (#"{"tls": {"certificates": [{"certificate": "a"}]}}"#, "tls.certificates[0]"),
        (#"{"log": {"level": "loud"}}"#, "log.level"),
        (#"{"paths": {"cacheDir": ""}}"#, "paths.cacheDir"),
        (#"{"upstream": {"mode": "sometimes"}}"#, "upstream.mode"),
        (#"{"upstream": {"mode": "online"}}"#, "upstream.token: required when upstream.mode is online"),
        (#"{"upstream": {"url": "ftp://x"}}"#, "upstream.url"),
        (
            #"{"upstream": {"portalUrl": "http://portal.test"}}"#,
            "upstream.portalUrl: \"http://portal.test\" is not an https:// URL"
        ),
        (#"{"upstream": {"refreshHours": -1}}"#, "upstream.refreshHours"),
        (#"{"upstream": {"refreshSeconds": -1}}"#, "upstream.refreshSeconds"),
        (#"{"upstream": {"refreshSeconds": 30, "refreshHours": 1}}"#, "upstream.refreshSeconds: give refreshHours or"),
        (#"{"upstream": {"token": 5}}"#, "upstream.token: expected a string"),
        (#"{"upstream": {"token": {"env": "A", "file": "b"}}}"#, "upstream.token: give exactly one"),
        (#"{"clients": {"name": "a"}}"#, "clients: expected an array of objects"),
        (#"{"clients": [{"name": "a"}]}"#, "clients[0].token: required"),
        (#"{"clients": [{"token": "0123456789abcdef"}]}"#, "clients[0].name"),
        (#"[1, 2]"#, "top level must be a JSON object"),
        (#"{"listen": ["#, "not valid JSON"),
    ])
    func wrongTypesAndValuesAreNamed(json: String, expected: String) {
        let m = message { _ = try parse(json) }
        #expect(m?.contains(expected) == true, "\(m ?? "no error")")
    }

    @Test func missingAndInvalidFilesNameTheFile() async throws {
        try await withTemporaryDirectory { dir in
            let missing = dir + "/config/seed-mirror.json"
            let m = message { _ = try MirrorConfig.load(path: missing) }
            #expect(m?.contains(missing) == true && m?.contains("not found") == true, "\(m ?? "")")

            try write("{\"listen\": [", to: missing)
            let bad = message { _ = try MirrorConfig.load(path: missing) }
            #expect(bad?.hasPrefix(missing) == true && bad?.contains("not valid JSON") == true, "\(bad ?? "")")

            try write(#"{"server": {"idle": 1}}"#, to: missing)
            let key = message { _ = try MirrorConfig.load(path: missing) }
            #expect(key == "\(missing): unknown config key server.idle")
        }
    }

    @Test func secretsComeFromEnvironmentAndFilesAndNeverShow() async throws {
        try await withTemporaryDirectory { dir in
            let variable = "SEEDMIRROR_TEST_TOKEN_\(UInt32.random(in: 0...UInt32.max))"
            setenv(variable, "upstream-secret-value", 1)
            defer { unsetenv(variable) }
            try write("client-secret-value-1234\n", to: dir + "/config/client.token")
            try write("admin-secret-value-12345", to: dir + "/secrets/admin")
            let path = dir + "/config/seed-mirror.json"
            try write(
                """
                {"upstream": {"mode": "online", "token": {"env": "\(variable)"},
                              "portalApiKey": {"file": "/nonexistent/none"}}}
                """, to: path)
            let missingFile = message { _ = try MirrorConfig.load(path: path) }
            #expect(missingFile?.contains("upstream.portalApiKey") == true)
            #expect(missingFile?.contains("/nonexistent/none") == true)

            try write(
                """
                {"upstream": {"mode": "online", "token": {"env": "\(variable)"}},
                 "clients": [{"name": "seeds", "token": {"file": "config/client.token"}},
                             {"name": "old", "token": "retired-token-0123456789", "revoked": true}],
                 "admin": {"token": {"file": "secrets/admin"}}}
                """, to: path)
            let c = try MirrorConfig.load(path: path)
            #expect(c.upstream.token?.value == "upstream-secret-value")
            #expect(c.upstream.token?.source == .environment(variable))
            #expect(c.clients.clients.map(\.name) == ["seeds", "old"])
            #expect(c.clients.clients[0].token.value == "client-secret-value-1234")
            #expect(c.clients.client(forToken: "client-secret-value-1234")?.name == "seeds")
            #expect(c.clients.client(forToken: "retired-token-0123456789")?.revoked == true)
            #expect(c.clients.client(forToken: "client-secret-value-123") == nil)
            #expect(c.admin.token?.value == "admin-secret-value-12345")
            // Printing the configuration shows where secrets come from, never their values.
            let dumped = "\(c) \(String(reflecting: c))"
            for secret in [
                "upstream-secret-value", "client-secret-value-1234", "admin-secret-value-12345", "retired-token",
            ] {
                #expect(!dumped.contains(secret), "\(secret) leaked")
            }
            #expect(dumped.contains("<secret from $\(variable)>"))

            unsetenv(variable)
            let unset = message { _ = try MirrorConfig.load(path: path) }
            #expect(unset?.contains("upstream.token") == true && unset?.contains(variable) == true, "\(unset ?? "")")
        }
    }

    @Test func literalSecretsInAWorldReadableFileWarnWithoutTheValue() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/config/seed-mirror.json"
            let json =
                #"{"clients": [{"name": "a", "token": "literal-token-value-0001"}], "admin": {"token": "short"}}"#
            try write(json, to: path, mode: 0o644)
            let open = try MirrorConfig.load(path: path)
            #expect(open.warnings.contains { $0.contains("clients[0].token") })
            #expect(open.warnings.contains { $0.contains("admin.token") })
            #expect(!open.warnings.joined().contains("literal-token-value-0001"))
            #expect(!open.warnings.joined().contains("short\""))
            try write(json, to: path, mode: 0o600)
            #expect(try MirrorConfig.load(path: path).warnings.isEmpty)
        }
    }

    @Test func duplicateAndShortClientTokens() throws {
        let dup = message {
            _ = try parse(
                """
                {"clients": [{"name": "a", "token": "same-token-0123456789"},
                             {"name": "b", "token": "same-token-0123456789"}]}
                """)
        }
        #expect(dup?.contains("clients[1].token") == true && dup?.contains("\"a\"") == true)
        #expect(dup?.contains("same-token") == false)
        let twice = message {
            _ = try parse(
                #"{"clients": [{"name": "a", "token": "t1-0123456789abcdef"}, {"name": "a", "token": "t2"}]}"#)
        }
        #expect(twice?.contains("clients[1].name") == true)
        let short = try parse(#"{"clients": [{"name": "a", "token": "abc"}]}"#)
        #expect(short.warnings == ["config key clients[0].token: client \"a\" has a token shorter than 16 characters"])
    }

    @Test func relativePathsResolveAgainstTheFolderHoldingConfig() async throws {
        try await withTemporaryDirectory { dir in
            let json =
                #"{"paths": {"cacheDir": "c"}, "tls": {"certificates": [{"certificate": "x.pem", "key": "x.key"}]}}"#
            try write(json, to: dir + "/m/config/seed-mirror.json")
            try write(json, to: dir + "/elsewhere/mirror.json")
            // Loaded by an absolute path from an unrelated working directory.
            let a = try MirrorConfig.load(path: dir + "/m/config/seed-mirror.json", workingDirectory: "/")
            #expect(a.baseDir == dir + "/m")
            #expect(a.paths.cacheDir == dir + "/m/c")
            #expect(a.tls.certificates[0].certificateChainPath == dir + "/m/x.pem")
            let b = try MirrorConfig.load(path: dir + "/elsewhere/mirror.json")
            #expect(b.baseDir == dir + "/elsewhere" && b.paths.cacheDir == dir + "/elsewhere/c")
            // And by a relative path.
            let c = try MirrorConfig.load(path: "config/seed-mirror.json", workingDirectory: dir + "/m")
            #expect(c.sourcePath == dir + "/m/config/seed-mirror.json" && c.paths.cacheDir == dir + "/m/c")
        }
        #expect(MirrorConfig.baseDirectory(forConfigAt: "/config/x.json") == "/")
        #expect(MirrorConfig.baseDirectory(forConfigAt: "/etc/seed-mirror/config/x.json") == "/etc/seed-mirror")
        #expect(MirrorConfig.baseDirectory(forConfigAt: "/etc/seed-mirror/x.json") == "/etc/seed-mirror")
    }

    @Test func upstreamProxyAndURLs() throws {
        let c = try parse(
            """
            {"upstream": {"mode": "online", "token": "t-0123456789abcdef", "url": "https://central.corp:9443/mirror/",
                          "portalUrl": "https://[fd00::5]:8080", "proxy": "http://svc%40corp:p%3Ass@proxy.corp:3128/",
                          "account": "branch-7", "connectTimeoutSeconds": 3, "readTimeoutSeconds": 20,
                          "maxBodyBytes": 200000000, "refreshHours": 0}}
            """)
        let u = c.upstream
        #expect(u.mode == .online && u.account == "branch-7")
        #expect(u.url == HTTPEndpoint(parsing: "https://central.corp:9443/mirror"))
        #expect(u.url.host == "central.corp" && u.url.port == 9443 && u.url.basePath == "/mirror")
        #expect(u.portalURL.host == "fd00::5" && u.portalURL.port == 8080 && u.portalURL.scheme == "https")
        #expect(u.proxy?.host == "proxy.corp" && u.proxy?.port == 3128)
        #expect(u.proxy?.username == "svc@corp" && u.proxy?.password?.value == "p:ss")
        #expect(u.proxy?.description == "http://svc@corp:<secret>@proxy.corp:3128")
        #expect(u.connectTimeout == .seconds(3) && u.readTimeout == .seconds(20))
        #expect(u.maxBodyBytes == 200_000_000 && u.refreshInterval == nil)
        #expect(try parse(#"{"upstream": {"refreshSeconds": 45}}"#).upstream.refreshInterval == .seconds(45))
        #expect(try parse(#"{"upstream": {"refreshSeconds": 0}}"#).upstream.refreshInterval == nil)
        let v6 = try parse(#"{"upstream": {"proxy": "http://[fd00::1]:8080"}}"#)
        #expect(v6.upstream.proxy?.host == "fd00::1" && v6.upstream.proxy?.username == nil)
        for bad in [
            "socks5://u:hunter2@p:1080", "http://u:hunter2@p", "http://u:hunter2@p:0", "http://u:hunter2@p:1/x",
        ] {
            let m = message { _ = try parse(#"{"upstream": {"proxy": "\#(bad)"}}"#) }
            #expect(m?.contains("upstream.proxy") == true, "\(bad)")
            #expect(m?.contains("hunter2") == false, "the error repeats the password")
        }
        let ca = message { _ = try parse(#"{"upstream": {"caFile": "missing-ca.pem"}}"#) }
        #expect(ca?.contains("upstream.caFile") == true && ca?.contains("/srv/mirror/missing-ca.pem") == true)
    }
}
