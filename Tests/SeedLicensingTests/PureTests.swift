import Foundation
import SeedCore
import SeedLicensing
import Testing

@Suite struct HostNameTests {
    @Test(arguments: [
        ("WS01", "ws01"), ("ws01", "ws01"), ("WS01.corp.example", "ws01"), ("  Ws01\t", "ws01"),
        ("ws01.corp.example.", "ws01"), ("a-b-c", "a-b-c"), ("host9", "host9"), ("1a.corp", "1a"),
    ])
    func normalizes(raw: String, key: String) throws {
        #expect(try HostName.normalize(raw).get() == key)
    }

    @Test(arguments: [
        ("", "empty"), ("   ", "empty"), ("ws..corp", "empty label"), (".ws01", "empty label"), ("ws%01", "'%'"),
        ("ws/01", "'/'"), ("ws\\01", "'\\'"), ("ws\u{0}01", "control"), ("ws\u{7}01", "control"),
        ("wѕ01", "non-ASCII"), ("ｗｓ01", "non-ASCII"), ("ws_01", "'_'"), ("-ws01", "'-'"), ("10.0.0.1", "address"),
        ("1.corp", "first label is a number"), ("123.corp.example.", "first label is a number"),
        (String(repeating: "a", count: 300), "more than 253"), (String(repeating: "a", count: 64), "more than 63"),
    ])
    func refuses(raw: String, reasonPart: String) {
        switch HostName.normalize(raw) {
        case .success(let k): Issue.record("accepted \(raw.debugDescription) as \(k)")
        case .failure(let e): #expect(e.reason.contains(reasonPart), "\(e.reason)")
        }
    }

    @Test func netBIOSCutMapsToTheOnlyLongerName() {
        var index = NetBIOSAliasIndex()
        index.add("abcdefghijklmnopqr")
        index.add("short")
        #expect(index.fullName(forCut: "abcdefghijklmno") == "abcdefghijklmnopqr")
        #expect(index.fullName(forCut: "abcdefghijklmn") == nil)
        index.add("abcdefghijklmnoxyz")
        #expect(index.fullName(forCut: "abcdefghijklmno") == nil, "two long names share the cut: ambiguous")
    }
}

