internal import CSeedZlib

/// A zlib failure: which step, and zlib's code and message.
public struct CompressionError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Operation: Sendable, Equatable { case initialize, deflate, inflate }
    public enum Kind: Sendable, Equatable {
        /// zlib returned an error code.
        case zlib(code: Int32, message: String)
        /// Inflating would produce more than the allowed number of bytes.
        case outputLimitExceeded(limit: UInt64)
        /// The deflate stream ended before its final block, or continued after it.
        case truncatedStream
        case trailingData
    }
    public var operation: Operation
    public var kind: Kind

    public init(operation: Operation, kind: Kind) {
        self.operation = operation
        self.kind = kind
    }

    init(operation: Operation, zlibCode: Int32, message: UnsafePointer<CChar>?) {
        self.operation = operation
        let text = message.map { String(cString: $0) } ?? "code \(zlibCode)"
        self.kind = .zlib(code: zlibCode, message: text)
    }

    public var description: String {
        switch kind {
        case .zlib(let code, let message): "\(operation) failed in zlib (\(code)): \(message)"
        case .outputLimitExceeded(let limit): "\(operation) stopped: output would exceed \(limit) bytes"
        case .truncatedStream: "\(operation) failed: the deflate stream is truncated"
        case .trailingData: "\(operation) failed: bytes follow the end of the deflate stream"
        }
    }
}

/// A streaming raw-deflate compressor (no zlib header or trailer: what a ZIP member holds).
/// Owns its zlib stream; not thread-safe, use from one thread at a time.
public final class RawDeflater {
    // zlib stores the stream's address inside its state, so the stream must not move.
    private let stream: UnsafeMutablePointer<z_stream>
    private var finished = false

