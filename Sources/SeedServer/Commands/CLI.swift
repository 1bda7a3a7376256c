import Foundation
import SeedCore

/// Command-line arguments being consumed: flags are taken by name, the rest stay positional.
public struct Arguments {
    public private(set) var rest: [String]
    public init(_ args: [String]) { rest = args }

    /// Takes `--name VALUE` (or `--name=VALUE`); nil when absent.
    public mutating func option(_ name: String) throws(ConfigError) -> String? {
        guard let i = rest.firstIndex(where: { $0 == name || $0.hasPrefix(name + "=") }) else { return nil }
        let arg = rest.remove(at: i)
        if arg.hasPrefix(name + "=") { return String(arg.dropFirst(name.count + 1)) }
        guard i < rest.count else { throw ConfigError("\(name) needs a value") }
        return rest.remove(at: i)
    }

    /// Takes every `--name VALUE`, in order.
    public mutating func options(_ name: String) throws(ConfigError) -> [String] {
        var out: [String] = []
        while let v = try option(name) { out.append(v) }
        return out
    }

    public mutating func flag(_ name: String) -> Bool {
        guard let i = rest.firstIndex(of: name) else { return false }
        rest.remove(at: i)
        return true
    }

    public mutating func positional() -> String? {
        guard let i = rest.firstIndex(where: { !$0.hasPrefix("--") }) else { return nil }
        return rest.remove(at: i)
    }

    /// Fails on anything left over, naming it.
    public func finish() throws(ConfigError) {
        if let first = rest.first { throw ConfigError("unexpected argument \(first)") }
    }
}

/// The `seed-mirror` command line. Each subcommand lives in its own file and returns an exit status.
public enum SeedMirrorCLI {
    typealias Command = @Sendable (inout Arguments) async throws -> Int32

    static let commands: [(name: String, summary: String, run: Command)] = [
        ("init", "write config/seed-mirror.json and an internal CA plus server certificates", runInit),
        ("serve", "run the mirror", runServe),
        ("demo", "run a scratch mirror against the built-in cloud simulator and download through it", runDemo),
        ("import", "import a package ZIP into the store", runImport),
        ("import-bundle", "import an export bundle (air-gapped transfer)", runImportBundle),
        ("export", "write manifests and blobs to a bundle", runExport),
        ("packages", "list package versions, sizes and sharing", runPackages),
        ("gc", "remove blobs no manifest references", runGC),
        ("verify", "re-hash every blob and report", runVerify),
        ("licenses", "list|show|revoke|resolve|import|pending", runLicenses),
        ("usage", "license usage report", runUsage),
        ("audit", "audit verify [--from FILE]", runAudit),
    ]

    public static func usage() -> String {
        var s = "usage: seed-mirror COMMAND [--config PATH] [options]\n\ncommands:\n"
        for c in commands { s += "  " + c.name.padding(toLength: 15, withPad: " ", startingAt: 0) + c.summary + "\n" }
        return s
    }

    /// Runs one command line; returns the process exit status. Errors print one line on stderr.
    public static func main(_ argv: [String]) async -> Int32 {
        guard let name = argv.first, !["-h", "--help", "help"].contains(name) else {
            FileHandle.standardError.write(Data(usage().utf8))
            return argv.isEmpty ? 2 : 0
        }
        guard let cmd = commands.first(where: { $0.name == name }) else {
            FileHandle.standardError.write(Data("seed-mirror: unknown command \(name)\n\(usage())".utf8))
            return 2
        }
        var args = Arguments(Array(argv.dropFirst()))
        do {
            return try await cmd.run(&args)
        } catch {
            FileHandle.standardError.write(Data("seed-mirror \(name): \(error)\n".utf8))
            return 1
        }
    }
}

/// Prints a line on standard output.
func say(_ s: String) { print(s) }
