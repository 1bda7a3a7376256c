import Foundation
import SeedCore
import SeedHTTP
import SeedLicensing
import SeedUpstream

/// Where license-only calls go (PROTOCOL.md §5 and docs/routes.md "Tiering").
enum LicenseOnlyRoute: Sendable {
    /// The vendor portal: `POST …/contracts/issue/0/TYPE/HASH?download=1` with the API key.
    case portal(base: UpstreamURL, apiKey: String)
    /// A parent SeedMirror (or ASGARD): `POST …/api/v0/licensing/issue` with the mirror's token.
    case mirror(url: UpstreamURL, token: String)
    /// No way to get a license alone: every new host costs a package download.
    case none
}

/// The mirror's upstream calls through SeedUpstream's client. Secrets (token, API key) live only in the
/// requests it builds; SeedUpstream keeps them out of errors and logs.
final class VendorUpstream: MirrorUpstream {
    let client: UpstreamClient
    let cloud: UpstreamURL
    let token: String
    let licenseRoute: LicenseOnlyRoute
    let logger: Logger

    init(client: UpstreamClient, cloud: UpstreamURL, token: String, licenseRoute: LicenseOnlyRoute, logger: Logger) {
        self.client = client
        self.cloud = cloud
        self.token = token
        self.licenseRoute = licenseRoute
        self.logger = logger
    }

    var canIssueLicenseOnly: Bool {
        if case .none = licenseRoute { return false }
        return true
    }

    func fetchPackage(_ fetch: PackageFetch) async throws(IssueError) -> any UpstreamBody {
        let request = VendorAPI.cloudDownload(
            base: cloud, token: token, host: fetch.host, type: fetch.type.rawValue, os: fetch.os, arch: fetch.arch,
            comment: fetch.comment)
        let stream: UpstreamBodyStream
        do { stream = try await client.stream(request) } catch { throw issueError(error) }
        guard stream.head.status == 200 else {
            // A short excerpt of the error body names upstream's reason; the rest is dropped.
            var excerpt: [UInt8] = []
            if let piece = try? await stream.next(maxBytes: 512) { excerpt = piece }
            stream.cancel()
            throw rejection(status: stream.head.status, body: excerpt, what: "package download")
        }
        return StreamedBody(stream: stream)
    }

    func issueLicense(hostKey: String, type: LicenseType, comment: String?) async throws(IssueError) -> IssuedLicense {
        let request: UpstreamRequest
        switch licenseRoute {
        case .none:
            throw IssueError(.notSent, "no license-only upstream is configured")
        case .portal(let base, let apiKey):
            // The same HMAC the ledger and audit record (PortalHMAC), so both always name the same portal entry.
            request = VendorAPI.portalIssue(
                base: base, apiKey: apiKey, type: type.portalWord, hash: PortalHMAC.hash(shortHost: hostKey))
        case .mirror(let url, let token):
            var h = HTTPHeaders()
            h.add("Authorization", token)
            h.add("Accept", "application/octet-stream")
            h.add("Content-Type", "application/x-www-form-urlencoded")
            let body = "hostnames=\(formEscaped(hostKey))&type=\(type.rawValue)"
            request = UpstreamRequest(method: "POST", url: url, headers: h, body: Array(body.utf8))
        }
        let response: UpstreamResponse
        do { response = try await client.send(request) } catch { throw issueError(error) }
        guard response.status == 200 else {
            throw rejection(status: response.status, body: response.body, what: "license-only call")
        }
        let bytes = try validatedLicenseBody(response.body)
        return IssuedLicense(bytes: bytes, source: .upstream, upstreamReference: response.headers["X-License-Id"])
    }

    private func rejection(status: Int, body: [UInt8], what: String) -> IssueError {
        let text = String(decoding: body.prefix(160), as: UTF8.self).filter { !$0.isNewline }
        let cause: String
        switch status {
        case 401, 403: cause = "upstream rejected the mirror's token"
        case 409: cause = "upstream license pool exhausted"
        default: cause = "upstream answered \(status)"
        }
        return IssueError(
            .rejected(status: status), "\(cause) on the \(what) (\(status)\(text.isEmpty ? "" : ": " + text))")
    }
}

/// Maps SeedUpstream's failure stages onto the licensing contract's kinds.
func issueError(_ e: UpstreamError) -> IssueError {
    switch e.stage {
    case .notSent: return IssueError(.notSent, e.description)
    case .outcomeUnknown: return IssueError(.outcomeUnknown, e.description)
    case .answered:
        switch e.kind {
        case .httpStatus(let s): return IssueError(.rejected(status: s), e.description)
        case .errorBody: return IssueError(.rejected(status: 502), e.description)
        default: return IssueError(.outcomeUnknown, e.description)
        }
    }
}

/// An upstream 200 body read piece by piece.
final class StreamedBody: UpstreamBody {
    let stream: UpstreamBodyStream
    init(stream: UpstreamBodyStream) { self.stream = stream }
    var contentLength: UInt64? { stream.head.contentLength }
    func read(maxBytes: Int) async throws(IssueError) -> [UInt8]? {
        do { return try await stream.next(maxBytes: maxBytes) } catch { throw issueError(error) }
    }
    func cancel() { stream.cancel() }
}

private func formEscaped(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            out.unicodeScalars.append(UnicodeScalar(b))
        default:
            out += "%" + String(b, radix: 16, uppercase: true).leftPad(2)
        }
    }
    return out
}

extension String {
    fileprivate func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
