import CSeedShim
import Glibc
public import SeedPosix

/// Socket calls for the loops: listening sockets, accept, and non-blocking read/write.
public enum Socket {
    /// A non-blocking listening socket on a numeric IPv4/IPv6 address. `reusePort` lets several loops
    /// each bind their own socket to the same port so the kernel spreads connections.
    public static func listen(host: String, port: UInt16, reusePort: Bool, backlog: Int32 = 1024)
        throws(SystemError) -> (fd: CInt, port: UInt16)
    {
        var bound: UInt16 = 0
        let fd = seed_listen_tcp(host, port, backlog, reusePort ? 1 : 0, &bound)
        guard fd >= 0 else {
            throw SystemError(call: "listen", errno: -fd, path: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        }
        return (fd, bound)
    }

    public struct Accepted: Sendable {
        public var fd: CInt
        public var peerAddress: String
        public var peerPort: Int
        public var localPort: Int
    }

    public enum AcceptResult: Sendable {
        case accepted(Accepted)
        case wouldBlock
        /// The peer went away before accept, or a transient condition; try the next one.
        case transient(SystemError)
        /// Out of descriptors or memory: pause accepting for a moment.
        case exhausted(SystemError)
    }

    /// Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY).
    public static func accept(_ listenFD: CInt) -> AcceptResult {
        var address = [CChar](repeating: 0, count: 64)
        var peerPort: UInt16 = 0
        var localPort: UInt16 = 0
        let fd = seed_accept(listenFD, &address, address.count, &peerPort, &localPort)
        if fd >= 0 {
            let text = String(decoding: address.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .accepted(Accepted(fd: fd, peerAddress: text, peerPort: Int(peerPort), localPort: Int(localPort)))
        }
        let e = -fd
        switch e {
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .exhausted(SystemError(call: "accept", errno: e))
        default: return .transient(SystemError(call: "accept", errno: e))
        }
    }

    public enum IOResult: Equatable, Sendable {
        case bytes(Int)
        case wouldBlock
        case endOfFile
        case failed(Int32)
    }

    /// One non-blocking read.
    public static func read(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .endOfFile }
            let e = seed_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    /// One non-blocking write (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
    public static func write(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> IOResult {
        while true {
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .bytes(n) }
            let e = seed_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    /// A blocking TCP connection to a numeric address (tests and tools).
    public static func connect(host: String, port: UInt16) throws(SystemError) -> CInt {
        let fd = seed_connect_tcp(host, port)
        guard fd >= 0 else { throw SystemError(call: "connect", errno: -fd, path: "\(host):\(port)") }
        return fd
    }

    public static func close(_ fd: CInt) { _ = Glibc.close(fd) }
}
