import Foundation
import Glibc
import SeedHTTPServer
import SeedTLS
import SeedTestSupport
import Testing

/// One element of sslscan's XML report, with its attributes (sslscan writes one element per line).
struct ScanElement: Sendable {
    var tag: String
    var attributes: [String: String]
    subscript(_ name: String) -> String? { attributes[name] }
}

/// Parses the line-per-element XML `sslscan --xml=-` prints. Only self-closing elements with attributes
/// and the text of `<signature-algorithm>` are needed.
func parseSSLScanXML(_ xml: String) -> [ScanElement] {
    var out: [ScanElement] = []
    for raw in xml.split(separator: "\n") {
        let line = raw.trimmingCharacters(in: .whitespaces)
        guard line.hasPrefix("<"), !line.hasPrefix("</"), !line.hasPrefix("<?") else { continue }
        let body = line.dropFirst()
        let tag = String(body.prefix { $0 != " " && $0 != ">" && $0 != "/" })
        var attributes: [String: String] = [:]
        var rest = Substring(body.dropFirst(tag.count))
        while let eq = rest.firstIndex(of: "=") {
            let name = rest[..<eq].trimmingCharacters(in: .whitespaces)
            let afterEq = rest[rest.index(after: eq)...]
            guard afterEq.first == "\"" else { break }
            let valueStart = afterEq.index(after: afterEq.startIndex)
            guard let close = afterEq[valueStart...].firstIndex(of: "\"") else { break }
            attributes[name] = String(afterEq[valueStart..<close])
            rest = afterEq[afterEq.index(after: close)...]
        }
        if let open = line.firstIndex(of: ">"), let close = line.range(of: "</\(tag)>") {
            let text = line[line.index(after: open)..<close.lowerBound]
            attributes["#text"] = String(text)
        }
        out.append(ScanElement(tag: tag, attributes: attributes))
    }
    return out
}

/// The path of an executable on PATH, or nil.
func executableOnPath(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if access(path, X_OK) == 0 { return path }
    }
    return nil
}

