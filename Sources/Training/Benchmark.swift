import Collectives
import Compression
import Datasets
import Foundation
import Layers
import Tensors

/// What `distrain bench` measures for one model on this rank.
public struct BenchmarkResult: Sendable {
    /// The preset's name or the spec file's path.
    public var model: String
    public var inputShape: [Int]
    /// Global batch (per-rank batch × ranks).
    public var globalBatch: Int
    public var perRankBatch: Int
    public var worldSize: Int
    public var threads: Int
    public var steps: Int
    /// This rank's images/s in each repetition.
    public var imagesPerSecond: [Double]
    /// Milliseconds per step by phase: data, forward (with the loss), backward, gradient_sync, optimizer.
    public var millisecondsPerStep: [(String, Double)]
    /// Heap allocations per steady-state step made by distrain's own code (nil when the counter is not
    /// linked in): must be 0.
    public var allocationsPerStep: Double?
    /// Heap allocations per steady-state step made inside the BLAS library (OpenBLAS 0.3.21's AVX-512
    /// small-matrix kernels malloc on every call; 0 on AVX2 hosts); nil when not counted.
    public var blasAllocationsPerStep: Double?
    /// Heap allocations per steady-state step made inside the step's MPI reductions (Open MPI's; the
    /// shared-memory gradient sum makes none); nil when not counted.
    public var mpiAllocationsPerStep: Double?
    /// Peak resident memory of this process up to the end of the timed steps, MiB (includes the
    /// synthetic dataset, `datasetMegabytes`).
    public var peakResidentMegabytes: Double
    /// Size of the synthetic training set held as bytes, MiB.
    public var datasetMegabytes: Double
    /// Floating-point operations of one training image (forward, weight and input gradients).
    public var trainingFlopsPerImage: Int
    /// This rank's best SGEMM speed on 1024×1024 matrices with the same threads, measured in the
    /// same run right after the timed steps: the peak the model's GFLOP/s is a fraction of.
    public var sgemmGigaflops: Double
    /// How gradients were summed over ranks (SumArena.summary).
    public var gradientSum: String
}

/// The best GFLOP/s of `repetitions` n×n×n SGEMMs (after one warm-up) with the current BLAS threads:
/// the machine's attainable peak. The best, not the median: on a shared VM a single call is easily
/// slowed by a neighbour, and a peak estimate should not be.
public func measureSgemmGigaflops(size n: Int = 1024, repetitions: Int = 10) -> Double {
    let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n), b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<(n * n) { a[i] = Float(i % 101) / 101 - 0.5; b[i] = Float(i % 97) / 97 - 0.5 }
    c.initialize(repeating: 0, count: n * n)
    var rates: [Double] = []
    for repetition in 0...repetitions {  // the first call warms up (threads, pages, caches)
        let start = monotonicSeconds()
        gemm(.none, .none, m: n, n: n, k: n, a: a, b: b, beta: 0, c: c)
        let seconds = monotonicSeconds() - start
        if repetition > 0 { rates.append(2 * Double(n * n * n) / seconds / 1e9) }
    }
    return rates.max() ?? 0
}

/// The input shape `distrain bench` uses for a model: LeNet as the seed's CIFAR-10 net, the rest on 28x28.
public func benchmarkInputShape(_ model: ModelName) -> [Int] {
    model == .lenet ? [3, 32, 32] : [1, 28, 28]
}

/// Heap allocations since the process started: outside library calls (distrain, Swift, Foundation), and
/// inside BLAS and MPI calls.
public struct AllocationCounts: Sendable {
    public var own: UInt64
    public var blas: UInt64
    public var mpi: UInt64

    public init(own: UInt64, blas: UInt64, mpi: UInt64 = 0) {
        self.own = own
        self.blas = blas
        self.mpi = mpi
    }
}

