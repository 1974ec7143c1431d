// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "cachectl",
    products: [
        .executable(name: "cachectl", targets: ["cachectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // System libraries (Debian: libmount-dev, liblz4-dev, libfuse3-dev).
        .systemLibrary(name: "CLibMount", pkgConfig: "mount", providers: [.apt(["libmount-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // C that Swift cannot call: variadic syscall(2), macros.
        .target(name: "CCachectlShims"),

        .target(
            name: "CachectlSystem",
            dependencies: ["CCachectlShims", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "CachectlWarm", dependencies: ["CachectlSystem", "CCachectlShims"]),
        .target(name: "CachectlTiers", dependencies: ["CachectlSystem", "CLibCrypto"]),
        .target(name: "CCachectlFuse", dependencies: ["CFuse3"]),
        .target(name: "CachectlFUSE", dependencies: ["CachectlSystem", "CLZ4", "CFuse3", "CCachectlFuse"]),
        .executableTarget(
            name: "cachectl",
            dependencies: [
                "CachectlSystem", "CachectlWarm", "CachectlTiers", "CachectlFUSE",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .testTarget(name: "CachectlSystemTests", dependencies: ["CachectlSystem"]),
        .testTarget(name: "CachectlWarmTests", dependencies: ["CachectlWarm", "CachectlSystem"]),
        // Runs the built binary: exit codes, --json, privilege drops.
        .testTarget(name: "CLITests", dependencies: ["cachectl", "CachectlSystem"]),
        .testTarget(name: "CachectlTiersTests", dependencies: ["CachectlTiers", "CachectlSystem"]),
        .testTarget(name: "CachectlFUSETests", dependencies: ["CachectlFUSE", "CachectlSystem"]),
    ],
    swiftLanguageModes: [.v6]
)
