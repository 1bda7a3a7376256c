public import SeedLicensing

/// INTERIM stand-in for the LicenseDesk until SeedLicensing's desk is wired: checks the host name, makes
/// the host key (lower case, domain dropped) and calls the issuer for every request. It has no ledger,
/// no dedup, no rate limits and no policy: every call issues. Replaced by the real desk in `MirrorApp`.
public struct InterimLicenseDesk: LicenseDeciding {
    public init() {}

    public func decide(_ request: LicenseRequest, issuer: any LicenseIssuer) async -> LicenseOutcome {
        guard let key = interimHostKey(request.hostAsked) else {
            return .refused(status: 400, reason: "host name \(request.hostAsked) is not valid", retryAfterSeconds: nil)
        }
        do {
            let license = try await issuer.issue(request, hostKey: key)
            return .granted(license: license.bytes, hostKey: key, kind: license.source == .pool ? .pool : .issued)
        } catch {
            let r = seedFacingRefusal(for: error)
            return .refused(status: r.status, reason: r.reason, retryAfterSeconds: nil)
        }
    }
}

/// Lower case, first DNS label; nil when nothing usable is left.
func interimHostKey(_ asked: String) -> String? {
    let short = asked.split(separator: ".", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    let key = short.lowercased()
    guard !key.isEmpty, key.count <= 63 else { return nil }
    return key
}
