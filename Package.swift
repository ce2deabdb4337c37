// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "distrain",
    products: [
        .executable(name: "distrain", targets: ["distrain"]),
        // The engine as a library: models, optimizers, datasets and the Trainer (README: "As a Swift library").
        .library(name: "DistrainKit", targets: ["DistrainKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // MD5 of downloads (Insecure.MD5); Foundation on Linux has no digests.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // `distrain serve`: Hummingbird 2 is a kept HTTP server on SwiftNIO (HTTP/1.1 keep-alive, streamed bodies,
        // graceful shutdown through ServiceLifecycle); NIO itself for the per-connection request deadlines.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.22.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    ],
    targets: [
        // C interop: system libraries plus tiny static-inline accessors for their macros.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // oneDNN (what PyTorch's CPU int8 path uses): its u8×s8→s32 GEMM runs int8 inference with VNNI
        // where the CPU has it (measured 4× OpenBLAS's SGEMM there, 2× on AVX2; BENCHMARKS.md).
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // PNG and JPEG decoding with Debian's libpng and libjpeg-turbo; C, so libjpeg's longjmp never crosses Swift.
        .target(name: "CImageCodecs", cSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        // C kernels (restrict, vector types and target_clones vectorize where Swift does not). -Wno-psabi:
        // the 8-float vector helpers are always inlined, so the baseline clone's vector-ABI note never applies.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-Wno-psabi"])]),
        .target(name: "Tensors", dependencies: ["COpenBLAS", "CDNNL", "CKernels"]),
        .target(name: "Layers", dependencies: ["Tensors", "CKernels"]),
        .target(name: "Optimizers", dependencies: ["Tensors", "CKernels"]),
        // Tokenizers (byte-level BPE, character-level; Hugging Face tokenizer.json) and token shards.
        // The one way distrain writes a whole file: beside it, fsync, rename, fsync the folder.
        .target(name: "DurableFiles"),
        .target(name: "Text", dependencies: ["DurableFiles"]),
        .target(name: "Datasets", dependencies: ["Tensors", "Text", "CZlib", "CKernels", "CImageCodecs"]),
        .target(name: "Collectives", dependencies: ["CMPI", "CKernels"]),
        // Text out of a language model: the KV-cache decoder's loop and the sampling (temperature, top-k, top-p).
        .target(name: "Generation", dependencies: ["Layers", "Tensors"]),
        .target(name: "Downloads", dependencies: ["Datasets", "CZlib", "DurableFiles", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "SafeTensors"),
        // What runs many trainings or compares models: k-fold, sweeps, the LR finder, comparison statistics.
        .target(name: "Selection", dependencies: ["Training"]),
        // Smaller models: pruning masks, int8 quantization and int8 inference.
        .target(name: "Compression", dependencies: ["Tensors", "Layers", "CKernels", "CDNNL", "SafeTensors"]),
        // The HTML/SVG report from metrics files (Foundation only).
        .target(name: "Reports", dependencies: ["DurableFiles"]),
        // Interposes malloc & co. to count heap allocations for `distrain bench` (linked into the executable only).
        .target(name: "CAllocationCounter", dependencies: ["CKernels"]),
        .target(name: "Training", dependencies: ["Tensors", "Layers", "Optimizers", "Datasets", "Collectives", "SafeTensors",
                                                 "Compression", "DurableFiles"]),
        .target(name: "Serving", dependencies: [
            "Training", "Generation", "Text", "Datasets", "Layers", "SafeTensors",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The engine as a library, and the process side of a job: sessions, runs, k-fold (what the commands call).
        .target(name: "DistrainKit", dependencies: ["Collectives", "Datasets", "Layers", "Optimizers", "Tensors", "Training",
                                                    "Selection", "Compression", "DurableFiles"]),
        .executableTarget(name: "distrain", dependencies: [
            "DistrainKit", "Training", "Reports", "Selection", "Compression", "Downloads", "SafeTensors", "Text", "Generation",
            "CAllocationCounter", "CKernels", "Serving", "DurableFiles",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "_TestSupport", dependencies: ["Tensors", "CZlib"]),

        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "_TestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "_TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "OptimizersTests", dependencies: ["Optimizers", "_TestSupport"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "_TestSupport"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives", "_TestSupport"]),
        .testTarget(name: "DownloadsTests", dependencies: ["Downloads", "_TestSupport"]),
        .testTarget(name: "GenerationTests", dependencies: ["Generation", "Layers", "_TestSupport"]),
        .testTarget(name: "DurableFilesTests", dependencies: ["DurableFiles", "_TestSupport"]),
        .testTarget(name: "TextTests", dependencies: ["Text", "_TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "_TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Text", "SafeTensors", "Generation", "_TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "SelectionTests", dependencies: ["Selection", "_TestSupport"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", "Training", "Datasets", "Collectives", "_TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "_TestSupport"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Training", "Generation", "Text", "_TestSupport"]),
        .testTarget(name: "DistrainKitTests", dependencies: ["DistrainKit", "_TestSupport"]),
        .testTarget(name: "distrainTests", dependencies: ["distrain", "_TestSupport", "Tensors", "SafeTensors",
                                                         .product(name: "Crypto", package: "swift-crypto")]),
    ],
    // Swift 5 language mode: kernels share raw buffers across threads on purpose (ranks as threads in tests).
    swiftLanguageModes: [.v5]
)
