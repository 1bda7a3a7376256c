import Foundation
import SeedHTTPServer
import SeedPosix
import SeedCore

/// The body of a cold-miss answer: upstream's ZIP relayed to the leading seed while it is written to a
/// temp file. The download is driven by the upstream side (`advance`), never by the seed, so a slow or
/// vanished seed cannot stall the import the followers wait for; the seed reads the file behind the
/// writer with pread, so memory stays bounded whatever its speed.
///
/// `pull` may be called on an event loop; `advance`/`complete`/`fail` on any thread.
final class RelayStream: BodyStream, @unchecked Sendable {
    private struct State {
        var written: UInt64 = 0
        var complete = false
        var failure: String?
        var readOffset: UInt64 = 0
        var pending: (maxBytes: Int, deliver: @Sendable (BodyChunk) -> Void)?
        var cancelled = false
    }
    // Every access to the state goes through withLock.
    private let state = Lock(State())
    private let file: SharedFile
    let length: UInt64

    init(file: SharedFile, length: UInt64) {
        self.file = file
        self.length = length
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func pull(maxBytes: Int, _ deliver: @escaping @Sendable (BodyChunk) -> Void) {
        state.withLock { s in
            precondition(s.pending == nil, "one pull at a time")
            s.pending = (maxBytes, deliver)
        }
        serve()
    }

    func cancel() {
        let p = state.withLock { s -> ((BodyChunk) -> Void)? in
            s.cancelled = true
            defer { s.pending = nil }
            return s.pending?.deliver
        }
        p?(.failed("client went away"))
    }

    /// `total` bytes of the body are now in the file.
    func advance(to total: UInt64) {
        state.withLock { $0.written = min(total, length) }
        serve()
    }

    func complete() {
        state.withLock { $0.complete = true }
        serve()
    }

    /// The upstream transfer failed: the seed's connection is cut, never ended cleanly.
    func fail(_ reason: String) {
        state.withLock { if $0.failure == nil { $0.failure = reason } }
        serve()
    }

    private enum Step {
        case none
        case read(offset: UInt64, count: Int, deliver: @Sendable (BodyChunk) -> Void)
        case chunk(BodyChunk, @Sendable (BodyChunk) -> Void)
    }

    private func serve() {
        let step: Step = state.withLock { s in
            guard let p = s.pending else { return .none }
            if let f = s.failure {
                s.pending = nil
                return .chunk(.failed(f), p.deliver)
            }
            if s.readOffset < s.written {
                let n = Int(min(UInt64(p.maxBytes), s.written - s.readOffset))
                s.pending = nil
                let off = s.readOffset
                s.readOffset += UInt64(n)
                return .read(offset: off, count: n, deliver: p.deliver)
            }
            if s.readOffset >= length, s.complete {
                s.pending = nil
                return .chunk(.end, p.deliver)
            }
            return .none
        }
        switch step {
        case .none: return
        case .chunk(let c, let d): d(c)
        case .read(let off, let n, let d):
            var buf = [UInt8](repeating: 0, count: n)
            var got = 0
            do {
                while got < n {
                    let r = try buf.withUnsafeMutableBytes { p throws(SystemError) in
                        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: p[got...]), at: off + UInt64(got))
                    }
                    if r == 0 { break }
                    got += r
                }
            } catch {
                d(.failed("reading the relay file: \(error)"))
                return
            }
            guard got == n else {
                d(.failed("relay file shorter than written"))
                return
            }
            d(.data(buf))
        }
    }
}

/// A file being written once, front to back (the temp copy of an upstream download).
final class TempFileWriter {
    let path: String
    private let file: WritableFile
    var written: UInt64 { file.written }

    init(creatingIn directory: String, prefix: String) throws(SystemError) {
        let path = (directory.hasSuffix("/") ? directory : directory + "/") + prefix + "-" + UUID().uuidString
        self.file = try WritableFile(creatingExclusively: path, permissions: 0o600)
        self.path = path
    }

    func write(_ bytes: [UInt8]) throws(SystemError) { try file.write(bytes) }

    /// fsync and close; the file stays for the importer.
    func finish() throws(SystemError) { try file.syncAndClose() }

    func discard() {
        file.close()
        try? removeFile(atPath: path)
    }
}
