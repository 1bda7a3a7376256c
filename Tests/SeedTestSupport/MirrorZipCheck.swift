import Foundation
import SeedZip

/// What a package ZIP holds: member names and the `.lic` members' bytes; checked with `unzip -t` too.
public struct PackageContents: Sendable {
    public var names: [String]
    public var licenses: [(name: String, bytes: [UInt8])]
    public var hasThor64: Bool {
        names.contains { ($0.split(separator: "/").last.map(String.init) ?? $0).lowercased() == "thor64.exe" }
    }
}

public func readPackage(_ bytes: [UInt8]) throws -> PackageContents {
    let source = ZipBytes(bytes)
    let archive = try ZipArchive(source: source)
    var lics: [(String, [UInt8])] = []
    for e in archive.entries where e.name.lowercased().hasSuffix(".lic") {
        lics.append((e.name, try archive.contents(of: e, from: source)))
    }
    return PackageContents(names: archive.entries.map(\.name), licenses: lics)
}

/// Runs `unzip -t` on the bytes; returns its exit status and output.
public func unzipTest(_ bytes: [UInt8]) throws -> (status: Int32, output: String) {
    let path = NSTemporaryDirectory() + "seedmirror-unzip-" + UUID().uuidString + ".zip"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/unzip")
    p.arguments = ["-t", path]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}
