public import SeedHTTP
public import SeedPosix

/// Facts about the connection a request arrived on, for handlers, policy and the access log.
public struct RequestContext: Sendable {
    public var clientAddress: String
    public var clientPort: Int
    public var localPort: Int
    public var tlsVersion: String
    public var tlsCipher: String
    /// Monotonic per-process request number, for correlating logs.
    public var requestID: UInt64

    public init(
        clientAddress: String, clientPort: Int, localPort: Int, tlsVersion: String, tlsCipher: String,
        requestID: UInt64
    ) {
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.localPort = localPort
        self.tlsVersion = tlsVersion
        self.tlsCipher = tlsCipher
        self.requestID = requestID
    }
}

/// One chunk pulled from a streaming body.
public enum BodyChunk: Sendable {
    case data([UInt8])
    case end
    /// The producer failed; the connection is closed without completing the body.
    case failed(String)
}

/// A body produced while it is being sent (a cold miss relayed from upstream).
/// `pull` may be called from an event loop; `deliver` may be called on any thread, exactly once per pull.
public protocol BodyStream: AnyObject, Sendable {
    func pull(maxBytes: Int, _ deliver: @escaping @Sendable (BodyChunk) -> Void)
    /// The client went away; release upstream resources. Safe to call more than once.
    func cancel()
}

/// A piece of a response body. Bodies are plans of segments streamed with a small buffer.
public enum BodySegment: Sendable {
    case bytes([UInt8])
    /// `length` bytes of `file` starting at `offset`, read with pread at send time.
    case file(SharedFile, offset: UInt64, length: UInt64)
    case stream(any BodyStream, length: UInt64)

    public var length: UInt64 {
        switch self {
        case .bytes(let b): UInt64(b.count)
        case .file(_, _, let n): n
        case .stream(_, let n): n
        }
    }
}

/// A response body: an ordered plan of segments whose total length is known before the first byte.
public struct ResponseBody: Sendable {
    public var segments: [BodySegment]

    public init(_ segments: [BodySegment]) { self.segments = segments }
    public static let empty = ResponseBody([])
    public static func bytes(_ b: [UInt8]) -> ResponseBody { ResponseBody(b.isEmpty ? [] : [.bytes(b)]) }
    public static func text(_ s: String) -> ResponseBody { .bytes(Array(s.utf8)) }

    public var length: UInt64 { segments.reduce(0) { $0 + $1.length } }
    /// True when no segment is a stream, so any byte range can be served from the plan.
    public var isSliceable: Bool {
        segments.allSatisfy { if case .stream = $0 { false } else { true } }
    }
}

/// What a handler answers. `Content-Length` is set by the server from the body; handlers set the rest.
public struct Response: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: ResponseBody
    /// When true (and the body is sliceable) the server honours `Range`/`If-Range` against the `ETag` header.
    public var acceptsRanges: Bool
    /// Forces `Connection: close` after this response.
    public var closeConnection: Bool

    public init(
        status: Int, headers: HTTPHeaders = HTTPHeaders(), body: ResponseBody = .empty, acceptsRanges: Bool = false,
        closeConnection: Bool = false
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.acceptsRanges = acceptsRanges
        self.closeConnection = closeConnection
    }

    /// A short plain-text answer naming the cause; used for every error.
    public static func text(_ status: Int, _ message: String, headers: HTTPHeaders = HTTPHeaders()) -> Response {
        var h = headers
        h.add("Content-Type", "text/plain; charset=utf-8")
        return Response(status: status, headers: h, body: .text(message + "\n"))
    }
}

/// How a handler answers: at once on the event loop (must not block), or later from async work off the loop.
public enum HandlerResult: Sendable {
    case response(Response)
    case deferred(@Sendable () async -> Response)
}

/// The application behind the server. `handle` runs on an event loop thread and must not block;
/// anything slow (disk sync, SQLite writes, upstream calls) goes in `.deferred`.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, context: RequestContext) -> HandlerResult
}
