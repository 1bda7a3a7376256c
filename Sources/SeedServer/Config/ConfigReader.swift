public import Foundation

/// A configuration problem, reported as one line naming the key or file.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A JSON object being decoded by hand: every key read is marked, and `finish()` rejects the rest,
/// so a typo in the configuration is an error naming the key, never a silently ignored setting.
public final class ConfigObject {
    public let path: String
    private let dict: [String: Any]
    private var seen: Set<String> = []

    public init(_ dict: [String: Any], path: String) {
        self.dict = dict
        self.path = path
    }

    /// Parses JSON text whose top level must be an object.
    public static func parse(_ data: Data, source: String) throws(ConfigError) -> ConfigObject {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw ConfigError("\(source): not valid JSON: \((error as NSError).localizedDescription)")
        }
        guard let d = any as? [String: Any] else { throw ConfigError("\(source): top level must be a JSON object") }
        return ConfigObject(d, path: "")
    }

    private func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func has(_ key: String) -> Bool { dict[key] != nil && !(dict[key] is NSNull) }

    private func raw(_ key: String) -> Any? {
        seen.insert(key)
        guard let v = dict[key], !(v is NSNull) else { return nil }
        return v
    }

    public func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = raw(key) else { return nil }
        guard let s = v as? String else { throw ConfigError("config key \(keyPath(key)): expected a string") }
        return s
    }

    public func string(_ key: String, default d: String) throws(ConfigError) -> String { try string(key) ?? d }

    public func bool(_ key: String, default d: Bool) throws(ConfigError) -> Bool {
        guard let v = raw(key) else { return d }
        // JSONSerialization yields NSNumber for both booleans and numbers; accept only real booleans.
        guard let n = v as? NSNumber, isJSONBoolean(n) else {
            throw ConfigError("config key \(keyPath(key)): expected true or false")
        }
        return n.boolValue
    }

    public func int(_ key: String, default d: Int, min: Int = Int.min, max: Int = Int.max) throws(ConfigError) -> Int {
        guard let v = raw(key) else { return d }
        guard let n = v as? NSNumber, !isJSONBoolean(n), let i = Int(exactly: n.doubleValue)
        else { throw ConfigError("config key \(keyPath(key)): expected an integer") }
        guard i >= min && i <= max else {
            throw ConfigError("config key \(keyPath(key)): \(i) is out of range \(min)...\(max)")
        }
        return i
    }

    public func double(_ key: String, default d: Double, min: Double = -.infinity) throws(ConfigError) -> Double {
        guard let v = raw(key) else { return d }
        guard let n = v as? NSNumber, !isJSONBoolean(n) else {
            throw ConfigError("config key \(keyPath(key)): expected a number")
        }
        guard n.doubleValue >= min else { throw ConfigError("config key \(keyPath(key)): must be at least \(min)") }
        return n.doubleValue
    }

    public func stringArray(_ key: String) throws(ConfigError) -> [String]? {
        guard let v = raw(key) else { return nil }
        guard let a = v as? [Any] else { throw ConfigError("config key \(keyPath(key)): expected an array of strings") }
        var out: [String] = []
        for (i, e) in a.enumerated() {
            guard let s = e as? String else {
                throw ConfigError("config key \(keyPath(key))[\(i)]: expected a string")
            }
            out.append(s)
        }
        return out
    }

    public func object(_ key: String) throws(ConfigError) -> ConfigObject? {
        guard let v = raw(key) else { return nil }
        guard let d = v as? [String: Any] else { throw ConfigError("config key \(keyPath(key)): expected an object") }
        return ConfigObject(d, path: keyPath(key))
    }

    public func objectArray(_ key: String) throws(ConfigError) -> [ConfigObject]? {
        guard let v = raw(key) else { return nil }
        guard let a = v as? [Any] else { throw ConfigError("config key \(keyPath(key)): expected an array of objects") }
        var out: [ConfigObject] = []
        for (i, e) in a.enumerated() {
            guard let d = e as? [String: Any] else {
                throw ConfigError("config key \(keyPath(key))[\(i)]: expected an object")
            }
            out.append(ConfigObject(d, path: "\(keyPath(key))[\(i)]"))
        }
        return out
    }

    /// A secret: a plain string, `{"env": NAME}` or `{"file": PATH}`. Resolved later, so the JSON never
    /// needs to hold the value; `baseDir` anchors a relative file path.
    public func secret(_ key: String, baseDir: String) throws(ConfigError) -> SecretSource? {
        guard let v = raw(key) else { return nil }
        if let s = v as? String { return .literal(s) }
        guard let d = v as? [String: Any] else {
            throw ConfigError("config key \(keyPath(key)): expected a string, {\"env\": NAME} or {\"file\": PATH}")
        }
        let o = ConfigObject(d, path: keyPath(key))
        let env = try o.string("env")
        let file = try o.string("file")
        try o.finish()
        switch (env, file) {
        case (let e?, nil): return .environment(e)
        case (nil, let f?): return .file(resolvePath(f, base: baseDir))
        default: throw ConfigError("config key \(keyPath(key)): give exactly one of \"env\" or \"file\"")
        }
    }

    /// Rejects keys nobody asked for.
    public func finish() throws(ConfigError) {
        let unknown = Set(dict.keys).subtracting(seen).sorted()
        if let first = unknown.first { throw ConfigError("unknown config key \(keyPath(first))") }
    }
}

/// Where a secret comes from. The value is read only when needed and never logged.
public enum SecretSource: Sendable, Equatable {
    case literal(String)
    case environment(String)
    case file(String)

    /// Reads the secret; a missing variable or unreadable file is an error naming it (never the value).
    public func resolve(key: String) throws(ConfigError) -> String {
        switch self {
        case .literal(let s): return s
        case .environment(let name):
            guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
                throw ConfigError("config key \(key): environment variable \(name) is not set")
            }
            return v
        case .file(let path):
            guard let d = FileManager.default.contents(atPath: path), let s = String(data: d, encoding: .utf8) else {
                throw ConfigError("config key \(key): cannot read secret file \(path)")
            }
            return s.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}

/// Resolves `p` against `base` unless it is absolute.
public func resolvePath(_ p: String, base: String) -> String {
    if p.hasPrefix("/") { return p }
    if base.isEmpty { return p }
    return base.hasSuffix("/") ? base + p : base + "/" + p
}

/// JSONSerialization hands back booleans as NSNumber too; only their ObjC type code tells them apart.
private func isJSONBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }
