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
    public static func normalize(_ raw: String) -> Result<String, HostNameError> {
        var bytes = Array(raw.utf8)
        // Trim ASCII white space only; anything else odd is refused below, with its reason.
        while let f = bytes.first, f == 0x20 || f == 0x09 || f == 0x0A || f == 0x0D { bytes.removeFirst() }
        while let l = bytes.last, l == 0x20 || l == 0x09 || l == 0x0A || l == 0x0D { bytes.removeLast() }
        if bytes.isEmpty { return .failure(HostNameError("host name is empty")) }
        if bytes.count > maxRawLength {
            return .failure(HostNameError("host name is \(bytes.count) bytes long, more than \(maxRawLength)"))
        }
        for b in bytes {
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
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        var allNumeric = true
        for label in labels {
            if label.isEmpty { return .failure(HostNameError("host name has an empty label ('..' or a leading dot)")) }
            if label.count > 63 {
                return .failure(HostNameError("host name label is \(label.count) characters long, more than 63"))
            }
            for b in label {
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
            if label.first == 0x2D { return .failure(HostNameError("host name label starts with '-'")) }
        }
        if allNumeric { return .failure(HostNameError("host name is a number or an address, not a host name")) }
        let first = labels[0].map { b in (b >= 0x41 && b <= 0x5A) ? b + 0x20 : b }
        return .success(String(decoding: first, as: UTF8.self))
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
