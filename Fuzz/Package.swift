// swift-tools-version:6.0
// libFuzzer targets for SeedHTTP. Not part of the main build: run `Fuzz/run` (see Fuzz/README.md).
import Foundation
import PackageDescription

// A path dependency's identity is its directory name, which differs between checkouts and worktrees.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

func fuzzTarget(_ name: String) -> Target {
    .executableTarget(
        name: name, dependencies: [.product(name: "SeedHTTP", package: mainPackage)], path: "Sources/\(name)")
}

let package = Package(
    name: "SeedFuzz",
    dependencies: [.package(path: "..")],
    targets: ["FuzzRequest", "FuzzForm", "FuzzRange", "FuzzResponse"].map(fuzzTarget)
)
