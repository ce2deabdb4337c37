import Collectives
import Datasets
import Layers
import Optimizers

/// Everything that defines a training run; identical on every rank (checked at start).
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// "fashion-mnist", "mnist" or "cifar10".
    public var dataset: String
    /// The preset (`--model mlp|lenet|cnn|mlp-large`); `modelFile`, when set, takes its place.
    public var model: ModelName
    /// `--model FILE`: a model spec's path and text (the text is what defines the run).
    /// The name of a model that is neither a preset nor a file (the default token model).
    public var modelName: String?
    public var modelFile: ModelFile? = nil
    /// `--model gpt-mini|gpt-char|gpt2|gpt2-medium`: a GPT preset for token data (nil in older checkpoints).
    public var gptPreset: GPTPreset? = nil
    /// Whether the epoch lines report MFU (the coordinator measures its SGEMM peak once when training starts).
    public var reportsModelFlopsUtilization: Bool? = nil
    /// `--eval-every-steps`: also evaluate every this many optimizer steps inside an epoch (reported, never selecting).
    public var evaluateEverySteps: Int? = nil
    /// `--accumulate K`: each optimizer step runs its batch in K micro-batches (nil: 1).
    public var accumulationSteps: Int? = nil
    /// `--shard`: what each rank keeps only a slice of (nil: everything replicated).
    public var sharding: ShardingStage? = nil
    /// `--recompute`: the residual blocks share their inner buffers and run forward again before backward.
    public var recompute: Bool? = nil
    /// `--exact-sums`: gradients and BatchNorm statistics summed as exact integers, so N ranks give one rank's
    /// parameters bit for bit (nil: float sums, equal to 1e-5 in well-conditioned training).
    public var exactSums: Bool? = nil
    /// Micro-batches per optimizer step.
    public var microBatches: Int { max(accumulationSteps ?? 1, 1) }
    public var epochs: Int
    /// Samples per step over ALL ranks together.
    public var globalBatchSize: Int
    public var optimizer: OptimizerKind
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    /// `--max-steps`: train for this many optimizer steps (the epochs follow from it; the last may be partial).
    public var maxSteps: Int? = nil
    /// `--warmup-steps`: linear warm-up over this many steps (instead of `warmupEpochs`).
    public var warmupSteps: Int? = nil
    /// `--clip-grad-norm`: the global gradient norm's ceiling (nil: no clipping).
    public var clipGradientNorm: Float? = nil
    /// `--beta1`, `--beta2`: Adam's moment decay rates (nil: 0.9 and 0.999).
    public var adamBeta1: Float? = nil
    public var adamBeta2: Float? = nil
    /// Weight decay on parameters of two or more dimensions only (nanoGPT's groups: not on biases and
    /// LayerNorm weights); language models train this way. Nil or false: every parameter.
    public var decaysMatricesOnly: Bool? = nil
    public var schedule: ScheduleKind
    public var warmupEpochs: Int
    /// StepLR's period in epochs (nil: a third of the run).
    public var stepEpochs: Int?
    /// StepLR's factor.
    public var gamma: Float
    public var seed: UInt64
    /// Use only the first N training samples (nil: all).
    public var trainLimit: Int?
    /// Use only the first N test samples (nil: all).
    public var testLimit: Int?
    /// Size of each gradient allreduce, in MiB of floats.
    public var bucketMegabytes: Double
    /// Samples per forward pass in evaluation, per rank.
    public var evaluationBatchSize: Int
    /// Random crop from a zero-padded image and random horizontal flip while training.
    public var augment: Bool
    /// What a NaN or Inf in the loss or gradients does (`--on-nonfinite`).
    public var onNonFinite: NonFinitePolicy
    /// Model selection (all optional, so checkpoints written before they existed still load):
    /// the fraction of the training set held out for validation (`--val-split`), stratified by class.
    public var validationSplit: Double? = nil
    /// k-fold cross-validation: the number of folds and the one (1-based) held out as validation.
    public var foldCount: Int? = nil
    public var fold: Int? = nil
    /// The validation metric that picks `best`, stops early and drives the plateau schedule.
    public var monitor: MonitorMetric? = nil
    /// `--early-stop PATIENCE`: stop after this many epochs without improvement of the monitor.
    public var earlyStopPatience: Int? = nil
    /// `--schedule plateau`: multiply the rate by `plateauFactor` after `plateauPatience` epochs without
    /// improvement, never below `minimumLearningRate` (Keras' ReduceLROnPlateau).
    public var plateauFactor: Float? = nil
    public var plateauPatience: Int? = nil
    public var minimumLearningRate: Float? = nil
    /// `--label-smoothing ε`: the training loss's targets are (1 − ε)·onehot + ε/classes.
    public var labelSmoothing: Float? = nil
    /// `--augment-padding N`: the zero pixels around the image before the random crop (nil: 4; 0: flips only).
    public var augmentPadding: Int? = nil
    /// The augmentation the training step applies, if any.
    public var augmentation: Augmentation? { augment ? Augmentation(padding: augmentPadding ?? 4) : nil }
    /// `--tta flip`: evaluations (validation, test, and later `evaluate`/`predict` of the checkpoint by
    /// default) average the outputs of each image and its mirror image (nil: none).
    public var testTimeAugmentation: TestTimeAugmentation? = nil
    /// What the run's evaluations do (`testTimeAugmentation`, or none).
    public var evaluationAugmentation: TestTimeAugmentation { testTimeAugmentation ?? .none }
    /// `--eval-every N`: evaluate after every N-th epoch and after the last (nil: every epoch). Early
    /// stopping's and the plateau schedule's patience then count evaluations.
    public var evaluationInterval: Int? = nil
    /// Whether the epoch numbered `epoch` (1-based) ends with an evaluation.
    public func evaluates(afterEpoch epoch: Int) -> Bool {
        guard let interval = evaluationInterval, interval > 1 else { return true }
        return epoch % interval == 0 || epoch >= epochs
    }
    /// How the run cuts its data: limits and the validation split or fold, in the seed.
    public var dataCut: DataCut {
        DataCut(trainLimit: trainLimit, testLimit: testLimit, validationFraction: validationSplit,
                folds: foldCount.flatMap { k in fold.map { (k, $0) } }, seed: seed)
    }
    /// Score the test set after every epoch too (with a validation split it is scored once, at the end).
    public var testEachEpoch: Bool? = nil

    public init(dataset: String, model: ModelName = .mlp, epochs: Int = 10, globalBatchSize: Int = 64,
                optimizer: OptimizerKind = .adam, learningRate: Float = 1e-3, momentum: Float = 0,
                nesterov: Bool = false, weightDecay: Float = 0, schedule: ScheduleKind = .constant,
                warmupEpochs: Int = 0, stepEpochs: Int? = nil, gamma: Float = 0.1, seed: UInt64 = 42,
                trainLimit: Int? = nil, testLimit: Int? = nil, bucketMegabytes: Double = 4,
                evaluationBatchSize: Int = 256, augment: Bool = false,
                onNonFinite: NonFinitePolicy = .stop, validationSplit: Double? = nil, monitor: MonitorMetric? = nil,
                earlyStopPatience: Int? = nil, plateauFactor: Float? = nil, plateauPatience: Int? = nil,
                minimumLearningRate: Float? = nil, testEachEpoch: Bool? = nil) {
        self.dataset = dataset
        self.model = model
        self.epochs = epochs
        self.globalBatchSize = globalBatchSize
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.warmupEpochs = warmupEpochs
        self.stepEpochs = stepEpochs
        self.gamma = gamma
        self.seed = seed
        self.trainLimit = trainLimit
        self.testLimit = testLimit
        self.bucketMegabytes = bucketMegabytes
        self.evaluationBatchSize = evaluationBatchSize
        self.augment = augment
        self.onNonFinite = onNonFinite
        self.validationSplit = validationSplit
        self.monitor = monitor
        self.earlyStopPatience = earlyStopPatience
        self.plateauFactor = plateauFactor
        self.plateauPatience = plateauPatience
        self.minimumLearningRate = minimumLearningRate
        self.testEachEpoch = testEachEpoch
    }

    /// Whether part of the training set is held out for validation (a split or a fold).
    public var hasValidation: Bool { validationSplit != nil || fold != nil }

    /// The optimizer's hyper-parameters.
    public var optimizerSettings: OptimizerSettings {
        OptimizerSettings(kind: optimizer, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                          beta1: adamBeta1 ?? 0.9, beta2: adamBeta2 ?? 0.999)
    }

    /// The learning-rate schedule.
    public var learningRateSchedule: LearningRateSchedule {
        var rates = LearningRateSchedule(kind: schedule, baseRate: learningRate, totalEpochs: epochs,
                                         warmupEpochs: warmupEpochs, stepEpochs: stepEpochs, gamma: gamma)
        rates.warmupSteps = warmupSteps
        rates.totalSteps = maxSteps
        if schedule == .cosine { rates.minimumRate = minimumLearningRate ?? 0 }
        return rates
    }

    /// A hash of every field, for the start-up agreement check across ranks.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in "\(self)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }
}

