import Foundation
import SeedCore
import SeedHTTP
import SeedHTTPServer
import SeedLicensing
import SeedTestSupport
import Testing

@testable import SeedAudit
@testable import SeedServer

/// The byte-built log lines against the String-built ones they replaced (kept here as references): the
/// audit chain hashes these bytes, and old logs must keep verifying.
@Suite struct LogBytesTests {
    static let awkward = [
        "", "plain", "quote \" and \\ backslash", "new\nline\r\ttab", "\u{01}\u{1f}\u{7f}", "ünïcödé 🚀", "/a?b=c&d",
    ]

    // MARK: references (the implementations before the byte writers)

    static func referenceLine(_ r: AuditRecord) -> String {
        var s = "{\"seq\":\(r.seq),\"time\":\"\(r.time.rfc3339)\",\"event\":\"\(jsonEscaped(r.event))\""
        func str(_ k: String, _ v: String?) {
            s += ",\"\(k)\":"
            if let v { s += "\"" + jsonEscaped(v) + "\"" } else { s += "null" }
        }
        func int(_ k: String, _ v: Int64?) {
            s += ",\"\(k)\":"
            s += v.map { String($0) } ?? "null"
        }
        str("route", r.route)
        str("account", r.account)
        str("clientAddress", r.clientAddress)
        str("clientToken", r.clientToken)
        str("hostAsked", r.hostAsked)
        str("host", r.host)
        str("type", r.type)
        str("os", r.os)
        str("arch", r.arch)
        str("comment", r.comment)
        str("licenseRef", r.licenseRef)
        str("portalHmac", r.portalHmac)
        int("quotaUsed", r.quotaUsed)
        int("quotaTotal", r.quotaTotal)
        int("upstreamStatus", r.upstreamStatus)
        str("rule", r.rule)
        s += ",\"reportOnly\":\(r.reportOnly),\"alias\":\(r.alias)"
        str("reason", r.reason)
        s += ",\"prev\":\"\(r.prev)\"}"
        return s
    }

