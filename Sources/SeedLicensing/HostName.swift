/// Why a host name was refused (answered 400). `reason` is one sentence naming the cause.
public struct HostNameError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Host-name keys (PROTOCOL.md §3a): one host maps to one key, the lower-case first label.
public enum HostName {
    /// Longest raw name looked at; a DNS name is at most 253 characters.
    public static let maxRawLength = 253
    /// Length of a NetBIOS computer name (`%COMPUTERNAME%` is cut to this).
    public static let netBIOSLength = 15

    /// Trims, validates (RFC 1123 labels) and returns the key: lower case, domain part dropped.
    /// One pass over the name's bytes (the checks in the order they always ran: whole-name limits, then
    /// characters, then label by label), no intermediate arrays.
    public static func normalize(_ raw: String) -> Result<String, HostNameError> {
        var raw = raw
        return raw.withUTF8 { normalize(bytes: $0) }
    }

    private static func normalize(bytes all: UnsafeBufferPointer<UInt8>) -> Result<String, HostNameError> {
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        // Trim ASCII white space only; anything else odd is refused below, with its reason.
        var lo = 0
        var hi = all.count
        while lo < hi, blank(all[lo]) { lo += 1 }
        while hi > lo, blank(all[hi - 1]) { hi -= 1 }
        if lo == hi { return .failure(HostNameError("host name is empty")) }
        if hi - lo > maxRawLength {
            return .failure(HostNameError("host name is \(hi - lo) bytes long, more than \(maxRawLength)"))
        }
        for i in lo..<hi {
            let b = all[i]
            if b >= 0x80 {
                return .failure(HostNameError("host name contains a non-ASCII character (look-alikes are refused)"))
            }
            if b < 0x20 || b == 0x7F { return .failure(HostNameError("host name contains a control character")) }
            switch b {
            case UInt8(ascii: "%"), UInt8(ascii: "/"), UInt8(ascii: "\\"):
                return .failure(
                    HostNameError("host name contains the forbidden character '\(Character(Unicode.Scalar(b)))'"))
            default: break
            }
        }
        // A trailing dot (absolute DNS name) is allowed; empty labels elsewhere are not.
        let end = all[hi - 1] == UInt8(ascii: ".") ? hi - 1 : hi
        var allNumeric = true
        var firstNumeric = false
        var start = lo
        var firstEnd = -1
        while true {
            var e = start
            while e < end && all[e] != UInt8(ascii: ".") { e += 1 }
            let count = e - start
            if count == 0 { return .failure(HostNameError("host name has an empty label ('..' or a leading dot)")) }
            if count > 63 {
                return .failure(HostNameError("host name label is \(count) characters long, more than 63"))
            }
            for i in start..<e {
                let b = all[i]
                let ok = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2D
                if !ok {
                    return .failure(
                        HostNameError(
                            "host name contains '\(Character(Unicode.Scalar(b)))'; only letters, digits and '-' are allowed"
                        ))
                }
                if !(b >= 0x30 && b <= 0x39) { allNumeric = false }
            }
            // A trailing '-' is allowed: the NetBIOS 15-character cut of `finance-laptop-07` ends in one.
            if all[start] == 0x2D { return .failure(HostNameError("host name label starts with '-'")) }
            if firstEnd < 0 {
                firstEnd = e
                firstNumeric = allNumeric
            }
            if e >= end { break }
            start = e + 1
        }
        if allNumeric { return .failure(HostNameError("host name is a number or an address, not a host name")) }
        // The key is the first label: `123.corp` would key a host `123`, which no Windows computer can be named.
        if firstNumeric {
            return .failure(HostNameError("host name's first label is a number; a computer name cannot be all digits"))
        }
        let first = UnsafeBufferPointer(rebasing: all[lo..<firstEnd])
        return .success(
            String(unsafeUninitializedCapacity: first.count) { out in
                for (i, b) in first.enumerated() { out[i] = (b >= 0x41 && b <= 0x5A) ? b + 0x20 : b }
                return first.count
            })
    }
}

/// Index of known keys longer than 15 characters by their NetBIOS cut, so `%COMPUTERNAME%` of a long
/// name maps to the same host. A cut shared by two known names is ambiguous and maps to nothing.
public struct NetBIOSAliasIndex: Sendable {
    private var byCut: [String: String?] = [:]
    public init() {}

    /// Records a known key (no-op for keys of 15 characters or fewer).
    public mutating func add(_ key: String) {
        guard key.utf8.count > HostName.netBIOSLength else { return }
        let cut = String(key.prefix(HostName.netBIOSLength))
        if let existing = byCut[cut] {
            if existing != key { byCut[cut] = .some(nil) }
        } else {
            byCut[cut] = .some(key)
        }
    }

    /// The longer known key a 15-character key is the cut of, if exactly one.
    public func fullName(forCut key: String) -> String? {
        guard key.utf8.count == HostName.netBIOSLength, let entry = byCut[key] else { return nil }
        return entry
    }
}