/// A model spec file given as `--model FILE`.
public struct ModelFile: Codable, Sendable, Equatable {
    public var path: String
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    /// The lines that define the model: comments (from `#` outside quotes) and surrounding spaces removed,
    /// blank lines dropped, any line ending.
    public var significantLines: [String] {
        text.split(omittingEmptySubsequences: true) { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }.compactMap { line in
            var kept = "", quote: Character?
            for character in line {
                if let open = quote { if character == open { quote = nil } } else if character == "'" || character == "\"" {
                    quote = character
                } else if character == "#" { break }
                kept.append(character)
            }
            let trimmed = kept.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        }
    }
}

extension TrainingConfiguration {
    /// What the run calls its model: the preset's name or the spec file's path.
    public var modelLabel: String { modelFile?.path ?? gptPreset?.rawValue ?? modelName ?? model.rawValue }

    /// What makes two runs' models the same: the preset's name, or the spec's modules (a hash of its lines
    /// without comments, blank lines and surrounding spaces) — a moved spec file, or one whose comments were
    /// edited, is still the same model; one whose modules changed is not.
    public var modelIdentity: String {
        guard let modelFile else { return gptPreset?.rawValue ?? model.rawValue }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in modelFile.significantLines.joined(separator: "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return "spec \(String(hash, radix: 16))"
    }

    /// The model's spec for inputs of `inputShape` and `classes` outputs: the file's, or the preset's.
    public func modelSpec(inputShape: [Int], classes: Int) throws -> ModelSpec {
        if let modelFile { return try ModelSpec(parsing: modelFile.text, source: modelFile.path) }
        try model.checkFits(inputShape: inputShape)
        return try model.spec(inputShape: inputShape, classes: classes)
    }

    /// The `--model` architecture for `data`'s input shape and classes, initialized as PyTorch does from
    /// `--seed` (rank 0's copy is broadcast to the others by the Trainer anyway). Throws
    /// `ModelShapeError` (a preset) or `ModelSpecError` (a spec) naming the layer that does not fit.
    ///
    /// With `--shard parameters` and a communicator, only this rank's slice of the values is initialized: the rest
    /// is never held (DeepSpeed's `zero.Init`), and every rank computes its slice as a whole initialization would.
    public func makeModel(for data: DatasetSplits, communicator: Communicator? = nil) throws -> Sequential {
        let shape = data.train.shape, classes = data.train.classCount
        if let gptPreset {
            throw ModelShapeError(message: "--model \(gptPreset.rawValue) is a language model: train it on token data "
                + "(a `distrain tokenize` folder, or text with --tokenizer), not on \(dataset)")
        }
        if testTimeAugmentation == .flip && shape.count == 3 && shape[2] == 1 {
            throw ModelShapeError(message: "--tta flip mirrors images left–right, but these samples are "
                + "\(shape.map(String.init).joined(separator: "x")) (one pixel wide, as a table's rows are): pass "
                + "--tta none (a recipe may have turned it on)")
        }
        let model = try modelSpec(inputShape: shape, classes: classes).build(inputShape: shape,
            classes: classes).makeSequential(inputShape: shape)
        model.parameters.initializeKaimingUniform(seed: seed, in: initializedRange(of: model, communicator: communicator))
        return model
    }

    /// A model for samples of `inputShape` that ends in `outputShape` (an objective's, e.g. [T, vocabulary]):
    /// the `--model` spec file, or, for token windows, `defaultTokenModelSpec`. Presets are image and table
    /// models; asked for one here, it is a `ModelShapeError` saying what to pass instead.
    /// With `--shard parameters` and a communicator, only this rank's slice is initialized (as above).
    public func makeModel(inputShape: [Int], outputShape: [Int], communicator: Communicator? = nil) throws -> Sequential {
        let model = try builtModel(inputShape: inputShape, outputShape: outputShape).makeSequential(inputShape: inputShape)
        model.parameters.initializeKaimingUniform(seed: seed, in: initializedRange(of: model, communicator: communicator))
        return model
    }

    /// The values a rank initializes: its own slice at `--shard parameters` (the Trainer neither broadcasts nor
    /// gathers the rest at start-up), all of them otherwise.
    func initializedRange(of model: Sequential, communicator: Communicator?) -> Range<Int> {
        let all = 0..<model.parameters.count
        guard sharding == .parameters, let communicator, communicator.size > 1 else { return all }
        return communicator.ownedShard(of: all.count)
    }

    /// The `--model` architecture for `inputShape` → `outputShape` with every size, before anything is allocated
    /// (what `makeModel` builds, and what the memory preflight adds up).
    public func builtModel(inputShape: [Int], outputShape: [Int]) throws -> BuiltModel {
        let text: String, source: String
        if let modelFile {
            (text, source) = (modelFile.text, modelFile.path)
        } else if let gptPreset, inputShape.count == 1, outputShape.count == 2 {
            guard inputShape[0] <= gptPreset.blockSize else {
                throw ModelShapeError(message: "--context \(inputShape[0]) is longer than \(gptPreset.rawValue)'s "
                    + "\(gptPreset.blockSize) positions; pass --context \(gptPreset.blockSize) or less")
            }
            (text, source) = (gptPreset.spec(vocabulary: outputShape[1]), "preset \(gptPreset.rawValue)")
        } else if model == .mlp && inputShape.count == 1 && outputShape.count == 2 {
            (text, source) = (Self.defaultTokenModelSpec(vocabulary: outputShape[1]), "the default token model")
        } else {
            let gpts = GPTPreset.allCases.map(\.rawValue).joined(separator: ", ")
            throw ModelShapeError(message: "--model \(model.rawValue) is an image or table preset; for token data give a "
                + "GPT preset (\(gpts)) or --model FILE.spec, e.g. Embedding(V, 64), Linear(64, 256), GELU(), Linear(256, V)")
        }
        return try ModelSpec(parsing: text, source: source).build(inputShape: inputShape, outputShape: outputShape)
    }

    /// The model token data trains without `--model`: an embedding and a per-position MLP, each position
    /// predicting the next token from its own (a bigram model; the GPT presets are for context).
    public static func defaultTokenModelSpec(vocabulary: Int) -> String {
        "Embedding(\(vocabulary), 64)\nLinear(64, 256)\nGELU()\nLinear(256, \(vocabulary))\n"
    }

    /// The `--optimizer` with its hyper-parameters, for `model`'s parameters.
    /// The optimizer for `model`; with `--shard optimizer` and a communicator, for this rank's slice of the arena.
    public func makeOptimizer(for model: Sequential, communicator: Communicator? = nil) -> Optimizer {
        var settings = optimizerSettings
        if decaysMatricesOnly == true {
            settings.decayedRanges = model.parameters.slices.filter { $0.shape.count >= 2 }.map { $0.offset..<($0.offset + $0.count) }
        }
        let owned = sharding != nil ? communicator?.ownedShard(of: model.parameters.count) : nil
        return Optimizers.makeOptimizer(settings, parameterCount: model.parameters.count, ownedRange: owned)
    }
}

/// What `--shard` splits over ranks (ZeRO's stages). Each rank owns one contiguous slice of the parameter arena,
/// keeps the optimizer state of that slice and updates it.
public enum ShardingStage: String, Codable, Sendable, CaseIterable {
    /// Stage 1: the updated slices are all-gathered after the step; gradients are summed whole.
    case optimizer
    /// Stage 2: also the gradients — reduce-scattered layer by layer during backward, each rank keeping its slice.
    case gradients
    /// Stage 3: also the parameters — each layer's gathered just before its forward and backward, released after.
    case parameters
}