/// Trains `model` on synthetic data with the production step (Trainer.trainEpoch; `fault` as in training): a warm-up epoch,
/// then `repetitions` timed epochs of `steps` steps each. Allocations per steady-state step are
/// (allocations in a 2·steps epoch − allocations in a steps epoch) / steps, which cancels the
/// per-epoch setup; `allocationCounts` reads the process's allocation counters. `sparsity`: under a global
/// pruning mask, as `distrain prune` fine-tunes.
public func runBenchmark(model: ModelName, modelFile: ModelFile? = nil, inputShape: [Int]? = nil, perRankBatch: Int, steps: Int,
                         repetitions: Int, threads: Int, communicator: Communicator, gradientSum: SumMethod = .auto,
                         wire: WireFormat = .fp32, overlap: Bool = false, bucketMegabytes: Double = 4, fault: Fault? = nil,
                         sparsity: Double? = nil,
                         tokens: TokenBenchmark? = nil, sharding: ShardingStage? = nil, recompute: Bool = false,
                         exactSums: Bool = false, allocationCounts: (() -> AllocationCounts)?) throws -> BenchmarkResult {
    let shape = tokens.map { [$0.context] } ?? inputShape ?? benchmarkInputShape(model)
    let globalBatch = perRankBatch * communicator.size
    func syntheticData(samples: Int) -> DatasetSplits {
        // Seeded noise; the labels are learnable only by chance, which does not matter for speed.
        var generator = SeededGenerator(seed: 7, keys: 1)
        let size = shape.reduce(1, *)
        let pixels = (0..<(samples * size)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let labels = (0..<samples).map { _ in UInt8(generator.next() % 10) }
        let train = ImageDataset(shape: shape, pixels: pixels, labels: labels, classNames: mnistClassNames)
        return DatasetSplits(name: "synthetic", train: train, test: train.prefix(1))
    }
    func trainer(steps: Int) throws -> Trainer {
        var configuration = TrainingConfiguration(dataset: "synthetic", model: model, epochs: 1, globalBatchSize: globalBatch)
        configuration.modelFile = modelFile
        configuration.bucketMegabytes = bucketMegabytes
        configuration.sharding = sharding
        configuration.recompute = recompute ? true : nil
        configuration.exactSums = exactSums ? true : nil
        if let tokens {
            return try tokens.trainer(configuration: configuration, windows: steps * globalBatch, communicator: communicator,
                                      threads: threads, fault: fault, gradientSum: gradientSum, wire: wire, overlap: overlap)
        }
        let data = syntheticData(samples: steps * globalBatch), model = try configuration.makeModel(for: data, communicator: communicator)
        let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model, communicator: communicator), data: data,
                                  configuration: configuration, communicator: communicator, threadsPerRank: threads,
                                  fault: fault, gradientSum: gradientSum, wire: wire, overlap: overlap)
        // A pruning mask, as `distrain prune` fine-tunes: its cost and its allocations are measured with the step's.
        if let sparsity { trainer.updateMask = PruningMask(store: model.parameters, sparsity: sparsity, scope: .global).keep }
        return trainer
    }
    let timed = try trainer(steps: steps)
    try timed.trainEpoch(0)  // warm-up: buffers planned, BLAS threads started, pages touched
    var rates: [Double] = []
    var phases: [TrainingPhase: Double] = [:]
    for repetition in 0..<repetitions {
        try communicator.barrier()
        let before = timed.tracker.totalSeconds()
        let start = monotonicSeconds()
        try timed.trainEpoch(repetition + 1)
        let seconds = monotonicSeconds() - start
        let spent = timed.tracker.totalSeconds().since(before)
        for phase in [TrainingPhase.data, .forward, .backward, .gradientSum, .optimizer] { phases[phase, default: 0] += spent[phase] }
        rates.append(Double(steps * perRankBatch) / seconds)
    }
    // The high-water mark of the timed run: synthetic dataset, model, buffers — before the extra
    // trainers below that count allocations.
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    var allocations: (own: Double, blas: Double, mpi: Double)?
    // Counting builds two more trainers (epochs of N and 2N steps): for models of more than 50 M parameters that
    // would triple the memory the benchmark measures, so they are not counted (null in the JSON).
    if let allocationCounts, timed.model.parameters.count <= 50_000_000 {
        let short = try trainer(steps: steps), long = try trainer(steps: 2 * steps)
        try short.trainEpoch(0); try long.trainEpoch(0)  // warm-up both
        let a0 = allocationCounts(); try short.trainEpoch(1); let a1 = allocationCounts()
        try long.trainEpoch(1); let a2 = allocationCounts()
        func perStep(_ count: (AllocationCounts) -> UInt64) -> Double {
            (Double(count(a2) - count(a1)) - Double(count(a1) - count(a0))) / Double(steps)
        }
        allocations = (perStep(\.own), perStep(\.blas), perStep(\.mpi))
    }
    let stepCount = Double(steps * repetitions)
    let split: [(String, Double)] = [("data", .data), ("forward", .forward), ("backward", .backward),
                                     ("gradient_sync", .gradientSum), ("optimizer", .optimizer)].map { name, phase in
        (name, 1000 * (phases[phase] ?? 0) / stepCount)
    }
    let sgemm = measureSgemmGigaflops()
    return BenchmarkResult(model: tokens?.gpt?.rawValue ?? modelFile?.path ?? model.rawValue, inputShape: shape,
                           globalBatch: globalBatch, perRankBatch: perRankBatch,
                           worldSize: communicator.size, threads: threads, steps: steps, imagesPerSecond: rates,
                           millisecondsPerStep: split, allocationsPerStep: allocations?.own,
                           blasAllocationsPerStep: allocations?.blas, mpiAllocationsPerStep: allocations?.mpi,
                           peakResidentMegabytes: Double(usage.ru_maxrss) / 1024,
                           datasetMegabytes: Double(steps * globalBatch * shape.reduce(1, *) * (tokens == nil ? 1 : 4)) / 1_048_576,
                           trainingFlopsPerImage: tokens?.flopsPerSample(timed.model) ?? timed.model.trainingFlopsPerSample,
                           sgemmGigaflops: sgemm,
                           gradientSum: timed.gradientSumSummary)
}

