/// Severity of a log line; lines below the logger's level are dropped before formatting.
public enum LogLevel: Int, Sendable, Comparable, CustomStringConvertible {
    case debug = 0, info, notice, warning, error

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        }
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "notice": self = .notice
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }
}

/// One log line: a fixed message plus metadata under dotted lower-case keys.
public struct LogRecord: Sendable {
    public var level: LogLevel
    public var message: String
    public var metadata: [(String, String)]

    public init(level: LogLevel, message: String, metadata: [(String, String)]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// Where log records go. Implementations must be safe to call from any thread.
public protocol LogSink: Sendable {
    func write(_ record: LogRecord)
}

/// A small logger value: a level and a sink. Targets take one as a parameter and never make their own.
public struct Logger: Sendable {
    public var level: LogLevel
    public let sink: any LogSink

    public init(level: LogLevel = .info, sink: any LogSink) {
        self.level = level
        self.sink = sink
    }

    /// A logger that drops everything (for tools and tests that do not care).
    public static let discard = Logger(level: .error, sink: DiscardSink())

    @inlinable
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, _ metadata: [(String, String)] = []) {
        guard level >= self.level else { return }
        sink.write(LogRecord(level: level, message: message(), metadata: metadata))
    }

    @inlinable public func debug(_ m: @autoclosure () -> String, _ md: [(String, String)] = []) { log(.debug, m(), md) }
    @inlinable public func info(_ m: @autoclosure () -> String, _ md: [(String, String)] = []) { log(.info, m(), md) }
    @inlinable public func notice(_ m: @autoclosure () -> String, _ md: [(String, String)] = []) { log(.notice, m(), md) }
    @inlinable public func warning(_ m: @autoclosure () -> String, _ md: [(String, String)] = []) {
        log(.warning, m(), md)
    }
    @inlinable public func error(_ m: @autoclosure () -> String, _ md: [(String, String)] = []) { log(.error, m(), md) }
}

public struct DiscardSink: LogSink {
    public init() {}
    public func write(_ record: LogRecord) {}
}
