import ArgumentParser
import CAllocationCounter
import Collectives
import DistrainKit
import Foundation
import Layers
import Tensors
import Training

/// `distrain bench`: training-step speed on synthetic data, no files needed.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training speed on synthetic data: images/s, step split, allocations per step, peak memory.",
        discussion: """
        Runs the real training step (forward, loss, backward, gradient allreduce, optimizer) on random data of
        the model's input shape (lenet: 3x32x32 as the seed's CIFAR-10 net; others 1x28x28).
        Under mpirun each rank trains --batch-size samples per step and the total is reported too.
        Examples:
          distrain bench --model mlp --threads 1 --json
          mpirun -n 2 distrain bench --model lenet --threads 1
        """)

    @Option(help: ArgumentHelp(stringLiteral: ModelChoice.help))
    var model = "mlp"

    @Option(help: "Input shape CxHxW for a model spec (default: 1x28x28; presets use their own, lenet 3x32x32).")
    var input: String?

    @Option(name: .customLong("batch-size"), help: "Samples per step PER RANK (default: 256 for mlp-large, else 64).")
    var batchSize: Int?

    @Option(help: "BLAS threads per rank (default: cores on this host ÷ ranks on this host).")
    var threads: Int?

    @Option(help: "Steps per repetition.")
    var steps: Int = 200

    @Option(help: "Timed repetitions (the median is reported).")
    var repetitions: Int = 5

    @Option(name: .customLong("gradient-sum"), help: "auto: shared memory within each host; allreduce: MPI_Allreduce only (to compare).")
    var gradientSum: SumMethod = .auto

    @Option(help: "Gradient format between hosts: fp32, fp16 or bf16 (as training's --wire).")
    var wire: WireFormat = .fp32

    @Flag(help: "Start the gradient sum between hosts during backward (as training's --overlap).")
    var overlap = false

    @Option(name: .customLong("bucket-mb"), help: "Size of each gradient bucket between hosts in MiB (as training's).")
    var bucketMB: Double = 4

    @Option(help: ArgumentHelp("Train under a global magnitude-pruning mask of this sparsity, as 'distrain prune' fine-tunes "
        + "(its cost and allocations)."))
    var sparsity: Double?

    @Option(help: ArgumentHelp("Time inference (evaluation-mode forward passes) of this checkpoint instead of training; repeat "
        + "it to compare checkpoints, e.g. a float one and its int8 version, in one run."))
    var inference: [String] = []

    @Option(name: .customLong("inference-batch-sizes"), help: "Batch sizes of the inference timing, comma-separated.")
    var inferenceBatchSizes = "1,256"

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var generation: GenerationBenchOptions

    @Option(help: "Shard over ranks as training's --shard (optimizer, gradients, parameters: ZeRO stages 1-3).")
    var shard: ShardingStage?

    @Flag(help: "Recompute the residual blocks' insides in backward, as training's --recompute.")
    var recompute = false

    @Flag(help: "Sum gradients and BatchNorm statistics exactly, as training's --exact-sums.")
    var exactSums = false

    @Option(help: "GEMM arithmetic as training's --precision: fp32, or bf16 (where the CPU has bf16 dot products).")
    var precision: MatmulPrecision = .fp32

    func validate() throws {
        try requireSupported(precision)
        if let batchSize, batchSize < 1 || batchSize > 65_536 {
            throw ValidationError("--batch-size must be in 1...65536, got \(batchSize)")
        }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
        if steps < 1 || steps > 1_000_000 { throw ValidationError("--steps must be in 1...1000000, got \(steps)") }
        if !(bucketMB.isFinite && bucketMB > 0 && bucketMB <= 1024) {
            throw ValidationError("--bucket-mb must be in (0, 1024], got \(bucketMB)")
        }
        if let sparsity, !(sparsity >= 0 && sparsity < 1) { throw ValidationError("--sparsity must be in [0, 1), got \(sparsity)") }
        if repetitions < 1 || repetitions > 1000 { throw ValidationError("--repetitions must be in 1...1000, got \(repetitions)") }
        do { _ = try Fault.fromEnvironment() } catch { throw ValidationError("\(error)") }
        if generation.generate { return }
        if !inference.isEmpty { return _ = try parsedInferenceBatchSizes() }
        let choice = try ModelChoice(model)
        if generation.tokenBenchmark(choice) != nil { return }  // built on token windows when it runs
        do {
            _ = try choice.build(inputShape: try benchShape(choice), classes: 10)
        } catch let error as ValidationError { throw error } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The input shape: --input, else the preset's own, else 1x28x28.
    private func benchShape(_ choice: ModelChoice) throws -> [Int] {
        if let input { return try parseInputShape(input) }
        return choice.file == nil ? benchmarkInputShape(choice.preset) : [1, 28, 28]
    }

    func run() throws {
        let communicator = try makeCommunicator()
        let threads = threadsPerRank(requested: self.threads, communicator: communicator).threads
        setKernelThreads(threads)
        BLAS.precision = precision
        if !inference.isEmpty { return try runInference(communicator: communicator, threads: threads) }
        if generation.generate {
            do { return try generation.run(model: model, repetitions: repetitions, threads: threads, json: json) } catch {
                printError("\(error)")
                throw ExitCode(error is ValidationError || error is ModelShapeError ? 64 : 1)
            }
        }
        let choice = try ModelChoice(model)
        let tokens = generation.tokenBenchmark(choice)
        let batch = batchSize ?? (tokens != nil ? 12 : choice.file == nil && choice.preset == .mlpLarge ? 256 : 64)
        let counter: (() -> AllocationCounts)? = distrain_allocation_counter_active() != 0
            ? { AllocationCounts(own: distrain_allocation_count(), blas: distrain_blas_allocation_count(),
                                 mpi: distrain_mpi_allocation_count()) } : nil
        try runCollectively(communicator) {
            if let tokens { try checkMemory(choice, tokens: tokens, perRankBatch: batch, communicator: communicator) }
            let result = try runBenchmark(model: choice.preset, modelFile: choice.file, inputShape: try benchShape(choice),
                                          perRankBatch: batch, steps: steps, repetitions: repetitions, threads: threads,
                                          communicator: communicator, gradientSum: gradientSum, wire: wire, overlap: overlap,
                                          bucketMegabytes: bucketMB,
                                          fault: try Fault.fromEnvironment(), sparsity: sparsity, tokens: tokens, sharding: shard,
                                          recompute: recompute, exactSums: exactSums, allocationCounts: counter)
            // Every rank's median, for the per-rank and total figures.
            let median = result.imagesPerSecond.sorted()[result.imagesPerSecond.count / 2]
            let perRank = try communicator.allGather([Int64(median.rounded()), Int64(result.peakResidentMegabytes.rounded()),
                                                      Int64(result.sgemmGigaflops * 1000)])
            if communicator.isCoordinator { report(result, median: median, perRank: perRank, positions: tokens?.context) }
        }
    }

    /// `positions`: a language model's context (tokens/s and MFU are reported beside samples/s).
    private func report(_ r: BenchmarkResult, median: Double, perRank: [[Int64]], positions: Int?) {
        if json {
            printJSON(r, median: median, perRank: perRank, positions: positions)
        } else {
            printText(r, median: median, perRank: perRank, positions: positions)
        }
        fflush(nil)
    }

    /// The numbers both reports show: samples/s over all ranks, ms per step, and rank 0's model speed against
    /// rank 0's own SGEMM speed in the same run.
    private func derived(_ r: BenchmarkResult, median: Double, perRank: [[Int64]])
        -> (total: Double, stepMilliseconds: Double, gigaflopsPerImage: Double, gigaflops: Double, fractionOfPeak: Double) {
        let total = perRank.reduce(0.0) { $0 + Double($1[0]) }
        let gigaflopsPerImage = Double(r.trainingFlopsPerImage) / 1e9, gigaflops = median * gigaflopsPerImage
        return (total, r.millisecondsPerStep.reduce(0) { $0 + $1.1 }, gigaflopsPerImage, gigaflops, gigaflops / r.sgemmGigaflops)
    }

    private func printJSON(_ r: BenchmarkResult, median: Double, perRank: [[Int64]], positions: Int?) {
        let (total, stepMilliseconds, gigaflopsPerImage, gigaflops, fractionOfPeak) = derived(r, median: median, perRank: perRank)
        var fields: [(String, JSONValue)] = [
            ("model", .string(r.model)), ("input_shape", .array(r.inputShape.map { .int($0) })),
            ("batch_per_rank", .int(r.perRankBatch)), ("global_batch", .int(r.globalBatch)),
            ("world_size", .int(r.worldSize)), ("threads_per_rank", .int(r.threads)), ("gradient_sum", .string(r.gradientSum)),
            ("exact_sums", .bool(exactSums)),
            ("steps", .int(r.steps)), ("repetitions", .int(r.imagesPerSecond.count)),
            ("sparsity", sparsity.map { .number($0) } ?? .null),
            ("images_per_second", .number(median)),
            ("images_per_second_min", .number(r.imagesPerSecond.min() ?? 0)),
            ("images_per_second_max", .number(r.imagesPerSecond.max() ?? 0)),
            ("images_per_second_per_rank", .array(perRank.map { .integer($0[0]) })),
            ("images_per_second_total", .number(total)),
            ("ms_per_step", .object(r.millisecondsPerStep.map { ($0.0, .number($0.1)) } + [("total", .number(stepMilliseconds))])),
            ("allocations_per_step", r.allocationsPerStep.map { .number($0) } ?? .null),
            ("blas_allocations_per_step", r.blasAllocationsPerStep.map { .number($0) } ?? .null),
            ("mpi_allocations_per_step", r.mpiAllocationsPerStep.map { .number($0) } ?? .null),
            ("training_gflop_per_image", .number(gigaflopsPerImage)),
            ("gflops_per_second", .number(gigaflops)),
            ("sgemm_gflops_per_second_per_rank", .array(perRank.map { .number(Double($0[2]) / 1000) })),
            ("fraction_of_sgemm_peak", .number(fractionOfPeak)),
            ("peak_rss_mb_per_rank", .array(perRank.map { .integer($0[1]) })),
            ("synthetic_dataset_mb", .number(r.datasetMegabytes)),
            ("blas", .string(BLAS.summary)),
        ]
        if let positions {
            fields += [("context", .int(positions)), ("tokens_per_second", .number(median * Double(positions))),
                       ("tokens_per_second_total", .number(total * Double(positions))), ("mfu", .number(fractionOfPeak))]
        }
        fields.append(("load_average", .string(loadAverage())))
        print(JSONValue.object(fields).serialized)
    }

    private func printText(_ r: BenchmarkResult, median: Double, perRank: [[Int64]], positions: Int?) {
        let (total, stepMilliseconds, gigaflopsPerImage, gigaflops, fractionOfPeak) = derived(r, median: median, perRank: perRank)
        let ranks = "\(r.worldSize) rank\(r.worldSize == 1 ? "" : "s")"
        let threads = "\(r.threads) BLAS thread\(r.threads == 1 ? "" : "s")"
        print("distrain bench: \(r.model) \(r.inputShape.map(String.init).joined(separator: "x")), batch \(r.perRankBatch) per "
            + "rank × \(ranks), \(threads) per rank, \(r.steps) steps × \(r.imagesPerSecond.count) repetitions")
        print("  \(positions == nil ? "images" : "windows")/s (rank 0): median \(grouped(median)), min "
            + "\(grouped(r.imagesPerSecond.min() ?? 0)), max \(grouped(r.imagesPerSecond.max() ?? 0))")
        if let positions {
            print("  tokens/s (rank 0): median \(grouped(median * Double(positions))); over all ranks "
                + "\(grouped(total * Double(positions))); MFU \(format(100 * fractionOfPeak, 1))% (training FLOPs per token "
                + "against the SGEMM peak below)")
        }
        if r.worldSize > 1 {
            print("  images/s total over \(r.worldSize) ranks: \(grouped(total)) (per rank: "
                + "\(perRank.map { grouped(Double($0[0])) }.joined(separator: ", "))); gradients: \(r.gradientSum)")
        }
        print("  ms per step: " + r.millisecondsPerStep.map { "\($0.0) \(format($0.1, 3))" }.joined(separator: ", ")
            + ", total \(format(stepMilliseconds, 3))")
        print("  compute (rank 0): \(format(gigaflops, 1)) GFLOP/s = \(format(100 * fractionOfPeak, 1))% of the "
            + "\(format(r.sgemmGigaflops, 1)) GFLOP/s SGEMM peak measured just after (best of ten 1024³ calls) "
            + "(\(format(gigaflopsPerImage * 1000, 3)) MFLOP per image)")
        func counted(_ value: Double?) -> String { value.map { format($0, 1) } ?? "not counted" }
        print("  heap allocations per steady-state step: \(counted(r.allocationsPerStep)) by distrain, "
            + "\(counted(r.blasAllocationsPerStep)) inside BLAS, \(counted(r.mpiAllocationsPerStep)) inside MPI")
        print("  peak resident memory per rank: \(perRank.map { "\($0[1]) MiB" }.joined(separator: ", ")) (including the "
            + "\(format(r.datasetMegabytes, 1)) MiB synthetic dataset)")
        print("  BLAS: \(BLAS.summary); load average \(loadAverage())")
    }

    private func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

extension BenchCommand {
    /// The memory preflight for a language model's benchmark (as training runs it): refused on every rank, before
    /// anything is allocated, when this host's ranks would not fit.
    fileprivate func checkMemory(_ choice: ModelChoice, tokens: TokenBenchmark, perRankBatch: Int,
                                 communicator: Communicator) throws {
        var configuration = TrainingConfiguration(dataset: "bench", model: choice.preset)
        configuration.gptPreset = choice.gpt
        configuration.modelFile = choice.file
        try communicator.collectively {
            let built = try configuration.builtModel(inputShape: [tokens.context], outputShape: [tokens.context, tokens.vocabulary])
            let sharedMemory = communicator.kind == "MPI" && gradientSum == .auto ? communicator.localSize : 1
            let plan = MemoryPlan(layers: built.layers, inputCount: tokens.context, optimizer: .adamw, momentum: 0,
                                  sharding: shard, worldSize: communicator.size, localRanks: communicator.localSize,
                                  batch: perRankBatch, sharedMemoryRanks: sharedMemory, writesCheckpoints: false,
                                  recompute: recompute)
            try plan.check(available: MemoryPlan.availableBytes())
        }
    }
}
