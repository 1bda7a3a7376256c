import Foundation

/// The seed extracts packages with .NET's `System.IO.Compression.ZipFile.ExtractToDirectory` (PROTOCOL.md §1).
/// Tests check archives with Mono's implementation of that class (Debian `mono-mcs`, `mono-runtime`,
/// `libmono-system-io-compression-filesystem4.0-cil`), whose ZIP code comes from .NET's own sources.
/// `DotNetZip.tool` is nil, with `unavailableReason` set, when Mono is not installed.
public enum DotNetZip {
    /// The compiled checker (`mono PATH extract ZIP DIR` / `mono PATH list ZIP`), built once per process.
    public static let tool: String? = build()
    public static let available: Bool = tool != nil
    public static let unavailableReason = "Mono (mcs, mono) is not installed: .NET ZipFile checks skipped"

    static let source = """
        using System;
        using System.IO;
        using System.IO.Compression;
        using System.Security.Cryptography;

        static class ZipCheck {
            static int Main(string[] args) {
                try {
                    if (args.Length == 3 && args[0] == "extract") {
                        ZipFile.ExtractToDirectory(args[1], args[2]);
                        Console.WriteLine("extracted");
                        return 0;
                    }
                    if (args.Length == 2 && args[0] == "list") {
                        using (var z = ZipFile.OpenRead(args[1]))
                        using (var sha = SHA256.Create()) {
                            Console.WriteLine("entries " + z.Entries.Count);
                            foreach (var e in z.Entries) {
                                using (var s = e.Open()) {
                                    var h = sha.ComputeHash(s);
                                    Console.WriteLine(e.FullName + "\\t" + e.Length + "\\t" +
                                        BitConverter.ToString(h).Replace("-", "").ToLowerInvariant());
                                }
                            }
                        }
                        return 0;
                    }
                    Console.Error.WriteLine("usage: zipcheck extract ZIP DIR | list ZIP");
                    return 2;
                } catch (Exception ex) {
                    Console.Error.WriteLine(ex.GetType().Name + ": " + ex.Message);
                    return 1;
                }
            }
        }
        """

    private static func build() -> String? {
        guard let mcs = which("mcs"), which("mono") != nil else { return nil }
        let dir = NSTemporaryDirectory() + "seedmirror-dotnet-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cs = dir + "/ZipCheck.cs"
        let exe = dir + "/ZipCheck.exe"
        guard FileManager.default.createFile(atPath: cs, contents: Data(source.utf8)) else { return nil }
        let r = runTool(
            mcs, ["-nologo", "-r:System.IO.Compression.dll", "-r:System.IO.Compression.FileSystem.dll", "-out:" + exe, cs])
        guard r.status == 0 else {
            print("DotNetZip: mcs failed: \(r.output)")
            return nil
        }
        return exe
    }

    /// Extracts `zip` into `directory` (which must not exist or be empty) as the seed does.
    public static func extract(_ zip: String, into directory: String) -> (status: Int32, output: String) {
        guard let tool, let mono = which("mono") else { return (-1, unavailableReason) }
        return runTool(mono, [tool, "extract", zip, directory])
    }

    /// Extracts ZIP `bytes` as the seed does and returns every extracted file (relative path → bytes).
    public static func extractedFiles(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        let dir = NSTemporaryDirectory() + "seedmirror-dotnet-x-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let zip = dir + "/package.zip"
        guard FileManager.default.createFile(atPath: zip, contents: Data(bytes)) else {
            throw DotNetZipFailure(output: "could not write \(zip)")
        }
        let r = extract(zip, into: dir + "/x")
        guard r.status == 0 else { throw DotNetZipFailure(output: r.output) }
        var files: [String: [UInt8]] = [:]
        let walker = FileManager.default.enumerator(atPath: dir + "/x")
        while let rel = walker?.nextObject() as? String {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: dir + "/x/" + rel, isDirectory: &isDir)
            if !isDir.boolValue, let d = FileManager.default.contents(atPath: dir + "/x/" + rel) { files[rel] = Array(d) }
        }
        return files
    }

    /// Opens `zip` with `ZipFile.OpenRead` and reads every entry: (name, length, SHA-256 hex) per entry.
    public static func list(_ zip: String) -> Result<[(name: String, length: Int, sha256: String)], DotNetZipFailure> {
        guard let tool, let mono = which("mono") else { return .failure(DotNetZipFailure(output: unavailableReason)) }
        let r = runTool(mono, [tool, "list", zip])
        guard r.status == 0 else { return .failure(DotNetZipFailure(output: r.output)) }
        var out: [(String, Int, String)] = []
        for line in r.output.split(separator: "\n") where !line.hasPrefix("entries ") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 3, let n = Int(f[1]) else { return .failure(DotNetZipFailure(output: r.output)) }
            out.append((String(f[0]), n, String(f[2])))
        }
        return .success(out)
    }
}

public struct DotNetZipFailure: Error, CustomStringConvertible {
    public var output: String
    public var description: String { "the .NET ZipFile check failed: \(output)" }
}

private func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

