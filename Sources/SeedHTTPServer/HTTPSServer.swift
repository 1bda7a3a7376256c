public import SeedCore
public import SeedTLS

/// The HTTPS/1.1 server: epoll loops (one per core, SO_REUSEPORT), TLS, limits, timeouts, streaming bodies.
public final class HTTPSServer: Sendable {
    public init(
        configuration: HTTPServerConfiguration, tls: TLSServerContext, handler: any HTTPHandler, logger: Logger,
        accessLog: (any AccessLogSink)?
    ) {
        fatalError("HTTPSServer: not implemented yet")
    }

    /// Binds and starts every listener and loop; returns the bound addresses (port 0 resolved).
    public func start() throws -> [ListenAddress] { fatalError("not implemented yet") }

    /// New handshakes use `context`; open connections keep theirs.
    public func replaceTLSContext(_ context: TLSServerContext) { fatalError("not implemented yet") }

    /// Stops accepting, lets running responses finish within `grace`, then closes everything.
    public func shutdown(grace: Duration) async { fatalError("not implemented yet") }

    public var stats: ServerStats { fatalError("not implemented yet") }
}
