// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "RingGAN",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "GAN", targets: ["GAN"]),
        .executable(name: "gan", targets: ["gan"]),
        .executable(name: "gan-coordinator", targets: ["gan-coordinator"]),
        .executable(name: "gan-worker", targets: ["gan-worker"]),
        .executable(name: "gan-bench", targets: ["gan-bench"]),
        .executable(name: "gan-dist-bench", targets: ["gan-dist-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The one CRC-32C (SSE4.2 instruction, a table without it) and the frame checksum.
        .target(name: "CChecksum"),
        // The optimizers' update loops and the gradient codecs' byte-plane filters, vectorised
        // with AVX/AVX2 where the CPU has it (chosen at run time).
        .target(name: "CKernels"),
        // Layers, bottom up; every dependency points down (scripts/check-layers.sh checks the
        // imports; docs/ARCHITECTURE.md draws the picture).
        .target(name: "Tensors", dependencies: ["COpenBLAS", "CKernels"]),
        // The contract between training and whatever sums across ranks (no dependencies).
        .target(name: "DataParallel"),
        .target(name: "NN", dependencies: ["Tensors", "DataParallel", "CKernels"]),
        .target(name: "Datasets", dependencies: ["Tensors", "CZlib"]),
        .target(name: "Telemetry", dependencies: ["Tensors", "CKernels", "CZlib", "CChecksum", .product(name: "Logging", package: "swift-log")]),
        .target(name: "GAN", dependencies: ["Tensors", "NN", "DataParallel", "Datasets", "Telemetry", "CZlib"]),
        // Sockets, frames, the token handshake, gradient codecs, the ring all-reduce: flat float
        // buffers only, no model in sight.
        .target(name: "Collectives", dependencies: [
            "DataParallel", "CZstd", "CChecksum", "CKernels",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Coordinator, worker and their protocol: data-parallel GAN training over Collectives.
        .target(name: "Cluster", dependencies: [
            "Collectives", "Tensors", "NN", "GAN", "Datasets", "Telemetry",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TrainingCLI", dependencies: ["GAN", "Datasets", "Telemetry", "Tensors", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                   .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "gan-coordinator", dependencies: [
            "Cluster", "Collectives", "GAN", "Tensors", "Telemetry", "TrainingCLI",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "gan-worker", dependencies: [
            "Cluster", "Collectives", "Tensors", "Telemetry", "TrainingCLI",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "gan", dependencies: [
            "Tensors", "NN", "GAN", "Datasets", "Telemetry", "TrainingCLI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "gan-bench", dependencies: ["Tensors", "COpenBLAS"],
                          path: "bench/EngineBench"),
        .executableTarget(name: "gan-dist-bench", dependencies: ["Tensors", "NN", "GAN", "Datasets", "Collectives"],
                          path: "bench/DistBench"),
        // Helpers shared by the test targets (fixture loading, tolerances, finite differences,
        // temporary folders, child processes and the Python interop probe, a ring on loopback).
        .target(name: "TestSupport", dependencies: ["Tensors", "NN", "Datasets", "Collectives"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport", "CKernels"],
                    exclude: ["Fixtures"]),
        // Counts heap allocations (malloc and friends, interposed in the test executable).
        .target(name: "CAllocCounter", path: "Tests/CAllocCounter"),
        .testTarget(name: "NNTests", dependencies: ["Tensors", "NN", "TestSupport", "CAllocCounter"], exclude: ["Fixtures"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Tensors", "Datasets", "TestSupport"]),
        .testTarget(name: "GANTests", dependencies: ["Tensors", "NN", "GAN", "Datasets", "Telemetry", "TestSupport", "TrainingCLI", "CAllocCounter",
                                                   .product(name: "ArgumentParser", package: "swift-argument-parser")],
                    exclude: ["Fixtures"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Tensors", "NN", "GAN", "Datasets", "Telemetry", "TestSupport"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives", "DataParallel", "CChecksum", "CKernels", "Tensors", "TestSupport"]),
        // ClusterTests runs the gan-coordinator and gan-worker binaries (swift build --build-tests
        // builds them); it imports Cluster to check the protocol's message parsers and to run a
        // coordinator in process against fake workers (the replica-checksum tests).
        .testTarget(name: "ClusterTests", dependencies: ["Tensors", "NN", "GAN", "Datasets", "Collectives", "Cluster", "Telemetry", "TestSupport"]),
    ]
)
