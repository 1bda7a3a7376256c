// swift-tools-version:6.0
// libFuzzer targets for SeedHTTP, SeedZip, SeedServer's configuration, SeedAudit and SeedStore's manifests.
// Not part of the main build: run `Fuzz/run` (see Fuzz/README.md).
import Foundation
import PackageDescription

// A path dependency's identity is its directory name, which differs between checkouts and worktrees.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

func fuzzTarget(_ name: String, _ product: String) -> Target {
    .executableTarget(
        name: name, dependencies: ["FuzzDriver", .product(name: product, package: mainPackage)],
        path: "Sources/\(name)")
}

let package = Package(
    name: "SeedFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver"),
        fuzzTarget("FuzzRequest", "SeedHTTP"),
        fuzzTarget("FuzzForm", "SeedHTTP"),
        fuzzTarget("FuzzRange", "SeedHTTP"),
        fuzzTarget("FuzzResponse", "SeedHTTP"),
        fuzzTarget("FuzzZip", "SeedZip"),
        fuzzTarget("FuzzConfig", "SeedServer"),
        fuzzTarget("FuzzAuditRecord", "SeedAudit"),
        fuzzTarget("FuzzManifest", "SeedStore"),
    ]
)
