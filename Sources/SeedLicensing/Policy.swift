public import Foundation

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as `::ffff:a.b.c.d`, so a mapped address is the same).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]
    public var isV4: Bool { bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF }

    public init?(_ text: String) {
        // The common case, a plain dotted quad, parsed in place (same acceptance as `parseV4`).
        if let v4 = IPAddress.plainV4(text.utf8) {
            bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, v4.0, v4.1, v4.2, v4.3]
            return
        }
        var t = Substring(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        if let pct = t.firstIndex(of: "%") { t = t[..<pct] }  // zone id
        if let v4 = IPAddress.parseV4(t) {
            bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + v4
        } else if let v6 = IPAddress.parseV6(t) {
            bytes = v6
        } else {
            return nil
        }
    }

    /// Four groups of 1–3 ASCII digits (each at most 255) separated by dots, nothing else; nil otherwise.
    private static func plainV4(_ u: String.UTF8View) -> (UInt8, UInt8, UInt8, UInt8)? {
        var out: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var part = 0
        var value = 0
        var digits = 0
        func store() -> Bool {
            guard digits > 0, value <= 255 else { return false }
            switch part {
            case 0: out.0 = UInt8(value)
            case 1: out.1 = UInt8(value)
            case 2: out.2 = UInt8(value)
            default: out.3 = UInt8(value)
            }
            return true
        }
        for c in u {
            if c == UInt8(ascii: ".") {
                guard part < 3, store() else { return nil }
                part += 1
                value = 0
                digits = 0
            } else if c >= 0x30 && c <= 0x39 {
                digits += 1
                guard digits <= 3 else { return nil }
                value = value * 10 + Int(c - 0x30)
            } else {
                return nil
            }
        }
        guard part == 3, store() else { return nil }
        return out
    }

    private static func parseV4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCIIDigit), let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    private static func parseV6(_ s: Substring) -> [UInt8]? {
        guard s.contains(":") else { return nil }
        let halves = s.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, g) in items.enumerated() {
                if i == items.count - 1, g.contains(".") {
                    guard let v4 = parseV4(g) else { return nil }
                    out += v4
                    continue
                }
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out += [UInt8(v >> 8), UInt8(v & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    public var description: String {
        if isV4 { return bytes[12...].map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    /// The network of this address: the first `v4Prefix` bits of an IPv4 address, else `v6Prefix`.
    public func network(v4Prefix: Int, v6Prefix: Int) -> IPNetwork {
        IPNetwork(base: self, prefix: isV4 ? v4Prefix : v6Prefix)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A CIDR block (`10.0.0.0/8`, `fd00::/8`); a bare address is a single-host block.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let base: IPAddress
    /// Prefix length as written (0–32 for IPv4, 0–128 for IPv6).
    public let prefix: Int

    public init(base: IPAddress, prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = IPAddress(String(parts[0])) else { return nil }
        let maxBits = addr.isV4 ? 32 : 128
        var p = maxBits
        if parts.count == 2 {
            guard var v = Int(parts[1]) else { return nil }
            // An IPv4-mapped block (`::ffff:10.0.0.0/104`) gives its prefix in IPv6 bits.
            if addr.isV4, parts[0].contains(":") { v -= 96 }
            guard v >= 0, v <= maxBits else { return nil }
            p = v
        }
        self.init(base: addr, prefix: p)
    }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.isV4 == base.isV4 else { return false }
        let bits = base.isV4 ? 96 + prefix : prefix
        for i in 0..<16 {
            let take = min(8, max(0, bits - i * 8))
            if take == 0 { break }
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if a.bytes[i] & mask != base.bytes[i] & mask { return false }
        }
        return true
    }

    /// A canonical key for tables (`10.1.2.0/24`).
    public var key: String {
        var b = base.bytes
        let bits = base.isV4 ? 96 + prefix : prefix
        for i in 0..<16 {
            let keep = min(8, max(0, bits - i * 8))
            b[i] &= UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
            if keep == 0 { b[i] = 0 }
        }
        let masked = IPAddress(bytesUnchecked: b)
        return "\(masked)/\(prefix)"
    }

    public var description: String { "\(base)/\(prefix)" }
}

extension IPAddress {
    fileprivate init(bytesUnchecked: [UInt8]) { self.bytes = bytesUnchecked }
}

/// Shell-style glob over host keys: `*` any run, `?` one character, case-insensitive.
public func globMatches(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.lowercased().utf8)
    let t = Array(text.lowercased().utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
            pi += 1
            ti += 1
        } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
            star = pi
            mark = ti
            pi += 1
        } else if star >= 0 {
            pi = star + 1
            mark += 1
            ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}

/// Whether a rule refuses (`enforce`) or only records what it would have refused (`report-only`).
public enum RuleMode: String, Sendable, Equatable {
    case enforce
    case reportOnly = "report-only"
}

/// The sandbox policy (every rule optional). Rule names in refusals and events are the `…Rule` constants.
public struct PolicyConfiguration: Sendable, Equatable {
    public static let networkRule = "client-network"
    public static let denyRule = "host-deny"
    public static let inventoryRule = "inventory"
    public static let bindingRule = "host-binding"
    public static let firstSeenRule = "first-seen-hold"

    public struct Networks: Sendable, Equatable {
        public var allowed: [IPNetwork]
        public var mode: RuleMode
        public init(allowed: [IPNetwork], mode: RuleMode = .enforce) {
            self.allowed = allowed
            self.mode = mode
        }
    }
    public struct DenyPatterns: Sendable, Equatable {
        public var patterns: [String]
        public var mode: RuleMode
        public init(patterns: [String], mode: RuleMode = .enforce) {
            self.patterns = patterns
            self.mode = mode
        }
    }
    public struct Inventory: Sendable, Equatable {
        /// Normalized host keys.
        public var hosts: Set<String>
        public var mode: RuleMode
        public init(hosts: Set<String>, mode: RuleMode = .enforce) {
            self.hosts = hosts
            self.mode = mode
        }
    }
    public struct Binding: Sendable, Equatable {
        /// Addresses within the same /v4Prefix (IPv4) or /v6Prefix (IPv6) count as related.
        public var v4Prefix: Int
        public var v6Prefix: Int
        public var mode: RuleMode
        public init(v4Prefix: Int = 24, v6Prefix: Int = 64, mode: RuleMode = .enforce) {
            self.v4Prefix = v4Prefix
            self.v6Prefix = v6Prefix
            self.mode = mode
        }
    }
    public struct FirstSeenHold: Sendable, Equatable {
        public var seconds: TimeInterval
        public var mode: RuleMode
        public init(seconds: TimeInterval, mode: RuleMode = .enforce) {
            self.seconds = seconds
            self.mode = mode
        }
    }

    public var networks: Networks?
    public var deny: DenyPatterns?
    public var inventory: Inventory?
    public var binding: Binding?
    public var firstSeenHold: FirstSeenHold?

    public init(
        networks: Networks? = nil, deny: DenyPatterns? = nil, inventory: Inventory? = nil, binding: Binding? = nil,
        firstSeenHold: FirstSeenHold? = nil
    ) {
        self.networks = networks
        self.deny = deny
        self.inventory = inventory
        self.binding = binding
        self.firstSeenHold = firstSeenHold
    }

    /// Parses an inventory file: one name per line, or CSV whose first column is the name. Blank lines,
    /// `#` comments and a CSV header row (first cell `hostname`, `host`, `name`, `computername`) are
    /// skipped; names are normalized, and cells that are not host names come back in `rejected`.
    public static func parseInventory(_ text: String) -> (hosts: Set<String>, rejected: [String]) {
        var hosts: Set<String> = []
        var rejected: [String] = []
        var first = true
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            var cell = String(trimmed.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)[0])
            cell = cell.trimmingCharacters(in: CharacterSet(charactersIn: "\" \t;"))
            defer { first = false }
            if first && trimmed.contains(",")
                && ["hostname", "host", "name", "computername"].contains(cell.lowercased())
            {
                continue
            }
            switch HostName.normalize(cell) {
            case .success(let k): hosts.insert(k)
            case .failure: rejected.append(cell)
            }
        }
        return (hosts, rejected)
    }
}

/// One rule that would refuse a request.
public struct PolicyViolation: Sendable, Equatable {
    public var rule: String
    public var reason: String
    public var mode: RuleMode
}

/// The facts a policy check needs; the desk collects them, `evaluate` decides.
public struct PolicyFacts: Sendable {
    public var hostKey: String
    public var clientAddress: IPAddress?
    /// Address the host's current license was issued to, when it is still within its lifetime.
    public var boundAddress: IPAddress?
    /// When the desk first saw this host name asked for.
    public var firstSeen: Date?
    public var now: Date
    /// True when the request would issue (new or renewal); network/deny/inventory/hold apply only then.
    public var issuing: Bool

    public init(
        hostKey: String, clientAddress: IPAddress?, boundAddress: IPAddress?, firstSeen: Date?, now: Date,
        issuing: Bool
    ) {
        self.hostKey = hostKey
        self.clientAddress = clientAddress
        self.boundAddress = boundAddress
        self.firstSeen = firstSeen
        self.now = now
        self.issuing = issuing
    }
}

extension PolicyConfiguration {
    /// Every rule the request breaks, in a fixed order (enforced and report-only alike).
    public func evaluate(_ f: PolicyFacts) -> [PolicyViolation] {
        var out: [PolicyViolation] = []
        if let b = binding, let bound = f.boundAddress {
            let related: Bool
            if let c = f.clientAddress {
                related = c == bound || bound.network(v4Prefix: b.v4Prefix, v6Prefix: b.v6Prefix).contains(c)
            } else {
                related = false
            }
            if !related {
                out.append(
                    PolicyViolation(
                        rule: Self.bindingRule,
                        reason:
                            "host \(f.hostKey) holds a license issued to \(bound), unrelated to \(f.clientAddress.map(String.init(describing:)) ?? "an unknown address")",
                        mode: b.mode))
            }
        }
        guard f.issuing else { return out }
        if let n = networks {
            if !(f.clientAddress.map { a in n.allowed.contains { $0.contains(a) } } ?? false) {
                out.append(
                    PolicyViolation(
                        rule: Self.networkRule,
                        reason:
                            "client \(f.clientAddress.map(String.init(describing:)) ?? "address unknown") is outside the networks allowed to obtain licenses",
                        mode: n.mode))
            }
        }
        if let d = deny, let p = d.patterns.first(where: { globMatches($0, f.hostKey) }) {
            out.append(
                PolicyViolation(
                    rule: Self.denyRule, reason: "host name \(f.hostKey) matches deny pattern \(p)", mode: d.mode))
        }
        let inInventory = inventory?.hosts.contains(f.hostKey) ?? false
        if let inv = inventory, !inInventory {
            out.append(
                PolicyViolation(
                    rule: Self.inventoryRule, reason: "host \(f.hostKey) is not in the inventory", mode: inv.mode))
        }
        if let h = firstSeenHold, !inInventory {
            let since = f.firstSeen ?? f.now
            let until = since + h.seconds
            if f.now < until {
                let mins = Int((until.timeIntervalSince(f.now) / 60).rounded(.up))
                out.append(
                    PolicyViolation(
                        rule: Self.firstSeenRule,
                        reason: "host \(f.hostKey) was first seen recently; held for \(mins) more minute(s)",
                        mode: h.mode))
            }
        }
        return out
    }
}