/// A language model's benchmark: random token windows, next-token loss, AdamW with clipping at 1 and decay on
/// matrices only — nanoGPT's training step, as `../shared/reference/lm/step_time.py` times it.
public struct TokenBenchmark: Sendable {
    public let vocabulary: Int
    public let context: Int
    /// The GPT preset, if any (its FLOPs per token are the 6N + 6·L·C·T of nanoGPT's MFU).
    public let gpt: GPTPreset?

    public init(vocabulary: Int, context: Int, gpt: GPTPreset?) {
        self.vocabulary = vocabulary
        self.context = context
        self.gpt = gpt
    }

    func trainer(configuration base: TrainingConfiguration, windows: Int, communicator: Communicator, threads: Int,
                 fault: Fault?, gradientSum: SumMethod, wire: WireFormat, overlap: Bool) throws -> Trainer {
        var configuration = base
        configuration.gptPreset = gpt
        configuration.optimizer = .adamw
        configuration.clipGradientNorm = 1
        configuration.decaysMatricesOnly = true
        let windows = SyntheticTokenDataset(windows: windows, contextLength: context, vocabularySize: vocabulary)
        let objective = NextTokenObjective(vocabularySize: vocabulary, positions: context)
        let model = try configuration.makeModel(inputShape: [context], outputShape: objective.outputShape,
                                                communicator: communicator)
        return try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model, communicator: communicator),
                           data: TrainingData(name: "synthetic", train: windows, test: windows.firstSamples(1)),
                           objective: objective, configuration: configuration, communicator: communicator,
                           threadsPerRank: threads, fault: fault, gradientSum: gradientSum, wire: wire, overlap: overlap)
    }

    /// Training FLOPs of one window: the preset's 6N + 6·L·C·T per token, else the model's own count.
    func flopsPerSample(_ model: Sequential) -> Int {
        guard let gpt else { return model.trainingFlopsPerSample }
        return Int(gpt.trainingFlopsPerToken(vocabulary: vocabulary, context: context)) * context
    }
}
