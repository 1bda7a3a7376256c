// Public surface of the HTTPS server that SeedServer codes against.
import SeedCore
public import SeedHTTP
import SeedTLS

/// An address to listen on: `0.0.0.0:443`, `[::]:8443`, `127.0.0.1:0` (port 0: any free port).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`; nil when malformed.
    public init?(parsing s: String) {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()), !host.isEmpty else { return nil }
            self.init(host: host, port: p)
        } else {
            guard let colon = s.lastIndex(of: ":"), let p = UInt16(s[s.index(after: colon)...]) else { return nil }
            let host = String(s[..<colon])
            guard !host.isEmpty, !host.contains(":") else { return nil }
            self.init(host: host, port: p)
        }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Connection timeouts. Each cuts off one kind of slow or stuck client.
public struct ServerTimeouts: Sendable, Equatable {
    public var handshake: Duration = .seconds(10)
    /// From the first byte of a request to the end of its head (slowloris).
    public var requestHead: Duration = .seconds(15)
    /// Between requests on a keep-alive connection.
    public var idle: Duration = .seconds(60)
    /// A response write that makes no progress for this long closes the connection.
    public var writeStall: Duration = .seconds(60)
    /// Receiving a request body.
    public var requestBody: Duration = .seconds(30)
    public init() {}
}

/// Everything the HTTPS server needs, as plain values.
public struct HTTPServerConfiguration: Sendable {
    public var listeners: [ListenAddress]
    /// Number of epoll loops; 0 means one per core.
    public var eventLoops: Int = 0
    public var maxConnections: Int = 20_000
    public var limits: HTTPLimits = HTTPLimits()
    public var timeouts: ServerTimeouts = ServerTimeouts()
    /// Per-connection plaintext buffer for streaming bodies.
    public var sendBufferBytes: Int = 256 * 1024

    public init(listeners: [ListenAddress]) { self.listeners = listeners }
}

/// One access-log line. `path` already has every `token=` value redacted.
public struct AccessLogEntry: Sendable {
    public var time: Double  // seconds since the Unix epoch
    public var clientAddress: String
    public var clientPort: Int
    public var method: String
    public var path: String
    public var status: Int
    public var bytes: UInt64
    public var durationMilliseconds: Double
    public var tlsVersion: String
    public var tlsCipher: String

    public init(
        time: Double, clientAddress: String, clientPort: Int, method: String, path: String, status: Int,
        bytes: UInt64, durationMilliseconds: Double, tlsVersion: String, tlsCipher: String
    ) {
        self.time = time
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.method = method
        self.path = path
        self.status = status
        self.bytes = bytes
        self.durationMilliseconds = durationMilliseconds
        self.tlsVersion = tlsVersion
        self.tlsCipher = tlsCipher
    }
}

/// Receives access-log entries from any loop thread; must not block.
public protocol AccessLogSink: Sendable {
    func record(_ entry: AccessLogEntry)
    /// Returns once every entry recorded so far is written (a sink that writes in batches drains at once).
    func flush()
}

extension AccessLogSink {
    public func flush() {}
}

/// Counters the server keeps for /metrics.
public struct ServerStats: Sendable, Equatable {
    public var openConnections: Int = 0
    public var acceptedConnections: UInt64 = 0
    public var refusedConnections: UInt64 = 0
    public var handshakesCompleted: UInt64 = 0
    public var handshakesFailed: UInt64 = 0
    public var requests: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public init() {}
}
