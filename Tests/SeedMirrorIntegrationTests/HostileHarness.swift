import Foundation
import Glibc
import SeedCore
import SeedHTTPServer
import SeedPosix
import SeedTLS
import SeedTestSupport
import Testing

/// A transport server for the hostile-input tests: the transport tests' handler and certificates, with a
/// debug-level collecting logger so each case can check the server said what happened.
struct HostileServer: Sendable {
    let server: HTTPSServer
    let port: UInt16
    let log: CollectingLogSink
    let accessLog: CollectingAccessLog

    func client(timeout: Double = 5) throws -> TLSTestClient {
        try TLSTestClient(host: "127.0.0.1", port: port, context: TransportFixtures.clientContext, receiveTimeout: timeout)
    }
}

func withHostileServer(
    files: [String: String] = [:], configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    _ body: (HostileServer) async throws -> Void
) async throws {
    var configuration = HTTPServerConfiguration(listeners: [ListenAddress(host: "127.0.0.1", port: 0)])
    configuration.eventLoops = 2
    configure(&configuration)
    let tls = try TLSServerContext(configuration: TransportFixtures.certificates.serverConfiguration)
    var shared: [String: SharedFile] = [:]
    for (route, path) in files { shared[route] = try SharedFile(openingForReading: path) }
    let log = CollectingLogSink()
    let access = CollectingAccessLog()
    let server = HTTPSServer(
        configuration: configuration, tls: tls, handler: TransportTestHandler(files: shared),
        logger: Logger(level: .debug, sink: log), accessLog: access)
    let port = try server.start()[0].port
    let running = HostileServer(server: server, port: port, log: log, accessLog: access)
    do {
        try await body(running)
    } catch {
        await server.shutdown(grace: .milliseconds(100))
        throw error
    }
    await server.shutdown(grace: .milliseconds(300))
}

/// Runs `body` while a well-behaved client keeps fetching `/healthz`; the good client must see no failure
/// and at least `minimumAnswers` answers.
func whileServingGoodClient<T: Sendable>(
    port: UInt16, context: TLSClientContext = TransportFixtures.clientContext, path: String = "/healthz",
    minimumAnswers: Int = 3, _ body: () async throws -> T,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> T {
    let good = WellBehavedClient(port: port, context: context, path: path)
    good.start()
    let value: T
    do { value = try await body() } catch {
        _ = try? await onThread { good.stop() }
        throw error
    }
    // The good client must also be answered after the attack ended (at least `minimumAnswers` in all).
    let before = good.answered
    _ = await eventually(10) { good.answered >= max(minimumAnswers, before + 1) }
    let (ok, failures) = try await onThread { good.stop() }
    #expect(failures.isEmpty, "the well-behaved client failed: \(failures.prefix(5))", sourceLocation: sourceLocation)
    #expect(ok >= minimumAnswers, "the well-behaved client got only \(ok) answers", sourceLocation: sourceLocation)
    return value
}

/// What a raw TLS client saw after sending hostile bytes: every response head in order and whether the
/// server closed the connection afterwards.
struct HostileOutcome: Sendable {
    var responses: [TestResponse]
    var closed: Bool
    var error: String?
}

/// Sends `bytes` over a fresh TLS connection, reads every response the server gives and whether it closes.
func sendHostile(_ s: HostileServer, _ bytes: [UInt8]) throws -> HostileOutcome {
    let c = try s.client(timeout: 5)
    defer { c.close() }
    var outcome = HostileOutcome(responses: [], closed: false)
    do { try c.send(bytes) } catch { outcome.error = "send: \(error)" }
    while true {
        do {
            outcome.responses.append(try c.readResponse())
        } catch {
            // "connection closed before a response head" or a reset: the server closed.
            let text = "\(error)"
            outcome.closed = c.peerClosed || text.contains("closed") || text.contains("reset")
            if !outcome.closed { outcome.error = text }
            return outcome
        }
    }
}
