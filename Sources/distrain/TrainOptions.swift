import Tensors
import ArgumentParser
import Collectives
import Datasets
import Layers
import Optimizers
import Training

extension ModelName: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension NonFinitePolicy: ExpressibleByArgument {}
extension SumMethod: ExpressibleByArgument {}
extension WireFormat: ExpressibleByArgument {}
extension TestTimeAugmentation: ExpressibleByArgument {}
extension MonitorMetric: ExpressibleByArgument {}

/// Flags shared by every training subcommand.
struct TrainOptions: ParsableArguments {
    @OptionGroup var resources: ThreadOptions

    @OptionGroup var dataLocation: DataLocationOptions

    /// Only for --help and for a name no recipe has (the known ones are expanded before parsing).
    @Option(help: ArgumentHelp(stringLiteral: Recipe.help))
    var recipe: Recipe?

    @Option(help: ArgumentHelp(stringLiteral: ModelChoice.help))
    var model = "mlp"

    @Option(help: "Passes over the training set.")
    var epochs: Int = 10

    @Option(name: .customLong("batch-size"), help: "GLOBAL batch size: samples per step over all ranks together.")
    var batchSize: Int = 64

    @Option(help: "Optimizer: sgd, adam or adamw.")
    var optimizer: OptimizerKind = .adam

    @Option(help: "Learning rate.")
    var lr: Float = 1e-3

    @Option(help: "SGD momentum (0 disables it).")
    var momentum: Float = 0

    @Flag(help: "Use Nesterov momentum with SGD (needs --momentum > 0).")
    var nesterov = false

