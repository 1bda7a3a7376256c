import SeedHTTP
import SeedHTTPServer
public import SeedLicensing

/// How a failed upstream call is shown to the seed (PROTOCOL.md §1 table, docs/routes.md "Errors").
///
/// The seed stops retrying on 401/403 and prints "token missing, invalid or expired". When upstream
/// rejects the *mirror's* token, the seed's token was fine and a retry may succeed once an operator fixes
/// the mirror, so the seed gets 502 and the reason, while the operator sees the cause in the log and audit.
public func seedFacingRefusal(for error: IssueError) -> (status: Int, reason: String) {
    switch error.kind {
    case .rejected(let status):
        switch status {
        case 401, 403: return (502, "upstream rejected the mirror's token")
        case 409: return (409, "license pool exhausted upstream (quota limit)")
        case 429: return (429, "upstream rate limit reached, try later")
        case 400: return (400, "upstream refused the request parameters")
        case 500...599: return (502, "upstream failed with status \(status)")
        default: return (502, "upstream answered with unexpected status \(status)")
        }
    case .notSent:
        return (502, "upstream unreachable: \(error.message)")
    case .outcomeUnknown:
        return (504, "upstream did not complete the answer: \(error.message)")
    }
}

/// The plain-text error answer every refusal uses; never status 200.
func errorResponse(_ status: Int, _ reason: String, retryAfterSeconds: Int? = nil, extra: [(name: String, value: String)] = [])
    -> Response
{
    precondition(status >= 400, "an error answer must not carry a success status")
    var h = HTTPHeaders()
    for e in extra { h.add(e.name, e.value) }
    if let r = retryAfterSeconds { h.add("Retry-After", String(r)) }
    h.add("Cache-Control", "no-store")
    return Response.text(status, reason, headers: h)
}

func errorResponse(_ e: RouteError) -> Response { errorResponse(e.status, e.reason, extra: e.headers) }

/// Maps a desk refusal to the answer; a status outside 4xx/5xx (a desk bug) becomes 500.
func refusalResponse(status: Int, reason: String, retryAfterSeconds: Int?) -> Response {
    let s = (400...599).contains(status) ? status : 500
    return errorResponse(s, reason, retryAfterSeconds: retryAfterSeconds)
}
