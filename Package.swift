// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "cachectl",
    products: [
        .executable(name: "cachectl", targets: ["cachectl"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // No traits: the default FullFoundation brings full Foundation (and ICU) for
        // URLEncodedForm's DateFormatter, ConfigurationSupport swift-configuration;
        // cachectl uses neither (it parses forms itself).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
    ],
    targets: [
        // No C library is linked: each is loaded when first called (cachectl_dlbind in
        // CCachectlShims), so commands that never call it start faster. libmount
        // (CCachectlMount), libfuse3 and liblz4 (CCachectlFuse), libyaml (CCachectlYAML),
        // OpenSSL's libcrypto (CCachectlShims); their headers from Debian's -dev packages.
        // libfuse 3's types for Swift (header only).
        .systemLibrary(name: "CFuse3"),
        // statfs(2) and xattr headers that Swift's Glibc module leaves out (header only).
        .systemLibrary(name: "CLinuxFS"),
        // C that Swift cannot call: variadic syscall(2), macros, libfuse's versioned symbols.
        .target(name: "CCachectlShims"),
        .target(name: "CCachectlMount", dependencies: ["CCachectlShims"]),
        .target(name: "CCachectlFuse", dependencies: ["CCachectlShims"]),
        .target(name: "CCachectlYAML", dependencies: ["CCachectlShims"]),

        .target(
            name: "CachectlSystem",
            dependencies: ["CCachectlShims", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "CachectlWarm", dependencies: ["CachectlSystem", "CachectlMount", "CCachectlShims", "CLinuxFS"]),
        .target(name: "CachectlMount", dependencies: ["CachectlSystem", "CCachectlMount"]),
        .target(
            name: "CachectlFSCache", dependencies: ["CachectlSystem", "CachectlMount", "CLinuxFS"],
            resources: [
                .embedInCode("Templates/cachefilesd.conf.mustache"),
                .embedInCode("Templates/cachefilesd.service.mustache"),
            ]),
        .target(name: "CachectlTiers", dependencies: ["CachectlSystem", "CachectlMount", "CCachectlShims"]),
        .target(
            name: "CachectlFUSE", dependencies: ["CachectlSystem", "CachectlMount", "CFuse3", "CCachectlFuse"]),
        .target(name: "CachectlNVMeOF", dependencies: ["CachectlSystem", "CachectlMount"]),
        // cachectl apply/plan: the YAML desired state, composed from the modules above.
        .target(
            name: "CachectlPlan",
            dependencies: [
                "CachectlSystem", "CachectlWarm", "CachectlMount", "CachectlFSCache", "CachectlTiers",
                "CachectlNVMeOF", "CCachectlYAML",
            ],
            resources: [
                .embedInCode("Templates/cachectl-apply.service.mustache"),
                .embedInCode("Templates/cachectl-warm@.service.mustache"),
                .embedInCode("Templates/cachectl-fuse@.service.mustache"),
                .embedInCode("Templates/cachectl-serve.service.mustache"),
            ]),
        // cachectl status: everything on one screen, and Prometheus metrics.
        .target(
            name: "CachectlStatus",
            dependencies: [
                "CachectlSystem", "CachectlMount", "CachectlFSCache", "CachectlTiers", "CachectlFUSE", "CachectlWarm",
                "CachectlNVMeOF", .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        // cachectl serve: the web page and JSON API over the same library calls as the CLI.
        .target(
            name: "CachectlServe",
            dependencies: [
                "CachectlSystem", "CachectlWarm", "CachectlTiers", "CachectlPlan", "CachectlStatus",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            resources: [.embedInCode("Templates/page.mustache"), .embedInCode("openapi.json")]),
        .executableTarget(
            name: "cachectl",
            dependencies: [
                "CachectlSystem", "CachectlWarm", "CachectlMount", "CachectlFSCache", "CachectlTiers",
                "CachectlFUSE", "CachectlNVMeOF", "CachectlPlan", "CachectlStatus", "CachectlServe",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // --static-swift-stdlib links with -export-dynamic: every symbol of ours and
            // of the packages in .dynsym (2.3 MB of the stripped binary) for nothing a
            // command uses (no plugins, no dlsym). README, "The binary".
            linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(configuration: .release))]
        ),

        // What several test targets share (temporary directories); never linked into the product.
        .target(name: "CachectlTestSupport", dependencies: ["CachectlSystem"], path: "Tests/CachectlTestSupport"),
        .testTarget(name: "CachectlSystemTests", dependencies: ["CachectlSystem", "CachectlTestSupport"]),
        .testTarget(
            name: "CachectlWarmTests",
            dependencies: ["CachectlWarm", "CachectlMount", "CachectlSystem", "CachectlTestSupport"]),
        .testTarget(
            name: "CachectlFSCacheTests",
            dependencies: ["CachectlFSCache", "CachectlMount", "CachectlSystem", "CachectlTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "CachectlTiersTests",
            dependencies: ["CachectlTiers", "CachectlMount", "CachectlSystem", "CachectlTestSupport"]),
        .testTarget(
            name: "CachectlFUSETests",
            dependencies: ["CachectlFUSE", "CachectlMount", "CachectlSystem", "CachectlTestSupport"]),
        .testTarget(
            name: "CachectlNVMeOFTests", dependencies: ["CachectlNVMeOF", "CachectlSystem", "CachectlTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "CachectlPlanTests",
            dependencies: [
                "CachectlPlan", "CachectlStatus", "CachectlSystem", "CachectlTiers", "CachectlFSCache", "CachectlWarm",
                "CachectlTestSupport",
            ]),
        .testTarget(
            name: "CachectlServeTests",
            dependencies: [
                "CachectlServe", "CachectlTiers", "CachectlSystem", "CachectlWarm", "CachectlTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        // Runs the built binary: exit codes, --json, privilege drops.
        .testTarget(name: "CLITests", dependencies: ["cachectl", "CachectlSystem", "CachectlTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