    @Option(name: .customLong("weight-decay"), help: "Weight decay: L2 for sgd and adam, decoupled for adamw.")
    var weightDecay: Float = 0

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("Train for this many optimizer steps instead of "
        + "--epochs (the cosine schedule spans them; the last epoch may be partial)."))
    var maxSteps: Int?

    @Option(name: .customLong("warmup-steps"), help: "Linear learning-rate warm-up over this many steps.")
    var warmupSteps: Int?

    @Option(name: .customLong("clip-grad-norm"), help: ArgumentHelp("Scale the gradients down when their global L2 "
        + "norm exceeds this (after the sum over ranks), as torch.nn.utils.clip_grad_norm_."))
    var clipGradNorm: Float?

    @Option(help: "Adam and AdamW: decay rate of the first moment (default 0.9).")
    var beta1: Float?

    @Option(help: "Adam and AdamW: decay rate of the second moment (default 0.999; nanoGPT's character recipe 0.99).")
    var beta2: Float?

    @Option(help: ArgumentHelp("Learning-rate schedule: constant, step (×gamma every --step-epochs), cosine, or "
        + "plateau (×--plateau-factor when --monitor stalls)."))
    var schedule: ScheduleKind = .constant

    @Option(name: .customLong("warmup-epochs"), help: "Epochs of linear learning-rate warmup.")
    var warmupEpochs: Int = 0

    @Option(name: .customLong("step-epochs"), help: "Period of the step schedule in epochs (default: a third of the run).")
    var stepEpochs: Int?

    @Option(help: "Factor of the step schedule.")
    var gamma: Float = 0.1

    @Option(help: "Seed for initialization, shuffling and dropout.")
    var seed: UInt64 = 42

    @Option(name: .customLong("train-limit"), help: "Train on the first N training samples only.")
    var trainLimit: Int?

    @Option(name: .customLong("test-limit"), help: "Evaluate on the first N test samples only.")
    var testLimit: Int?

    @Option(help: "Write JSON Lines metrics (start, epoch, end events) to this file.")
    var metrics: String?

    @Option(name: .customLong("bucket-mb"), help: "Size of each gradient allreduce between hosts in MiB.")
    var bucketMB: Double = 4

    @Option(name: .customLong("gradient-sum"), help: ArgumentHelp("auto: sum gradients in shared memory within each "
        + "host (allreduce between hosts); allreduce: MPI_Allreduce only."))
    var gradientSum: SumMethod = .auto

    @Option(help: ArgumentHelp("Gradient format between hosts: fp32 (exact), fp16 or bf16 (half the bytes; lossy, so "
        + "N ranks no longer equal 1 rank bitwise)."))
    var wire: WireFormat = .fp32

    @Option(name: .customLong("local-ranks"), help: ArgumentHelp("Local mode (no mpirun): train as this many "
        + "data-parallel ranks, threads of this one process, each with its share of every batch and 1 BLAS thread "
        + "(cores ÷ ranks); the same results as mpirun -n N (1e-5). For models whose own kernels use one core (convolutions)."))
    var localRanks = 1

    @Flag(help: ArgumentHelp("Start each bucket's gradient sum between hosts as soon as backward has finished its "
        + "layers (as DDP), instead of after backward. Same result to the bit."))
    var overlap = false

    @Option(name: .customLong("checkpoint-dir"), help: ArgumentHelp("Write a checkpoint here after every epoch "
        + "(atomically; keeps the newest --keep plus 'best')."))
    var checkpointDirectory: String?

    @Option(name: .customLong("checkpoint-every"), help: "Also write a checkpoint every N optimizer steps.")
    var checkpointEvery: Int?

    @Option(help: "How many recent checkpoints to keep (the best one is kept as well).")
    var keep: Int = 3

    @Option(help: "Continue from a checkpoint directory, or 'auto' for the newest one in --checkpoint-dir.")
    var resume: String?

    @Flag(help: ArgumentHelp("Start afresh in a --checkpoint-dir that holds another run's checkpoints (they are replaced "
        + "and pruned as this run writes its own); without it such a folder is refused."))
    var overwrite = false

    @Option(name: .customLong("collective-timeout"), help: ArgumentHelp("Seconds a rank may stay in one phase (or "
        + "wait for the others) before it reports where it is and ends the job."))
    var collectiveTimeout: Double = 300

    @Option(name: .customLong("on-nonfinite"), help: ArgumentHelp("On a NaN/Inf loss or gradient: stop (name the "
        + "rank, step and samples) or skip the update (10 in a row stop)."))
    var onNonFinite: NonFinitePolicy = .stop

    @Flag(inversion: .prefixedNo, help: ArgumentHelp("Augment training images: random crop from a 4-pixel zero-padded "
        + "image and random horizontal flip (default: on for cifar10, off otherwise)."))
    var augment: Bool?

    @Option(name: .customLong("augment-padding"), help: ArgumentHelp("The zero pixels on each side before the random "
        + "crop (default 4; 0: horizontal flips only). Turns --augment on; --no-augment still turns it off (so it can "
        + "override a recipe)."))
    var augmentPadding: Int?

    @Option(help: ArgumentHelp("Test-time augmentation of every evaluation (validation, test, and by default "
        + "evaluate/predict/compare of the checkpoint): none, or flip (average the logits of each image and its "
        + "mirror image)."))
    var tta: TestTimeAugmentation = .none

    @Option(help: ArgumentHelp("Shard over ranks (ZeRO stages 1-3): 'optimizer' keeps each rank's optimizer state for "
        + "its slice of the parameters only, 'gradients' also its slice of the gradients (reduce-scattered layer by layer), "
        + "'parameters' also of the parameters (gathered layer by layer): 16 bytes per parameter down to 16/N. The "
        + "replicated run's results; checkpoints any world size resumes."))
    var shard: ShardingStage?

    @Flag(help: ArgumentHelp("Activation recomputation: the residual blocks share their inner buffers and run their "
        + "forward again just before their backward, so only each block's input and output are kept (about a third "
        + "more arithmetic; the same numbers)."))
    var recompute = false

    @Flag(help: ArgumentHelp("Sum gradients and BatchNorm statistics as exact integers (each sample's terms in "
        + "fixed point) and run GEMMs one sample per call, so N ranks give one rank's parameters bit for bit in any "
        + "regime; slower (BENCHMARKS.md). Replicated or --shard optimizer."))
    var exactSums = false

    @Option(help: ArgumentHelp("GEMM arithmetic: fp32, or bf16 (operands rounded to bfloat16, sums and weights and "
        + "optimizer state in fp32; about 2x faster GEMMs on CPUs with AVX512-BF16 or AMX, refused elsewhere)."))
    var precision: MatmulPrecision = .fp32

    @Option(help: ArgumentHelp("Gradient accumulation: run each step's batch in K micro-batches (K times less activation "
        + "memory), summing their gradients before the one gradient sum over ranks; --batch-size stays the whole step's."))
    var accumulate = 1

    @Option(name: .customLong("eval-every-steps"), help: ArgumentHelp("Also evaluate every N optimizer steps inside "
        + "an epoch (the validation split, else the test set; printed and in --metrics as 'eval' events)."))
    var evalEverySteps: Int?

    @Option(name: .customLong("eval-every"), help: ArgumentHelp("Evaluate (the validation split, else the test set) "
        + "after every N-th epoch and after the last, as Keras' validation_freq; early stopping and the plateau "
        + "schedule then count evaluations."))
    var evalEvery = 1

    @Option(name: .customLong("val-split"), help: ArgumentHelp("Hold out this fraction of the training set "
        + "(stratified by class, fixed by --seed) for validation: epochs are scored on it, 'best' is chosen on it, "
        + "the test set is scored once at the end."))
    var validationSplit: Double?

    @Option(help: ArgumentHelp("The validation metric that picks 'best', --early-stop and --schedule plateau watch: "
        + "val_loss or val_accuracy (default val_loss)."))
    var monitor: MonitorMetric?

    @Option(name: .customLong("early-stop"), help: ArgumentHelp("Stop after this many epochs without improvement of "
        + "--monitor (needs --val-split or --kfold)."))
    var earlyStop: Int?

    @Option(name: .customLong("plateau-factor"), help: "--schedule plateau: multiply the learning rate by this when --monitor stalls.")
    var plateauFactor: Float = 0.1

    @Option(name: .customLong("plateau-patience"), help: "--schedule plateau: epochs without improvement before reducing.")
    var plateauPatience: Int = 2

    @Option(name: .customLong("min-lr"), help: ArgumentHelp("--schedule plateau: never reduce the learning rate "
        + "below this; --schedule cosine: where the cosine ends (nanoGPT's min_lr)."))
    var minimumLearningRate: Float = 0

    @Option(name: .customLong("label-smoothing"), help: ArgumentHelp("Label smoothing of the training loss, as "
        + "nn.CrossEntropyLoss(label_smoothing=…): targets (1 − ε)·onehot + ε/classes."))
    var labelSmoothing: Float = 0

    @Flag(name: .customLong("test-each-epoch"), help: ArgumentHelp("With a validation split, also score the test set "
        + "after every epoch (it is always scored at the end)."))
    var testEachEpoch = false

    @Option(help: ArgumentHelp("k-fold cross-validation: train K times, each fold of the training set held out once "
        + "(stratified); prints per-fold and mean ± sd validation metrics. Needs --checkpoint-dir (one folder per "
        + "fold; resumable)."))
    var kfold: Int?

    @Flag(inversion: .prefixedNo, help: ArgumentHelp("Show a progress bar when stdout is a terminal (under mpirun it "
        + "always looks like one; pass --no-progress when piping)."))
    var progress = true

    func validate() throws {
        // Known recipes are expanded before parsing; one left here would be silently ignored.
        if let recipe {
            let given = CommandLine.arguments.filter { $0 == "--recipe" || $0.hasPrefix("--recipe=") }.count
            if given > 1 {
                throw ValidationError("--recipe is given \(given) times; give one recipe (any of its flags can then be "
                    + "overridden one by one)")
            }
            throw ValidationError("--recipe \(recipe.rawValue) is not expanded here; give its flags "
                + "instead: \(recipe.flags.joined(separator: " "))")
        }
        if epochs < 0 { throw ValidationError("--epochs must be 0 or more, got \(epochs)") }
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1, got \(maxSteps)") }
        if let warmupSteps, warmupSteps < 0 { throw ValidationError("--warmup-steps must be 0 or more, got \(warmupSteps)") }
        if warmupSteps != nil && warmupEpochs > 0 { throw ValidationError("give --warmup-steps or --warmup-epochs, not both") }
        if schedule == .cosine || schedule == .plateau, minimumLearningRate > lr {
            throw ValidationError("--min-lr \(minimumLearningRate) is above --lr \(lr); the schedule only lowers the rate")
        }
        if let clipGradNorm, !(clipGradNorm > 0 && clipGradNorm.isFinite) {
            throw ValidationError("--clip-grad-norm must be a positive number, got \(clipGradNorm)")
        }
        for (flag, beta) in [("--beta1", beta1), ("--beta2", beta2)] {
            guard let beta else { continue }
            if !(beta >= 0 && beta < 1) { throw ValidationError("\(flag) must be in [0, 1), got \(beta)") }
            if optimizer == .sgd { throw ValidationError("\(flag) is Adam's; pass --optimizer adam or adamw") }
        }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if localRanks < 1 || localRanks > 64 { throw ValidationError("--local-ranks must be between 1 and 64, got \(localRanks)") }
        if !(lr.isFinite && lr > 0) { throw ValidationError("--lr must be a positive number, got \(lr)") }
        if !(momentum.isFinite && momentum >= 0 && momentum < 1) {
            throw ValidationError("--momentum must be in [0, 1), got \(momentum)")
        }
        if nesterov && (optimizer != .sgd || momentum == 0) {
            throw ValidationError("--nesterov needs --optimizer sgd and --momentum > 0")
        }
        if !(weightDecay.isFinite && weightDecay >= 0) {
            throw ValidationError("--weight-decay must be 0 or more, got \(weightDecay)")
        }
        if warmupEpochs < 0 { throw ValidationError("--warmup-epochs must be 0 or more, got \(warmupEpochs)") }
        if let stepEpochs, stepEpochs < 1 { throw ValidationError("--step-epochs must be at least 1, got \(stepEpochs)") }
        if !(gamma.isFinite && gamma > 0) { throw ValidationError("--gamma must be a positive number, got \(gamma)") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1, got \(trainLimit)") }
        if let augmentPadding, augmentPadding < 0 || augmentPadding > 64 {
            throw ValidationError("--augment-padding must be between 0 and 64 pixels, got \(augmentPadding)")
        }
        try validateRunFlags()
        try requireSupported(precision)
    }

    /// Evaluation, the collectives, checkpoints and resuming.
    func validateRunFlags() throws {
        if evalEvery < 1 { throw ValidationError("--eval-every must be at least 1 epoch, got \(evalEvery)") }
        if !(1...4096).contains(accumulate) { throw ValidationError("--accumulate must be in 1...4096, got \(accumulate)") }
        if let evalEverySteps, evalEverySteps < 1 {
            throw ValidationError("--eval-every-steps must be at least 1, got \(evalEverySteps)")
        }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1, got \(testLimit)") }
        if !(bucketMB.isFinite && bucketMB > 0 && bucketMB <= 1024) {
            throw ValidationError("--bucket-mb must be in (0, 1024], got \(bucketMB)")
        }
        if !(collectiveTimeout.isFinite && collectiveTimeout >= 1 && collectiveTimeout <= 86_400) {
            throw ValidationError("--collective-timeout must be between 1 and 86400 seconds, got \(collectiveTimeout)")
        }
        do { _ = try Fault.fromEnvironment() } catch { throw ValidationError("\(error)") }
        if let shard, shard != .optimizer, wire != .fp32 || overlap {
            throw ValidationError("--\(overlap ? "overlap" : "wire \(wire.rawValue)") changes the replicated gradient sum; --shard "
                + "\(shard.rawValue) reduce-scatters each layer's gradients in fp32 during backward instead — drop one of them")
        }
        try validateExactSums()
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1, "
            + "got \(checkpointEvery)") }
        if checkpointEvery != nil && checkpointDirectory == nil { throw ValidationError("--checkpoint-every needs --checkpoint-dir DIR") }
        if keep < 1 { throw ValidationError("--keep must be at least 1, got \(keep)") }
        if let checkpointDirectory, checkpointDirectory.isEmpty { throw ValidationError("--checkpoint-dir needs a directory") }
        if let resume, resume.isEmpty { throw ValidationError("--resume needs a checkpoint directory or 'auto'") }
        if resume == "auto" && checkpointDirectory == nil { throw ValidationError("--resume auto needs --checkpoint-dir DIR") }
        if overwrite && resume != nil { throw ValidationError("--overwrite starts afresh and --resume continues; use one") }
        try validateSelection()
        _ = try ModelChoice(model)
        if let metrics, metrics.isEmpty { throw ValidationError("--metrics needs a file name") }
    }

    /// Model selection's flags: the ranges and the combinations that make sense.
    func validateSelection() throws {
        if let validationSplit, !(validationSplit > 0 && validationSplit < 1) {
            throw ValidationError("--val-split must be a fraction in (0, 1), got \(validationSplit)")
        }
        if let kfold {
            if kfold < 2 || kfold > 100 { throw ValidationError("--kfold must be between 2 and 100, got \(kfold)") }
            if validationSplit != nil { throw ValidationError("--kfold and --val-split both choose the validation data; use one") }
            if checkpointDirectory == nil { throw ValidationError("--kfold needs --checkpoint-dir DIR (each fold gets DIR/fold-K)") }
        }
        let hasValidation = validationSplit != nil || kfold != nil
        if let earlyStop, earlyStop < 1 { throw ValidationError("--early-stop must be at least 1 epoch, got \(earlyStop)") }
        if !hasValidation {
            if monitor != nil { throw ValidationError("--monitor needs --val-split F or --kfold K: it watches a validation metric") }
            if earlyStop != nil { throw ValidationError("--early-stop needs --val-split F or --kfold K: it watches a validation metric") }
            if schedule == .plateau { throw ValidationError("--schedule plateau needs --val-split F or --kfold K: it "
                + "watches a validation metric") }
        }
        if dataLocation.task == .regression && monitor == .valAccuracy { throw ValidationError("--monitor "
            + "val_accuracy means nothing for --task regression; use val_loss") }
        if dataLocation.task == .regression && labelSmoothing > 0 { throw ValidationError("--label-smoothing is for "
            + "classification, not --task regression") }
        if !(labelSmoothing >= 0 && labelSmoothing < 1) { throw ValidationError("--label-smoothing must be in [0, 1), "
            + "got \(labelSmoothing)") }
        if !(plateauFactor > 0 && plateauFactor < 1) { throw ValidationError("--plateau-factor must be in (0, 1), got \(plateauFactor)") }
        if plateauPatience < 1 { throw ValidationError("--plateau-patience must be at least 1, got \(plateauPatience)") }
        if !(minimumLearningRate >= 0 && minimumLearningRate.isFinite) { throw ValidationError("--min-lr must be 0 or "
            + "more, got \(minimumLearningRate)") }
    }

    /// The run's configuration for `dataset`.
    func configuration(dataset: RegisteredDataset) -> TrainingConfiguration {
        configuration(name: dataset.name, augmentsByDefault: dataset.augmentsByDefault)
    }

    /// The run's configuration for the data called `name`.
    func configuration(name: String, augmentsByDefault: Bool) -> TrainingConfiguration {
        let choice = try! ModelChoice(model)  // validated
        var configuration = TrainingConfiguration(
            dataset: name, model: choice.preset, epochs: epochs, globalBatchSize: batchSize, optimizer: optimizer,
            learningRate: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay, schedule: schedule,
            warmupEpochs: warmupEpochs, stepEpochs: stepEpochs, gamma: gamma, seed: seed,
            trainLimit: trainLimit, testLimit: testLimit, bucketMegabytes: bucketMB,
            augment: augment ?? (augmentPadding != nil || augmentsByDefault), onNonFinite: onNonFinite,
            validationSplit: validationSplit, monitor: monitor, earlyStopPatience: earlyStop,
            plateauFactor: schedule == .plateau ? plateauFactor : nil, plateauPatience: schedule == .plateau ? plateauPatience : nil,
            minimumLearningRate: schedule == .plateau || (schedule == .cosine && minimumLearningRate > 0)
                ? minimumLearningRate : nil, testEachEpoch: testEachEpoch ? true : nil)
        configuration.modelFile = choice.file
        configuration.gptPreset = choice.gpt
        configuration.clipGradientNorm = clipGradNorm
        configuration.maxSteps = maxSteps
        configuration.warmupSteps = warmupSteps
        configuration.adamBeta1 = beta1
        configuration.adamBeta2 = beta2
        configuration.labelSmoothing = labelSmoothing > 0 ? labelSmoothing : nil
        configuration.augmentPadding = augmentPadding
        configuration.testTimeAugmentation = tta == .none ? nil : tta
        configuration.evaluationInterval = evalEvery > 1 ? evalEvery : nil
        configuration.evaluateEverySteps = evalEverySteps
        configuration.accumulationSteps = accumulate > 1 ? accumulate : nil
        configuration.sharding = shard
        configuration.recompute = recompute ? true : nil
        configuration.exactSums = exactSums ? true : nil
        return configuration
    }
}

extension ShardingStage: ExpressibleByArgument {}

extension MatmulPrecision: ExpressibleByArgument {}

/// bf16 only where the CPU computes it: elsewhere oneDNN would emulate it, slower than fp32.
func requireSupported(_ precision: MatmulPrecision) throws {
    guard precision == .bf16, !BLAS.supportsBF16 else { return }
    throw ValidationError("--precision bf16 needs a CPU with bf16 dot products (AVX512-BF16 or AMX), which this one lacks "
        + "(it would run slower than fp32); use --precision fp32")
}

extension TrainOptions {
    /// `--exact-sums` beside the options that only concern float gradient sums: refused before anything starts (the
    /// Trainer refuses them too, for library callers).
    func validateExactSums() throws {
        guard exactSums else { return }
        if let shard, shard != .optimizer {
            throw ValidationError("--exact-sums cannot be used with --shard \(shard.rawValue), which reduce-scatters float "
                + "gradients during backward; use --shard optimizer or drop one of them")
        }
        if wire != .fp32 || overlap {
            throw ValidationError("--exact-sums sums integers between ranks; --\(overlap ? "overlap" : "wire \(wire.rawValue)") "
                + "applies to float sums only — drop one of them")
        }
    }
}
