// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "SeedMirror",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "seed-mirror", targets: ["seed-mirror"]),
        .executable(name: "seed-cloud-sim", targets: ["seed-cloud-sim"]),
        // For the separate fuzzing package in Fuzz/, which can only depend on products.
        .library(name: "SeedHTTP", targets: ["SeedHTTP"]),
        .library(name: "SeedZip", targets: ["SeedZip"]),
        .library(name: "SeedAudit", targets: ["SeedAudit"]),
        .library(name: "SeedStore", targets: ["SeedStore"]),
        .library(name: "SeedServer", targets: ["SeedServer"]),
    ],
    targets: [
        // C modules: link the system libraries, wrap what Swift cannot import.
        .systemLibrary(name: "CSeedOpenSSL", path: "Sources/CSeedOpenSSL"),
        .systemLibrary(name: "CSeedZlib", path: "Sources/CSeedZlib"),
        .systemLibrary(name: "CSeedSQLite", path: "Sources/CSeedSQLite"),
        .target(name: "CSeedShim", path: "Sources/CSeedShim"),

        // Pure vocabulary and OS wrappers.
        .target(name: "SeedCore", swiftSettings: strict),
        .target(name: "SeedPosix", dependencies: ["SeedCore", "CSeedShim"], swiftSettings: strict),

        // Pure protocol and format code.
        .target(name: "SeedHTTP", dependencies: ["SeedCore"], swiftSettings: strict),
        .target(name: "SeedCompression", dependencies: ["SeedCore", "CSeedZlib"], swiftSettings: strict),
        .target(name: "SeedZip", dependencies: ["SeedCore", "SeedCompression"], swiftSettings: strict),
        .target(name: "SeedLicensing", dependencies: ["SeedCore"], swiftSettings: strict),

        // I/O building blocks.
        .target(name: "SeedTLS", dependencies: ["SeedCore", "SeedPosix", "CSeedOpenSSL"], swiftSettings: strict),
        .target(name: "SeedNet", dependencies: ["SeedCore", "SeedPosix", "CSeedShim"], swiftSettings: strict),
        .target(
            name: "SeedHTTPServer",
            dependencies: ["SeedCore", "SeedPosix", "SeedNet", "SeedTLS", "SeedHTTP"],
            swiftSettings: strict),
        .target(
            name: "SeedStore",
            dependencies: ["SeedCore", "SeedPosix", "SeedZip", "SeedCompression", "CSeedOpenSSL", "CSeedShim"],
            swiftSettings: strict),
        .target(name: "SeedLedger", dependencies: ["SeedCore", "SeedLicensing", "CSeedSQLite"], swiftSettings: strict),
        .target(name: "SeedAudit", dependencies: ["SeedCore", "SeedPosix", "SeedLicensing", "CSeedOpenSSL"], swiftSettings: strict),
        .target(
            name: "SeedUpstream",
            dependencies: ["SeedCore", "SeedPosix", "SeedTLS", "SeedHTTP", "CSeedOpenSSL", "CSeedShim"],
            swiftSettings: strict),

        // Composition root and executables.
        .target(
            name: "SeedServer",
            dependencies: [
                "SeedCore", "SeedPosix", "SeedHTTP", "SeedTLS", "SeedNet", "SeedHTTPServer", "SeedZip",
                "SeedCompression",
                "SeedStore", "SeedLicensing", "SeedLedger", "SeedAudit", "SeedUpstream",
                // The cloud simulator (Simulator/) writes ZIPs and serves TLS itself.
                "CSeedOpenSSL", "CSeedZlib",
            ],
            swiftSettings: strict),
        .executableTarget(name: "seed-mirror", dependencies: ["SeedServer"], swiftSettings: strict),
        .executableTarget(
            name: "seed-cloud-sim",
            dependencies: ["SeedServer"],
            swiftSettings: strict),

        // Tests.
        .target(
            name: "SeedTestSupport",
            dependencies: ["SeedCore", "SeedPosix", "SeedTLS", "SeedHTTP", "SeedServer", "SeedUpstream"],
            path: "Tests/SeedTestSupport",
            swiftSettings: strict),
        .testTarget(name: "SeedHTTPTests", dependencies: ["SeedHTTP"], swiftSettings: strict),
        .testTarget(name: "SeedZipTests", dependencies: ["SeedZip", "SeedCompression", "SeedTestSupport"], swiftSettings: strict),
        .testTarget(name: "SeedTLSTests", dependencies: ["SeedTLS", "SeedTestSupport"], swiftSettings: strict),
        .testTarget(name: "SeedStoreTests", dependencies: ["SeedStore", "SeedZip", "SeedCompression", "SeedTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "SeedLicensingTests",
            dependencies: ["SeedLicensing", "SeedLedger", "SeedTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "SeedAuditTests",
            dependencies: ["SeedAudit", "SeedTestSupport", "SeedLicensing", "SeedCore", "SeedServer", "SeedHTTPServer", "SeedHTTP"],
            swiftSettings: strict),
        .testTarget(
            name: "SeedMirrorIntegrationTests",
            dependencies: [
                "SeedServer", "SeedTestSupport", "SeedHTTPServer", "SeedTLS", "SeedHTTP", "SeedZip", "SeedUpstream",
                "SeedLicensing", "SeedStore",
            ],
            swiftSettings: strict),
    ]
)