@Suite struct HMACTests {
    func hex(_ s: String) -> [UInt8] {
        let d = Array(s.utf8)
        return stride(from: 0, to: d.count, by: 2).map {
            UInt8(String(decoding: d[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
    }

    @Test func sha1KnownAnswers() {
        #expect(hexString(SHA1.hash(Array("".utf8))) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hexString(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(
            hexString(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(
            hexString(SHA1.hash([UInt8](repeating: 0x61, count: 1_000_000)))
                == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func rfc2202Vectors() {
        #expect(
            hexString(hmacSHA1(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b617318655057264e28bc0b6fb378c8ef146be00")
        #expect(
            hexString(hmacSHA1(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        #expect(
            hexString(hmacSHA1(key: [UInt8](repeating: 0xaa, count: 20), message: [UInt8](repeating: 0xdd, count: 50)))
                == "125d7342b9ac11cd91a39af48aa17b4f63f175d3")
        #expect(
            hexString(
                hmacSHA1(
                    key: [UInt8](repeating: 0xaa, count: 80),
                    message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "aa4ae5e15272d00e95705637ce8a3b55ed402112")
    }

    @Test func base64URLWithoutPadding() {
        #expect(base64URLUnpadded([]) == "")
        #expect(base64URLUnpadded(Array("f".utf8)) == "Zg")
        #expect(base64URLUnpadded(Array("fo".utf8)) == "Zm8")
        #expect(base64URLUnpadded(Array("foo".utf8)) == "Zm9v")
        #expect(base64URLUnpadded([0xfb, 0xff, 0xbf]) == "-_-_")
    }

    /// Known answers computed with the THOR manual's own command:
    /// `echo -n NAME | openssl dgst -binary -sha1 -mac hmac -macopt hexkey:KEY | base64 | tr '/+' '_-' | tr -d '='`.
    @Test func portalHashMatchesTheManualsOpenSSLCommand() {
        #expect(PortalHMAC.key.count == 64)
        #expect(PortalHMAC.hash(shortHost: "ws01") == "SYBIWKnQxf0_1lruscYvoRPnTzo")
        #expect(PortalHMAC.hash(shortHost: "WS01") == "SYBIWKnQxf0_1lruscYvoRPnTzo")
        #expect(PortalHMAC.hash(shortHost: "abcdefghijklmnopqr") == "PsUenh3JVX_Ut78dIh_V-mdXNJA")
        // The ASCII-text-as-key reading would give this instead; the portal does not use it.
        #expect(PortalHMAC.hash(shortHost: "ws01") != "YiaKqegb1ieE464s70LT9pD08ts")
    }
}

@Suite struct BucketAndTableTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)

    @Test func tokenBucketBurstsRefillsAndClampsABackwardClock() {
        var b = TokenBucket(RateLimit(count: 2, per: 4), now: t0)
        #expect(b.take(now: t0) == .allow)
        #expect(b.take(now: t0) == .allow)
        #expect(b.take(now: t0).retryAfterSeconds == 2)
        // A clock stepping back adds no tokens and does not make the wait longer than the real deficit.
        #expect(b.take(now: t0 - 3600).retryAfterSeconds == 2)
        #expect(b.take(now: t0 + 1).retryAfterSeconds == 1)
        #expect(b.take(now: t0 + 2) == .allow)
        #expect(b.take(now: t0 + 2).retryAfterSeconds == 2)
    }

    @Test func boundedTableNeverExceedsItsCapacity() {
        var t = BoundedTable<String, Int>(capacity: 100)
        for i in 0..<10_000 { t["k\(i)"] = i }
        #expect(t.count <= 100)
        #expect(t["k9999"] == 9999)
        #expect(t["k0"] == nil)
        #expect(t.evictions > 0)
    }

    @Test func boundedTableKeepsRecentlyTouchedEntries() {
        var t = BoundedTable<String, Int>(capacity: 10)
        t["hot"] = 1
        for i in 0..<100 {
            t["k\(i)"] = i
            _ = t["hot"]  // touched all along: promoted each time it ages
        }
        #expect(t["hot"] == 1)
    }

    @Test func inflightLeadFollowFinish() {
        var t = InflightTable<String, Int>(maxKeys: 2, maxWaitersPerKey: 2)
        #expect(t.join("a", 0, deadline: t0) == .lead)
        #expect(t.join("a", 1, deadline: t0 + 10) == .follow)
        #expect(t.join("a", 2, deadline: t0 + 20) == .follow)
        #expect(t.join("a", 3, deadline: t0 + 20) == .overloaded)
        #expect(t.join("b", 0, deadline: t0) == .lead)
        #expect(t.join("c", 0, deadline: t0) == .overloaded)
        #expect(t.finish("a") == [1, 2])
        #expect(!t.isInflight("a"))
        #expect(t.join("a", 0, deadline: t0) == .lead)
    }

    @Test func stuckLeaderCannotWedgeFollowers() {
        var t = InflightTable<String, Int>(maxKeys: 10, maxWaitersPerKey: 10)
        #expect(t.join("a", 0, deadline: t0) == .lead)
        #expect(t.join("a", 1, deadline: t0 + 10) == .follow)
        #expect(t.join("a", 2, deadline: t0 + 30) == .follow)
        #expect(t.expire(now: t0 + 5) == [])
        #expect(t.expire(now: t0 + 10) == [1])
        #expect(t.remove("a", where: { $0 == 2 }) == 2)
        #expect(t.isInflight("a"), "the leader keeps its slot: nobody else calls upstream for this key")
        #expect(t.join("a", 3, deadline: t0 + 40) == .follow)
    }
}

@Suite struct PolicyTests {
    @Test func addressesAndNetworks() throws {
        let n = try #require(IPNetwork("10.1.2.0/24"))
        #expect(n.contains(IPAddress("10.1.2.200")!))
        #expect(!n.contains(IPAddress("10.1.3.1")!))
        #expect(n.contains(IPAddress("::ffff:10.1.2.3")!))
        let v6 = try #require(IPNetwork("fd00:1:2:3::/64"))
        #expect(v6.contains(IPAddress("fd00:1:2:3:aaaa::1")!))
        #expect(!v6.contains(IPAddress("fd00:1:2:4::1")!))
        #expect(!v6.contains(IPAddress("10.1.2.3")!))
        #expect(IPAddress("::1")?.description == "0:0:0:0:0:0:0:1")
        #expect(IPAddress("1.2.3") == nil && IPAddress("1.2.3.256") == nil && IPAddress("1:::2") == nil)
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPAddress("10.9.8.7")!.network(v4Prefix: 24, v6Prefix: 64).key == "10.9.8.0/24")
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("192.168.1.1")!))
    }

    @Test func globs() {
        #expect(globMatches("sandbox-*", "sandbox-1234"))
        #expect(globMatches("*-SANDBOX", "win-sandbox"))
        #expect(globMatches("ws??", "ws01"))
        #expect(!globMatches("ws??", "ws001"))
        #expect(!globMatches("sandbox-*", "prod-1"))
        #expect(globMatches("*", "anything"))
    }

    @Test func inventoryFileFormats() {
        let csv = "hostname,owner\nWS01.corp.example,alice\n\"ws02\",bob\n# comment\n\nbad name!,x\n"
        let (hosts, rejected) = PolicyConfiguration.parseInventory(csv)
        #expect(hosts == ["ws01", "ws02"])
        #expect(rejected == ["bad name!"])
        #expect(PolicyConfiguration.parseInventory("a1\r\nb2\n").hosts == ["a1", "b2"])
    }
}