    /// `level` is zlib's 0 (store) ... 9 (best); -1 is zlib's default (6).
    public init(level: Int32 = 6) throws(CompressionError) {
        let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        s.initialize(to: z_stream())
        let rc = seed_deflate_init_raw(s, level)
        guard rc == Z_OK else {
            let e = CompressionError(operation: .initialize, zlibCode: rc, message: s.pointee.msg)
            s.deinitialize(count: 1)
            s.deallocate()
            throw e
        }
        stream = s
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input` and appends the produced bytes to `output`; `finish` ends the stream.
    public func compress(_ input: UnsafeRawBufferPointer, finish: Bool, into output: inout [UInt8])
        throws(CompressionError)
    {
        precondition(!finished, "deflater used after finish")
        let flush = finish ? Z_FINISH : Z_NO_FLUSH
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        stream.pointee.next_in = UnsafeMutablePointer(
            mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        while true {
            let (rc, produced) = chunk.withUnsafeMutableBufferPointer { buf in
                stream.pointee.next_out = buf.baseAddress
                stream.pointee.avail_out = uInt(buf.count)
                let rc = deflate(stream, flush)
                return (rc, buf.count - Int(stream.pointee.avail_out))
            }
            if rc == Z_STREAM_ERROR {
                throw CompressionError(operation: .deflate, zlibCode: rc, message: stream.pointee.msg)
            }
            output.append(contentsOf: chunk[0..<produced])
            if finish {
                if rc == Z_STREAM_END { break }
            } else if stream.pointee.avail_in == 0 && produced < chunk.count {
                break
            }
        }
        stream.pointee.next_in = nil
        if finish { finished = true }
    }

    public func compress(_ input: [UInt8], finish: Bool, into output: inout [UInt8]) throws(CompressionError) {
        let r: Result<Void, CompressionError> = input.withUnsafeBytes { b in
            Result { () throws(CompressionError) in try compress(b, finish: finish, into: &output) }
        }
        try r.get()
    }

    /// Compresses a whole buffer in one call.
    public static func compress(_ input: [UInt8], level: Int32 = 6) throws(CompressionError) -> [UInt8] {
        let d = try RawDeflater(level: level)
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 2 + 64)
        try d.compress(input, finish: true, into: &out)
        return out
    }
}

/// A streaming raw-inflate decompressor with a hard cap on the bytes it will ever produce,
/// so a lying size or a zip bomb stops at the cap instead of expanding.
/// Owns its zlib stream; not thread-safe.
public final class RawInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    public let outputLimit: UInt64
    /// Bytes produced so far.
    public private(set) var totalOut: UInt64 = 0
    /// True once the final deflate block has been decoded.
    public private(set) var isFinished = false

    public init(outputLimit: UInt64 = .max) throws(CompressionError) {
        let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        s.initialize(to: z_stream())
        let rc = seed_inflate_init_raw(s)
        guard rc == Z_OK else {
            let e = CompressionError(operation: .initialize, zlibCode: rc, message: s.pointee.msg)
            s.deinitialize(count: 1)
            s.deallocate()
            throw e
        }
        stream = s
        self.outputLimit = outputLimit
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Inflates `input`, handing each produced chunk to `sink`. Throws when the output would pass
    /// `outputLimit`, on corrupt data, or on bytes after the end of the stream.
    public func inflate(
        _ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws(CompressionError) -> Void
    ) throws(CompressionError) {
        if input.isEmpty { return }
        if isFinished { throw CompressionError(operation: .inflate, kind: .trailingData) }
        stream.pointee.next_in = UnsafeMutablePointer(
            mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        defer { stream.pointee.next_in = nil }
        let chunkSize = 256 * 1024
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buf.deallocate() }
        while true {
            // Never let zlib write past the cap: offer at most (remaining + 1) bytes of room, so
            // producing one byte too many is detected without producing more.
            let remaining = outputLimit &- totalOut
            let room = remaining >= UInt64(chunkSize) ? chunkSize : Int(remaining) + 1
            stream.pointee.next_out = buf.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(room)
            let rc = CSeedZlib.inflate(stream, Z_NO_FLUSH)
            let produced = room - Int(stream.pointee.avail_out)
            if UInt64(produced) > remaining {
                throw CompressionError(operation: .inflate, kind: .outputLimitExceeded(limit: outputLimit))
            }
            totalOut += UInt64(produced)
            if produced > 0 { try sink(UnsafeRawBufferPointer(rebasing: buf[0..<produced])) }
            switch rc {
            case Z_STREAM_END:
                isFinished = true
                if stream.pointee.avail_in != 0 { throw CompressionError(operation: .inflate, kind: .trailingData) }
                return
            case Z_OK:
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { return }
            case Z_BUF_ERROR:
                // No progress possible: input used up and no pending output.
                if stream.pointee.avail_in == 0 { return }
                throw CompressionError(operation: .inflate, zlibCode: rc, message: stream.pointee.msg)
            default:
                throw CompressionError(operation: .inflate, zlibCode: rc, message: stream.pointee.msg)
            }
        }
    }

    /// Call after the last input: throws if the stream did not reach its final block.
    public func finish() throws(CompressionError) {
        if !isFinished { throw CompressionError(operation: .inflate, kind: .truncatedStream) }
    }

    /// Inflates a whole buffer, refusing output beyond `limit`.
    public static func inflate(_ input: [UInt8], limit: UInt64) throws(CompressionError) -> [UInt8] {
        let i = try RawInflater(outputLimit: limit)
        var out: [UInt8] = []
        let r: Result<Void, CompressionError> = input.withUnsafeBytes { b in
            Result { () throws(CompressionError) in
                try i.inflate(b) { (chunk) throws(CompressionError) in out.append(contentsOf: chunk) }
            }
        }
        try r.get()
        try i.finish()
        return out
    }
}

/// CRC-32 as ZIP uses it (zlib's `crc32`), updatable and combinable.
public struct CRC32: Sendable, Equatable {
    public private(set) var value: UInt32 = 0
    public private(set) var length: UInt64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var p = base.assumingMemoryBound(to: Bytef.self)
        var left = bytes.count
        // zlib takes a 32-bit length; feed large buffers in pieces.
        while left > 0 {
            let n = min(left, 1 << 30)
            value = UInt32(crc32(uLong(value), p, uInt(n)))
            p += n
            left -= n
        }
        length += UInt64(bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The CRC of this data followed by `other`'s data.
    public func combined(with other: CRC32) -> CRC32 {
        var r = CRC32()
        r.value = UInt32(crc32_combine(uLong(value), uLong(other.value), off_t(other.length)))
        r.length = length + other.length
        return r
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }
}
