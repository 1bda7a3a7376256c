import Foundation
import Glibc
import SeedServer
import SeedTLS
import SeedTestSupport
import SeedUpstream
import Testing

/// Hostile host names and tokens against the real seed routes (in-process mirror online against the
/// simulator): each must be refused with a status and a reason naming the cause, never reach upstream,
/// never be reflected, while a well-behaved client keeps being served.
@Suite(.serialized) struct HostileRouteTests {
    struct NameCase: Sendable {
        var name: String
        /// Raw bytes of the X-Hostname header value (cloud route), or nil to skip that route.
        var header: [UInt8]?
        /// Percent-encoded `hostname=` value (ASGARD v1 route), or nil to skip that route.
        var query: String?
        var reason: String
    }

    static let nameCases: [NameCase] = [
        .init(name: "../ traversal", header: Array("../../etc/passwd".utf8), query: "..%2F..%2Fetc%2Fpasswd", reason: "'/'"),
        .init(name: "%2e%2e", header: Array("%2e%2e".utf8), query: nil, reason: "'%'"),
        .init(name: "decoded %2e%2e", header: nil, query: "%2e%2e", reason: "starts with '.'"),
        .init(name: "backslash", header: Array("..\\windows".utf8), query: "..%5Cwindows", reason: "'\\'"),
        .init(name: "NUL", header: nil, query: "ws01%00.evil", reason: "control character"),
        .init(name: "CRLF injection", header: nil, query: "ws01%0D%0ASet-Cookie:%20x", reason: "control character"),
        .init(name: "ANSI escape", header: nil, query: "%1B%5B31mws01", reason: "control character"),
        .init(name: "Cyrillic look-alike", header: Array("wѕ01".utf8), query: "w%D1%95" + "01", reason: "non-ASCII"),
        .init(name: "fullwidth look-alike", header: Array("ｗｓ01".utf8), query: "%EF%BD%97s01", reason: "non-ASCII"),
        .init(name: "300 characters", header: Array(String(repeating: "a", count: 300).utf8), query: String(repeating: "b", count: 300), reason: "253"),
        .init(name: "64-character label", header: Array((String(repeating: "c", count: 64) + ".corp").utf8), query: nil, reason: "more than 63"),
        .init(name: "space inside", header: nil, query: "ws%2001", reason: "only letters, digits"),
        .init(name: "address instead of name", header: Array("10.0.0.1".utf8), query: nil, reason: "not a host name"),
        .init(name: "empty", header: Array("   ".utf8), query: "", reason: "missing"),
    ]

    @Test func hostileHostNamesAreRefusedNamingTheCause() async throws {
        try await withRunningMirror { m in
            let context = try TLSClientContext(caFile: m.lab.caFile)
            let token = m.clientToken
            let port = m.port
            let before = m.simulator.counts
            var checked = 0
            try await whileServingGoodClient(port: port, context: context) {
                for c in Self.nameCases {
                    var requests: [(String, [UInt8])] = []
                    if let h = c.header {
                        let head = "GET /api/public/thor10 HTTP/1.1\r\nHost: m\r\nX-OS: windows\r\nX-Type: workstation\r\nX-Arch: amd64\r\nX-Token: \(token)\r\nX-Hostname: "
                        requests.append(("cloud", Array(head.utf8) + h + Array("\r\n\r\n".utf8)))
                    }
                    if let q = c.query {
                        let target = "/api/v1/downloads/thor?os=windows&type=client&scanner=thor10%40latest&signatures=signatures&hostname=\(q)&token=\(token)"
                        requests.append(("asgard", Array("GET \(target) HTTP/1.1\r\nHost: m\r\n\r\n".utf8)))
                    }
                    for (route, bytes) in requests {
                        let r = try await onThread { () -> TestResponse in
                            let client = try TLSTestClient(host: "127.0.0.1", port: port, context: context, receiveTimeout: 10)
                            defer { client.close() }
                            try client.send(bytes)
                            return try client.readResponse()
                        }
                        #expect(r.status == 400, "\(c.name) via \(route): \(r.status) \(r.text)")
                        #expect(r.text.localizedCaseInsensitiveContains(c.reason), "\(c.name) via \(route): \(r.text)")
                        #expect(!r.text.contains("passwd") && !r.text.contains("Set-Cookie") && !r.text.contains("\u{1B}"),
                                "\(c.name) via \(route) reflects the name: \(r.text)")
                        #expect(!r.headers.contains { $0.0.lowercased() == "set-cookie" })
                        checked += 1
                    }
                }
            }
            print("hostile host-name cases: \(checked)")
            let after = m.simulator.counts
            #expect(after.licensesIssued == before.licensesIssued && after.packageTransfers == before.packageTransfers,
                    "a refused name reached upstream")
        }
    }

    @Test func tokensWithCRLFAreRefusedAndNeverReflected() async throws {
        try await withRunningMirror { m in
            let context = try TLSClientContext(caFile: m.lab.caFile)
            let port = m.port
            let token = m.clientToken
            let evil = "\(token)%0D%0ASet-Cookie:%20pwned=1"
            let probes: [(String, String, Set<Int>)] = [
                ("CRLF in the token parameter",
                 "GET /api/v1/downloads/thor?os=windows&type=client&hostname=ws01&token=\(evil) HTTP/1.1\r\nHost: m\r\n\r\n", [400, 401, 403]),
                ("CRLF in the license-only token",
                 "POST /api/v0/licensing/issue?token=\(evil) HTTP/1.1\r\nHost: m\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nhostnames=ws01&type=server", [400, 401, 403]),
                ("bare CR inside X-Token",
                 "GET /api/public/thor10 HTTP/1.1\r\nHost: m\r\nX-OS: windows\r\nX-Type: workstation\r\nX-Arch: amd64\r\nX-Token: \(token)\rSet-Cookie: pwned=1\r\nX-Hostname: ws01\r\n\r\n", [400]),
                ("folded Authorization",
                 "GET /api/public/thor10 HTTP/1.1\r\nHost: m\r\nX-OS: windows\r\nX-Type: workstation\r\nX-Arch: amd64\r\nAuthorization: x\r\n \(token)\r\nX-Hostname: ws01\r\n\r\n", [400]),
                ("token split by a CRLF into a second header",
                 "GET /api/public/thor10 HTTP/1.1\r\nHost: m\r\nX-OS: windows\r\nX-Type: workstation\r\nX-Arch: amd64\r\nX-Token: pwned\r\nSet-Cookie: \(token)\r\nX-Hostname: ws01\r\n\r\n", [401, 403]),
            ]
            try await whileServingGoodClient(port: port, context: context) {
                for (name, text, statuses) in probes {
                    let r = try await onThread { () -> TestResponse in
                        let client = try TLSTestClient(host: "127.0.0.1", port: port, context: context, receiveTimeout: 10)
                        defer { client.close() }
                        try client.send(text)
                        return try client.readResponse()
                    }
                    #expect(statuses.contains(r.status), "\(name): \(r.status) \(r.text)")
                    #expect(!r.text.contains(token) && !r.text.contains("pwned"), "\(name): reflected in \(r.text)")
                    #expect(!r.headers.contains { $0.0.lowercased() == "set-cookie" || $0.1.contains("pwned") }, "\(name)")
                }
            }
            #expect(m.simulator.counts.licensesIssued == 0)
        }
    }
}
