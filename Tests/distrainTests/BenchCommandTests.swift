import XCTest
import _TestSupport

/// `distrain bench --json` reports every documented figure (speed itself is never asserted).
final class BenchCommandTests: XCTestCase {
    func testJSONHasEveryFigureAndCountsAllocations() throws {
        let outcome = try runProcess(builtProductsDirectory + "/distrain",
                                     ["bench", "--model", "lenet", "--batch-size", "4", "--steps", "3", "--repetitions", "3", "--threads", "1", "--json"],
                                     timeout: 120)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(object["model"] as? String, "lenet")
        XCTAssertEqual(object["input_shape"] as? [Int], [3, 32, 32])
        XCTAssertEqual(object["repetitions"] as? Int, 3)
        XCTAssertEqual(object["gradient_sum"] as? String, "local")
        for key in ["images_per_second", "images_per_second_min", "images_per_second_max", "images_per_second_total"] {
            XCTAssertGreaterThan(object[key] as? Double ?? 0, 0, key)
        }
        let split = try XCTUnwrap(object["ms_per_step"] as? [String: Double])
        XCTAssertEqual(Set(split.keys), ["data", "forward", "backward", "gradient_sync", "optimizer", "total"])
        XCTAssertGreaterThan(split["forward"]!, 0)
        XCTAssertNotNil(object["allocations_per_step"] as? Double)
        XCTAssertGreaterThan((object["peak_rss_mb_per_rank"] as? [Int])?.first ?? 0, 0)
        // LeNet on 3x32x32: 3,204,720 FLOPs per training image (worked out in LayersTests.ModelTests).
        XCTAssertEqual(object["training_gflop_per_image"] as? Double ?? 0, 0.00320472, accuracy: 1e-12)
        let imagesPerSecond = try XCTUnwrap(object["images_per_second"] as? Double)
        let gigaflops = try XCTUnwrap(object["gflops_per_second"] as? Double)
        XCTAssertEqual(gigaflops, imagesPerSecond * 0.00320472, accuracy: gigaflops * 1e-9)
        let sgemm = try XCTUnwrap((object["sgemm_gflops_per_second_per_rank"] as? [Double])?.first)
        XCTAssertGreaterThan(sgemm, 0)
        XCTAssertEqual(object["fraction_of_sgemm_peak"] as? Double ?? 0, gigaflops / sgemm, accuracy: gigaflops / sgemm * 1e-3)
        XCTAssertEqual(object["synthetic_dataset_mb"] as? Double ?? 0, Double(3 * 4 * 3072) / 1_048_576, accuracy: 1e-12)
    }

    /// A steady-state training step allocates nothing on the heap in distrain's own code, for every model —
    /// counted by the interposed malloc over whole epochs (2N steps minus N steps), in this debug build too.
    /// Fewer than one allocation per step on average: any allocation inside the step would count ≥ 1.
    /// Allocations inside GEMM calls are counted apart: OpenBLAS 0.3.21's AVX-512 small-matrix kernels
    /// malloc on every call (LeNet's small GEMMs take that path), AVX2 kernels never do; oneDNN's sgemm always does.
    func testTrainingStepsDoNotAllocate() throws {
        for model in ["mlp", "lenet", "cnn", "mlp-large"] {
            let object = try bench(model: model)
            let allocations = try XCTUnwrap(object["allocations_per_step"] as? Double, "\(model): the malloc counter must be live")
            XCTAssertLessThan(allocations, 1, "\(model) allocates \(allocations) times per training step")
            let blas = try XCTUnwrap(object["blas_allocations_per_step"] as? Double, "\(model): BLAS allocations must be counted")
            XCTAssertGreaterThanOrEqual(blas, 0)
            // oneDNN's sgemm (GEMMs with every side ≥ 32: the CNN's convolutions) mallocs its packing buffer on
            // every call; the MLPs' batch-4 GEMMs stay on OpenBLAS.
            if !Self.blasKernelsAllocate(object) && model.hasPrefix("mlp") {
                XCTAssertLessThan(blas, 1, "\(model): \(object["blas"] ?? "") kernels should not allocate")
            }
        }
    }

    /// A spec with residual blocks (BatchNorm, a projection shortcut) keeps the step allocation-free.
    func testResidualBlocksDoNotAllocate() throws {
        let directory = makeTemporaryDirectory("bench-residual")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spec = "Conv2d(1, 4, 3, padding=1, bias=False)\nBatchNorm2d(4)\nReLU()\nResidual(\nConv2d(4, 4, 3, padding=1)\nBatchNorm2d(4)\n)\n"
            + "Residual(\nConv2d(4, 8, 3, stride=2, padding=1)\nshortcut:\nConv2d(4, 8, 1, stride=2)\n)\nAdaptiveAvgPool2d(1)\nFlatten()\nLinear(8, 10)\n"
        try spec.write(toFile: directory + "/res.spec", atomically: true, encoding: .utf8)
        let object = try bench(model: directory + "/res.spec", extra: ["--input", "1x12x12"])
        XCTAssertLessThan(try XCTUnwrap(object["allocations_per_step"] as? Double), 1)
        // --exact-sums: per-sample terms into preallocated integer sums, BatchNorm's too.
        let exact = try bench(model: directory + "/res.spec", extra: ["--input", "1x12x12", "--exact-sums"])
        XCTAssertEqual(exact["exact_sums"] as? Bool, true)
        XCTAssertLessThan(try XCTUnwrap(exact["allocations_per_step"] as? Double), 1, "--exact-sums allocates nothing either")
    }