/// Runs a program to its end and returns its standard output (standard error is discarded).
func runProgram(_ path: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    while p.isRunning { Thread.sleep(forTimeInterval: 0.02) }
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// What a TLS scan must never find: protocols older than TLS 1.2 and weak or anonymous suites.
func scanViolations(_ elements: [ScanElement], allowSHA1CBC: Bool = false) -> [String] {
    var problems: [String] = []
    for p in elements where p.tag == "protocol" && p["enabled"] == "1" {
        let name = "\(p["type"] ?? "?") \(p["version"] ?? "?")"
        if !(p["type"] == "tls" && (p["version"] == "1.2" || p["version"] == "1.3")) { problems.append("\(name) enabled") }
    }
    let weakWords = ["RC4", "DES", "NULL", "EXP", "ADH", "AECDH", "anon", "MD5", "PSK", "SRP", "IDEA", "SEED", "CAMELLIA"]
    for c in elements where c.tag == "cipher" {
        let name = c["cipher"] ?? "?"
        if weakWords.contains(where: { name.uppercased().contains($0.uppercased()) }) { problems.append("weak suite \(name)") }
        if ["anonymous", "null", "weak", "medium"].contains(c["strength"] ?? "") {
            problems.append("suite \(name) rated \(c["strength"]!)")
        }
        if !allowSHA1CBC && name.hasSuffix("-SHA") { problems.append("CBC-SHA1 suite \(name)") }
        if let bits = Int(c["bits"] ?? ""), bits < 128 { problems.append("suite \(name) has \(bits) bits") }
        if let dh = Int(c["dhebits"] ?? ""), dh < 2048 { problems.append("suite \(name) uses \(dh)-bit DH") }
        if c["sslversion"] != "TLSv1.2" && c["sslversion"] != "TLSv1.3" {
            problems.append("suite \(name) offered over \(c["sslversion"] ?? "?")")
        }
    }
    for h in elements where h.tag == "heartbleed" && h["vulnerable"] == "1" {
        problems.append("heartbleed over \(h["sslversion"] ?? "?")")
    }
    for r in elements where r.tag == "renegotiation" && r["supported"] == "1" && r["secure"] != "1" {
        problems.append("insecure renegotiation")
    }
    for pk in elements where pk.tag == "pk" {
        let bits = Int(pk["bits"] ?? "") ?? 0
        // sslscan gives RSA modulus bits, but an EC key's security bits (P-256: 128).
        let minimum = pk["type"] == "RSA" ? 2048 : 128
        if bits < minimum { problems.append("\(pk["type"] ?? "?") key of \(bits) bits") }
    }
    for s in elements where s.tag == "signature-algorithm" {
        let alg = (s["#text"] ?? "").lowercased()
        if alg.contains("md5") || alg.contains("sha1") { problems.append("certificate signed with \(alg)") }
    }
    for e in elements where e.tag == "expired" && (e["#text"] ?? "") == "true" { problems.append("expired certificate") }
    return problems
}

@Suite(.serialized) struct TLSScanTests {
    @Test func sslscanFindsOnlyModernProtocolsAndSuitesAndTheWindowsOnes() async throws {
        guard let sslscan = executableOnPath("sslscan") else {
            print("TLS scan skipped: sslscan is not installed (apt-get install sslscan)")
            return
        }
        try await withHostileServer { s in
            let (status, xml) = try await whileServingGoodClient(port: s.port) {
                try await onThread { try runProgram(sslscan, ["--xml=-", "--no-colour", "127.0.0.1:\(s.port)"]) }
            }
            #expect(status == 0)
            let elements = parseSSLScanXML(xml)
            let protocols = elements.filter { $0.tag == "protocol" }
            #expect(protocols.count == 6, "sslscan report without protocol lines: \(xml.prefix(400))")
            let enabled = Set(protocols.filter { $0["enabled"] == "1" }.map { "\($0["type"]!) \($0["version"]!)" })
            #expect(enabled == ["tls 1.2", "tls 1.3"])
            let suites = Set(elements.filter { $0.tag == "cipher" }.map { $0["cipher"] ?? "" })
            for required in ["ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "DHE-RSA-AES256-GCM-SHA384"] {
                #expect(suites.contains(required), "missing Windows-compatible suite \(required); offered \(suites.sorted())")
            }
            for modern in ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256"] {
                #expect(suites.contains(modern), "missing \(modern)")
            }
            let problems = scanViolations(elements)
            #expect(problems.isEmpty, "\(problems)")
            let keys = elements.filter { $0.tag == "pk" }
            #expect(!keys.isEmpty && keys.allSatisfy { $0["error"] == "false" })
            print("sslscan: \(suites.count) suites, protocols \(enabled.sorted()), keys \(keys.map { "\($0["type"] ?? "?")-\($0["bits"] ?? "?")" })")
        }

        // Chain and key sizes of both certificates, as a verifying client sees them.
        try await withHostileServer { s in
            try await onThread {
                for (suite, keyType) in [("ECDHE-RSA-AES256-SHA384", "RSA"), ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDSA")] {
                    let ctx = try TLSClientContext(
                        caFile: TransportFixtures.certificates.caFile, maximumVersion: .tls12, cipherList: suite)
                    let c = try TLSTestClient(host: "127.0.0.1", port: s.port, context: ctx, serverName: "localhost")
                    #expect(c.engine.peerVerified, "\(keyType) chain does not verify")
                    #expect(c.engine.peerChainLength >= 1)
                    #expect(try c.request("GET", "/healthz").status == 200)
                }
            }
        }
        let pem = try String(contentsOfFile: TransportFixtures.certificates.rsa.certificateChainPath, encoding: .utf8)
        #expect(pem.contains("BEGIN CERTIFICATE"))
    }

    /// The scan itself must be able to fail: against a deliberately weak OpenSSL server it reports TLS 1.0
    /// and anonymous suites, which `scanViolations` flags.
    @Test func theScanDetectsAWeakServer() async throws {
        guard let sslscan = executableOnPath("sslscan"), let openssl = executableOnPath("openssl") else {
            print("weak-server control skipped: sslscan or openssl is not installed")
            return
        }
        let certs = TransportFixtures.certificates
        // A free port: bind port 0, read it, close.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = UInt16(bigEndian: addr.sin_port)
        Glibc.close(fd)
        let weak = Process()
        weak.executableURL = URL(fileURLWithPath: openssl)
        weak.arguments = [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certs.rsa.certificateChainPath, "-key",
            certs.rsa.privateKeyPath, "-quiet", "-tls1", "-cipher", "ALL:@SECLEVEL=0",
        ]
        weak.standardOutput = FileHandle.nullDevice
        weak.standardError = FileHandle.nullDevice
        weak.standardInput = Pipe()
        try weak.run()
        defer {
            kill(weak.processIdentifier, SIGKILL)
            let end = Date().addingTimeInterval(5)
            while weak.isRunning && Date() < end { usleep(20_000) }
        }
        let up = await eventually(5) { (try? connectTCP(host: "127.0.0.1", port: port)).map { Glibc.close($0); return true } ?? false }
        try #require(up, "openssl s_server did not start")
        let (_, xml) = try await onThread { try runProgram(sslscan, ["--xml=-", "--no-colour", "127.0.0.1:\(port)"]) }
        let problems = scanViolations(parseSSLScanXML(xml))
        #expect(problems.contains("tls 1.0 enabled"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("weak suite ADH") || $0.hasPrefix("weak suite AECDH") }, "\(problems)")
    }
}
