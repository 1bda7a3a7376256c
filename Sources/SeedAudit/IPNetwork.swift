import Glibc

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// Parses a literal address; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) becomes IPv4. A zone
    /// (`%eth0`) is ignored.
    public init?(parsing text: String) {
        let s = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? text
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, s, &v6) == 1 else { return nil }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
            bytes = Array(b[12...])
        } else {
            bytes = b
        }
    }

    public var description: String { bytes.map(String.init).joined(separator: ".") }
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a single address).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int
    public let text: String

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPAddress(parsing: String(parts[0])) else { return nil }
        let maxLen = a.bytes.count * 8
        var len = maxLen
        if parts.count == 2 {
            guard let l = Int(parts[1]), l >= 0 else { return nil }
            // An IPv4-mapped prefix is given in IPv6 bits.
            let mapped = String(parts[0]).lowercased().hasPrefix("::ffff:") && a.bytes.count == 4
            len = mapped ? l - 96 : l
            guard len >= 0, len <= maxLen else { return nil }
        }
        address = a
        prefixLength = len
        self.text = text
    }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.bytes.count == address.bytes.count else { return false }
        var bits = prefixLength
        for i in 0..<a.bytes.count where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if a.bytes[i] & mask != address.bytes[i] & mask { return false }
            bits -= 8
        }
        return true
    }

    public var description: String { text }
}
