internal import CSeedOpenSSL
import SeedHTTP

/// The two vendor calls the mirror makes (PROTOCOL.md §5) and how their answers are read.
public enum VendorAPI {
    /// The key published in the THOR manual for hashing host names before they go to the portal, as hex.
    /// It is used decoded to its 64 bytes (the manual's `openssl dgst -sha1 -mac hmac -macopt hexkey:...`),
    /// matching SeedLicensing's `PortalHMAC`.
    public static let portalHostKey =
        "b190dd4a98456999b6d9c7e4e1ac1f231b978c3e7652898d7db2fcdede34613dbc7909c9fc8b3177bb904871b8b7fc7a30cb1582ce9b0089397836dcc209e2d6"

    /// The smallest body accepted as a license (PROTOCOL.md §5).
    public static let minimumLicenseBytes = 800

    /// `base64url(HMAC-SHA1(key, lowercase(shortHost)))` without padding, computed with OpenSSL;
    /// `keyHex` is decoded from hex (a malformed key is a programming error).
    public static func hostHash(shortHost: String, keyHex: String = portalHostKey) -> String {
        let keyBytes = decodeHex(keyHex)
        let message = Array(shortHost.lowercased().utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = keyBytes.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                HMAC(EVP_sha1(), k.baseAddress, Int32(k.count), m.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    m.count, &digest, &length)
            }
        }
        precondition(ok != nil, "HMAC-SHA1 failed")
        return base64URL(Array(digest[..<Int(length)]))
    }

    /// Builders put their route below `base`'s path (a parent mirror may sit under a prefix).
    ///
    /// `GET /api/public/thor10` for one host, as a seed would send it, with the mirror's own token.
    public static func cloudDownload(
        base: UpstreamURL, token: String, host: String, type: String, os: String, arch: String, comment: String? = nil
    ) -> UpstreamRequest {
        var headers = HTTPHeaders()
        headers.add("X-OS", os)
        headers.add("X-Type", type)
        headers.add("X-Arch", arch)
        headers.add("X-Token", token)
        headers.add("Authorization", token)
        headers.add("X-Hostname", host)
        if let comment { headers.add("X-Comment", comment) }
        return UpstreamRequest(method: "GET", url: base.appending(route: "/api/public/thor10"), headers: headers)
    }

    /// `POST /api/public/contracts/issue/CONTRACT/TYPE/HASH?download=1` with the portal API key.
    /// `type` is the portal's word: `server` or `client`.
    public static func portalIssue(base: UpstreamURL, apiKey: String, contract: String = "0", type: String, hash: String)
        -> UpstreamRequest
    {
        var headers = HTTPHeaders()
        headers.add("Authorization", apiKey)
        let target = "/api/public/contracts/issue/\(contract)/\(type)/\(hash)?download=1"
        return UpstreamRequest(method: "POST", url: base.appending(route: target), headers: headers)
    }

    /// A parent SeedMirror's license-only route (PROTOCOL.md §3) for one host: a bare license comes back.
    /// `type` is `server` or `workstation`.
    public static func mirrorIssue(base: UpstreamURL, token: String, host: String, type: String) -> UpstreamRequest {
        var headers = HTTPHeaders()
        headers.add("Authorization", token)
        headers.add("Accept", "application/octet-stream")
        headers.add("Content-Type", "application/x-www-form-urlencoded")
        let body = "hostnames=\(formEncoded(host))&type=\(formEncoded(type))"
        return UpstreamRequest(
            method: "POST", url: base.appending(route: "/api/v0/licensing/issue"), headers: headers, body: Array(body.utf8))
    }

    /// The license bytes of a portal answer; throws for a non-200 status or an `Error:` text body.
    public static func license(from response: UpstreamResponse, endpoint: String) throws(UpstreamError) -> [UInt8] {
        guard response.status == 200 else {
            throw UpstreamError(
                .httpStatus(response.status), stage: .answered, endpoint: endpoint,
                detail: excerpt(response.body))
        }
        let body = response.body
        if body.starts(with: Array("Error:".utf8)) || body.count < minimumLicenseBytes {
            throw UpstreamError(
                .errorBody(status: errorBodyStatus(body)), stage: .answered, endpoint: endpoint, detail: excerpt(body))
        }
        return body
    }

    /// NNN of an `Error: HTTP-NNN` body, if that is what it says.
    static func errorBodyStatus(_ body: [UInt8]) -> Int? {
        let text = String(decoding: body.prefix(64), as: UTF8.self)
        guard let range = text.range(of: "HTTP-") else { return nil }
        let digits = text[range.upperBound...].prefix(while: { $0.isASCII && $0.isNumber })
        guard digits.count == 3, let n = Int(digits) else { return nil }
        return n
    }

    /// The first printable part of a body, for an error line (upstream bodies hold no secrets of ours).
    static func excerpt(_ body: [UInt8]) -> String {
        let text = body.prefix(120).map { $0 >= 32 && $0 < 127 ? Character(UnicodeScalar($0)) : "." }
        return text.isEmpty ? "empty body" : "body \"\(String(text))\" (\(body.count) bytes)"
    }
}

/// `application/x-www-form-urlencoded` value encoding: unreserved bytes kept, the rest `%XX`.
func formEncoded(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        let keep = (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 45 || b == 46 || b == 95
            || b == 126
        out += keep ? String(UnicodeScalar(b)) : "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
    }
    return out
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

func decodeHex(_ hex: String) -> [UInt8] {
    let digits = Array(hex.lowercased().utf8)
    precondition(digits.count % 2 == 0, "hex key has an odd length")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        default: preconditionFailure("hex key has a non-hex character")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

/// base64url without padding (RFC 4648 §5).
func base64URL(_ bytes: [UInt8]) -> String {
    var s = base64(bytes)
    while s.hasSuffix("=") { s.removeLast() }
    return String(s.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
}
