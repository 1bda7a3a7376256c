import Foundation
import SeedCore
public import SeedHTTPServer

/// `seed-mirror serve [--config PATH] [--listen ADDR:PORT ...]`
func runServe(_ args: inout Arguments) async throws -> Int32 {
    if args.flag("--help") || args.flag("-h") {
        say(ServeCommand.usage)
        return 0
    }
    let configPath = try args.option("--config") ?? "config/seed-mirror.json"
    var listen: [ListenAddress] = []
    for text in try args.options("--listen") {
        guard let a = ListenAddress(parsing: text) else {
            throw ConfigError("--listen \(text): not HOST:PORT or [IPv6]:PORT")
        }
        listen.append(a)
    }
    try args.finish()
    return try await ServeCommand.run(configPath: configPath, listen: listen.isEmpty ? nil : listen)
}

public enum ServeCommand {
    public static let usage = """
        usage: seed-mirror serve [--config PATH] [--listen ADDR:PORT ...]

          --config PATH       configuration file (default config/seed-mirror.json)
          --listen ADDR:PORT  listen here instead of the configured addresses; repeat for several

          SIGTERM or SIGINT: stop accepting, let running downloads finish (server.shutdownGraceSeconds), exit 0.
          SIGHUP: reload the TLS certificates and keys named in the configuration.
        """

    /// Runs until SIGTERM/SIGINT; returns the exit status.
    public static func run(configPath: String, listen: [ListenAddress]?) async throws -> Int32 {
        let config = try MirrorConfig.load(path: configPath)
        let logger = Logger(level: config.log.level, sink: StderrLogSink())
        for w in config.warnings { logger.warning(w) }
        let accessLog: (any AccessLogSink)?
        switch config.log.accessLog {
        case .off: accessLog = nil
        case .stderr: accessLog = JSONLinesAccessLog()
        case .file(let p): accessLog = try JSONLinesAccessLog(appendingTo: p)
        }
        // Watch before starting, so an early SIGTERM is handled, not fatal.
        let watcher = SignalWatcher()
        defer { watcher.cancel() }
        let app = try MirrorApp(config: config, listen: listen, logger: logger, accessLog: accessLog)
        let addresses = try app.start()
        for a in addresses { say("seed-mirror listening on https://\(a)") }
        // Standard output may be a pipe (a supervisor, a test): the addresses must not sit in a buffer.
        fflush(nil)
        for await event in watcher.events {
            switch event {
            case .reload:
                do {
                    try app.reloadTLS()
                } catch {
                    logger.error("reloading TLS certificates failed; the old ones stay in use", [("error", "\(error)")])
                }
            case .terminate(let signal):
                logger.notice(
                    "stopping", [("signal", String(signal)), ("grace.seconds", "\(config.server.shutdownGrace)")])
                await app.shutdown(grace: config.server.shutdownGrace)
                logger.notice("stopped", [])
                return 0
            }
        }
        return 0
    }
}