    static func referenceRedacted(_ target: String) -> String {
        guard let q = target.firstIndex(of: "?") else { return target }
        let path = target[..<q]
        let query = target[target.index(after: q)...]
        let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            let name = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let decodedName = (String(name).removingPercentEncoding ?? String(name)).lowercased()
            if decodedName == "token" || decodedName == "apikey" || decodedName == "api_key" {
                return "\(name)=REDACTED"
            }
            return String(part)
        }
        return path + "?" + parts.joined(separator: "&")
    }

    static func referenceAccessLine(_ e: AccessLogEntry) -> String {
        let ms = (e.durationMilliseconds * 1000).rounded() / 1000
        return "{\"time\":\"\(iso8601Milliseconds(e.time))\",\"client\":\"\(jsonEscaped(e.clientAddress))\","
            + "\"port\":\(e.clientPort),\"method\":\"\(jsonEscaped(e.method))\","
            + "\"path\":\"\(jsonEscaped(referenceRedacted(e.path)))\",\"status\":\(e.status),\"bytes\":\(e.bytes),"
            + "\"ms\":\(ms),\"tls\":\"\(jsonEscaped(e.tlsVersion))\",\"cipher\":\"\(jsonEscaped(e.tlsCipher))\"}"
    }

    // MARK: tests

    @Test func auditLinesAreTheReferenceBytes() {
        let times: [Int64] = [0, 1_796_313_600_250, 1_796_399_999_999, 253_402_300_799_999, 86_400_000 * 11_000 + 7]
        var n: UInt64 = 1
        for t in times {
            for text in Self.awkward {
                var r = AuditRecord(
                    seq: n, time: AuditTime(millisecondsSinceEpoch: t), event: "reused", prev: String(repeating: "ab", count: 32))
                r.route = text
                r.hostAsked = text
                r.reason = text.isEmpty ? nil : text
                r.comment = text
                r.quotaUsed = n % 2 == 0 ? Int64(n) * 1_000_003 : nil
                r.quotaTotal = n % 3 == 0 ? -Int64(n) : nil
                r.upstreamStatus = n % 2 == 1 ? 409 : nil
                r.reportOnly = n % 2 == 0
                r.alias = n % 3 == 0
                #expect(r.line == Self.referenceLine(r))
                // And the line still parses back to the record.
                #expect((try? AuditRecord.parse(Array(r.line.utf8)).get()) == r)
                n += 1
            }
        }
    }

    @Test func accessLinesAreTheReferenceText() {
        var entries: [AccessLogEntry] = []
        let targets = [
            "/healthz", "/api/v0/licensing/issue?token=s3cret", "/x?os=windows&token=s3cret&hostname=a&TOKEN=x&%74oken=y",
            "/x?apikey=1&API_KEY=2&api%5Fkey=3&tokens=4&token", "/x?&&token=&=token", "/x?to%6ben=a&%zz=b",
            "/x?to\u{212A}en=kelvin", "/a\"b?c=\\",
        ]
        for (i, target) in targets.enumerated() {
            for (j, text) in Self.awkward.enumerated() {
                entries.append(
                    AccessLogEntry(
                        time: 1_796_313_600.25 + Double(i * 977 + j) * 0.123, clientAddress: text, clientPort: i * j,
                        method: "GET", path: target, status: 200 + j, bytes: UInt64(i) * 70_000_000,
                        durationMilliseconds: Double(j) * 12.3456 + 0.0004, tlsVersion: "TLSv1.3", tlsCipher: text))
            }
        }
        for e in entries {
            #expect(accessLogLine(e) == Self.referenceAccessLine(e))
            #expect(redactedTarget(e.path) == Self.referenceRedacted(e.path))
        }
    }

    @Test func accessLogWritesEveryLineOnceFromManyThreads() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let path = dir + "/access.log"
            let sink = try JSONLinesAccessLog(appendingTo: path)
            DispatchQueue.concurrentPerform(iterations: 8) { t in
                for i in 0..<250 {
                    sink.record(
                        AccessLogEntry(
                            time: 1_796_313_600 + Double(i), clientAddress: "10.0.0.\(t)", clientPort: i, method: "POST",
                            path: "/api/v0/licensing/issue?token=secret-\(t)", status: 200, bytes: 1024,
                            durationMilliseconds: 0.5, tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_128_GCM_SHA256"))
                }
            }
            sink.flush()
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let lines = text.split(separator: "\n")
            #expect(lines.count == 2000)
            #expect(!text.contains("secret-"))
            var seen = Set<String>()
            for l in lines {
                let obj = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])
                seen.insert("\(obj["client"]!)-\(obj["port"]!)")
            }
            #expect(seen.count == 2000)
        }
    }

    @Test func tokenRedactionKeepsItsRules() {
        func reference(_ target: String) -> String {
            let bytes = Array(target.utf8)
            guard let q = bytes.firstIndex(of: UInt8(ascii: "?")) else { return target }
            var out = Array(bytes[...q])
            var changed = false
            var first = true
            for pair in bytes[(q + 1)...].split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
                if !first { out.append(UInt8(ascii: "&")) }
                first = false
                if let eq = pair.firstIndex(of: UInt8(ascii: "=")) {
                    let rawName = String(decoding: pair[..<eq], as: UTF8.self)
                    let name = rawName.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? rawName
                    if name.lowercased() == "token" {
                        out.append(contentsOf: pair[...eq])
                        out.append(contentsOf: "REDACTED".utf8)
                        changed = true
                        continue
                    }
                }
                out.append(contentsOf: pair)
            }
            return changed ? String(decoding: out, as: UTF8.self) : target
        }
        for t in [
            "/healthz", "/x?token=a", "/x?TOKEN=a&b=c", "/x?%74oken=a", "/x?tok+en=a", "/x?token", "/x?tokens=a",
            "/x?a=1&&token=2&", "/x?to\u{212A}en=3", "/x?token=a=b&token=c",
        ] {
            #expect(redactTokens(inTarget: t) == reference(t), "\(t)")
        }
    }
}
