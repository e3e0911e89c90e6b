// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "RingGAN",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Tensors", targets: ["Tensors"]),
        .executable(name: "gan", targets: ["gan"]),
        .executable(name: "gan-bench", targets: ["gan-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .target(name: "Tensors", dependencies: ["COpenBLAS"]),
        .executableTarget(name: "gan", dependencies: [
            "Tensors",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "gan-bench", dependencies: ["Tensors", "COpenBLAS"],
                          path: "bench/EngineBench"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"],
                    exclude: ["Fixtures"]),
    ]
)
