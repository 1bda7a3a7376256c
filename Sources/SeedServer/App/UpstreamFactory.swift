import SeedCore
import SeedUpstream

/// Builds the upstream client and picks the license-only route (docs/routes.md "Tiering").
func makeUpstream(_ u: UpstreamSection, logger: Logger) throws -> any MirrorUpstream {
    guard let token = u.token?.value else { throw StartupError("upstream.token is required when upstream.mode is online") }
    guard u.url.scheme == "https", u.portalURL.scheme == "https" else {
        throw StartupError("upstream.url and upstream.portalUrl must be https:// URLs")
    }
    var c = UpstreamConfiguration(caFile: u.caFile)
    if let p = u.proxy {
        c.proxy = UpstreamProxy(host: p.host, port: p.port, username: p.username, password: p.password?.value)
    }
    c.connectTimeout = u.connectTimeout
    c.readTimeout = u.readTimeout
    c.maxStreamBytes = UInt64(u.maxBodyBytes)
    let client = try UpstreamClient(configuration: c, logger: logger)
    let cloud = UpstreamURL(host: u.url.host, port: u.url.port, target: "/")
    let route: LicenseOnlyRoute
    if u.portalURL.basePath == "/api/v0/licensing/issue" {
        route = .mirror(url: UpstreamURL(host: u.portalURL.host, port: u.portalURL.port, target: u.portalURL.basePath), token: token)
    } else if let key = u.portalAPIKey?.value {
        route = .portal(base: UpstreamURL(host: u.portalURL.host, port: u.portalURL.port, target: "/"), apiKey: key)
    } else {
        route = .none
    }
    return VendorUpstream(client: client, cloud: cloud, token: token, licenseRoute: route, logger: logger)
}