    /// A GPT's step (tied head, attention, LayerNorm, GELU, AdamW with clipping and decay groups) allocates nothing,
    /// on one rank and, under mpirun, on two.
    func testAGPTStepDoesNotAllocate() throws {
        let object = try bench(model: "gpt-mini", extra: ["--context", "16"])
        XCTAssertEqual(object["model"] as? String, "gpt-mini")
        XCTAssertLessThan(try XCTUnwrap(object["allocations_per_step"] as? Double, "the malloc counter must be live"), 1)
        let recomputed = try bench(model: "gpt-mini", extra: ["--context", "16", "--recompute"])
        XCTAssertLessThan(try XCTUnwrap(recomputed["allocations_per_step"] as? Double), 1, "--recompute allocates nothing either")
        let exact = try bench(model: "gpt-mini", extra: ["--context", "16", "--exact-sums"])
        XCTAssertLessThan(try XCTUnwrap(exact["allocations_per_step"] as? Double), 1, "--exact-sums allocates nothing either")
        guard let mpirun = findOnPath("mpirun") else { return }
        // The sharded steps' gathers and scatters (the mailbox; the pass observer) allocate nothing either.
        for shard in [[], ["--shard", "optimizer"], ["--shard", "gradients"], ["--shard", "parameters"]] {
            let outcome = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [builtProductsDirectory + "/distrain", "bench",
                "--model", "gpt-mini", "--context", "16", "--batch-size", "2", "--steps", "5", "--repetitions", "1", "--threads",
                "1", "--json"] + shard, timeout: 300)
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
            let two = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [String: Any])
            XCTAssertEqual(two["world_size"] as? Int, 2)
            XCTAssertLessThan(try XCTUnwrap(two["allocations_per_step"] as? Double), 1, "\(shard)")
        }
    }

    /// Fine-tuning under a pruning mask (`distrain prune`) adds no allocation to the step either.
    func testPrunedStepsDoNotAllocate() throws {
        let object = try bench(model: "mlp", extra: ["--sparsity", "0.9"])
        XCTAssertEqual(object["sparsity"] as? Double, 0.9)
        XCTAssertLessThan(try XCTUnwrap(object["allocations_per_step"] as? Double), 1)
    }

    /// The BLAS-internal path: on an AVX-512 host LeNet's small GEMMs allocate inside OpenBLAS, and the
    /// counter puts those allocations in the BLAS column, not distrain's; forcing the AVX2 kernels
    /// (OPENBLAS_CORETYPE=Haswell) makes them go away. On an AVX2 host both runs count zero in both columns.
    func testAllocationsInsideBLASAreCountedApart() throws {
        let native = try bench(model: "lenet")
        XCTAssertLessThan(native["allocations_per_step"] as? Double ?? 99, 1)
        if Self.blasKernelsAllocate(native) {
            XCTAssertGreaterThanOrEqual(native["blas_allocations_per_step"] as? Double ?? 0, 1,
                                        "AVX-512 small-matrix kernels malloc on every call; the counter must see them")
        }
        let haswell = try bench(model: "lenet", environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertLessThan(haswell["allocations_per_step"] as? Double ?? 99, 1)
        XCTAssertLessThan(haswell["blas_allocations_per_step"] as? Double ?? 99, 1, "\(haswell["blas"] ?? "")")
    }

    /// The check can fail: an allocation injected into the step (DISTRAIN_FAULT kind `allocate`, one
    /// heap block per step from step 1 on) is counted as distrain's own, not as the library's.
    func testAnAllocationInTheStepIsCaught() throws {
        let object = try bench(model: "mlp", environment: ["DISTRAIN_FAULT": "0:1:allocate"])
        let allocations = try XCTUnwrap(object["allocations_per_step"] as? Double)
        XCTAssertGreaterThanOrEqual(allocations, 1, "an allocation in every step must be counted")
        XCTAssertLessThan(object["blas_allocations_per_step"] as? Double ?? 99, 1)
    }

    /// Whether this run's OpenBLAS kernels are the AVX-512 ones whose small-matrix path allocates.
    private static func blasKernelsAllocate(_ object: [String: Any]) -> Bool {
        let blas = object["blas"] as? String ?? ""
        return blas.contains("core Cooperlake") || blas.contains("core SkylakeX")
    }

    private func bench(model: String, environment: [String: String] = [:], extra: [String] = []) throws -> [String: Any] {
        let outcome = try runProcess(builtProductsDirectory + "/distrain",
                                     ["bench", "--model", model, "--batch-size", "4", "--steps", "5", "--repetitions", "1",
                                      "--threads", "1", "--json"] + extra, extraEnvironment: environment, timeout: 300)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [String: Any])
    }

    /// Under mpirun: per-rank and total figures, the shared-memory gradient sum, and still no allocation
    /// per step on either rank's path.
    func testTwoRankBenchSumsInSharedMemoryWithoutAllocating() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let outcome = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [builtProductsDirectory + "/distrain",
                                     "bench", "--model", "mlp", "--batch-size", "4", "--steps", "5", "--repetitions", "2",
                                     "--threads", "1", "--json"], timeout: 300)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as! [String: Any]
        XCTAssertEqual(object["world_size"] as? Int, 2)
        XCTAssertEqual(object["global_batch"] as? Int, 8)
        XCTAssertEqual(object["gradient_sum"] as? String, "shared memory (2 ranks per host)")
        let perRank = try XCTUnwrap(object["images_per_second_per_rank"] as? [Int])
        XCTAssertEqual(perRank.count, 2)
        XCTAssertEqual(object["images_per_second_total"] as? Double ?? 0, Double(perRank.reduce(0, +)), accuracy: 1e-9)
        let allocations = try XCTUnwrap(object["allocations_per_step"] as? Double)
        XCTAssertLessThan(allocations, 1, "two-rank steps allocate \(allocations) times per step")
        XCTAssertLessThan(object["mpi_allocations_per_step"] as? Double ?? 99, 1, "the shared-memory sum calls no MPI reduction in the step")
    }

    /// BatchNorm reduces its statistics over ranks with MPI inside forward and backward: Open MPI's own
    /// allocations there are counted apart, and distrain's step still allocates nothing.
    func testTwoRankBatchNormStepsAllocateOnlyInsideMPI() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        let spec = makeTemporaryDirectory("bn-bench") + "/bn.spec"
        try Data("Conv2d(1, 4, 3, padding=1, bias=False)\nBatchNorm2d(4)\nReLU()\nMaxPool2d(2)\nFlatten()\nLinear(784, 16)\nBatchNorm1d(16)\nReLU()\nLinear(16, 10)\n".utf8)
            .write(to: URL(fileURLWithPath: spec))
        let outcome = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [builtProductsDirectory + "/distrain", "bench", "--model", spec,
                                     "--batch-size", "4", "--steps", "5", "--repetitions", "1", "--threads", "1", "--json"], timeout: 300)
        XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as! [String: Any]
        XCTAssertLessThan(object["allocations_per_step"] as? Double ?? 99, 1, "distrain's own step code")
        XCTAssertNotNil(object["mpi_allocations_per_step"] as? Double)
    }

    /// Too little room where Open MPI puts shared windows (a 4 MiB tmpfs, as in a container with a small
    /// /dev/shm): Open MPI would warn and hang in the allocation, so the ranks check first and fall back
    /// to allreduce, saying why. A small model still fits and still gets shared memory there.
    func testTooLittleSharedMemoryFallsBackToAllreduceSayingWhy() throws {
        guard let mpirun = findOnPath("mpirun") else { throw XCTSkip("mpirun is not installed") }
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root; not root here, so this did not run") }
        let directory = makeTemporaryDirectory("tiny-shm")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mount = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", directory], timeout: 30)
        guard mount.exitCode == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mount.standardError)") }
        defer { _ = try? runProcess("/bin/umount", [directory], timeout: 30) }
        func gradientSum(_ model: String, _ extra: [String] = []) throws -> String {
            let outcome = try runProcess(mpirun, localMPIRunArguments(ranks: 2) + [builtProductsDirectory + "/distrain",
                                         "bench", "--model", model, "--batch-size", "4", "--steps", "2", "--repetitions", "1",
                                         "--threads", "1", "--json"] + extra,
                                         extraEnvironment: ["OMPI_MCA_osc_sm_backing_directory": directory], timeout: 120)
            XCTAssertFalse(outcome.timedOut, "\(model): the job hung")
            XCTAssertEqual(outcome.exitCode, 0, outcome.standardError)
            let object = try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [String: Any]
            return object?["gradient_sum"] as? String ?? "?"
        }
        let large = try gradientSum("mlp-large")  // 1,863,690 gradients: 15 MB for two ranks
        XCTAssertTrue(large.hasPrefix("allreduce (\(directory) has "), large)
        XCTAssertTrue(large.contains("enlarge it"), large)
        XCTAssertEqual(try gradientSum("mlp"), "shared memory (2 ranks per host)")  // 0.8 MB fits
        // The sharded collectives' 32 MiB mailbox does not fit either: MPI's own reduce-scatter and all-gather, no hang.
        XCTAssertEqual(try gradientSum("mlp", ["--shard", "parameters"]), "reduce-scatter after each layer's backward (sharded)")
    }

    func testInvalidBenchFlags() throws {
        for arguments in [["bench", "--steps", "0"], ["bench", "--model", "resnet"], ["bench", "--batch-size", "0"]] {
            let outcome = try runProcess(builtProductsDirectory + "/distrain", arguments, timeout: 30)
            XCTAssertEqual(outcome.exitCode, 64, "\(arguments)")
        }
    }
}
