import ArgumentParser
import Datasets

/// `distrain train DATASET`: train on any dataset of the registry.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train on a dataset by name (\(DatasetRegistry.names)), a folder, a table, or a token-shard folder.",
        discussion: """
        A folder that distrain tokenize wrote trains a language model: windows of --context tokens, next-token
        cross-entropy, evaluation on its val shards (loss, perplexity, accuracy, bits per byte). Example:
          distrain tokenize --tokenizer kjv.json data/kjv --out data/kjv-tokens
          distrain train data/kjv-tokens --context 64 --batch-size 32 --epochs 2
        """)

    @Argument(help: "The dataset: \(DatasetRegistry.names).")
    var dataset: String

    @OptionGroup var options: TrainOptions

    @OptionGroup var tokens: TokenDataOptions

    func validate() throws {
        if isTokenShardFolder(dataset) || tokens.tokenizer != nil {
            if options.kfold != nil || options.validationSplit != nil {
                throw ValidationError("token data is validated on its val shards; --kfold and --val-split are for images and tables")
            }
            return
        }
        if options.dataLocation.task == .regression && !dataset.hasSuffix(".csv") {
            throw ValidationError("--task regression takes a CSV table (its --label column is the numeric target)")
        }
        _ = try options.dataLocation.directory(for: try registeredDataset(dataset, images: try options.dataLocation.imageOptions))
    }

    func run() throws {
        if isTokenShardFolder(dataset) || tokens.tokenizer != nil {
            return try runTokenTraining(directory: dataset, options: options, tokens: tokens)
        }
        try runTraining(on: try registeredDataset(dataset, images: try options.dataLocation.imageOptions), options: options)
    }
}

/// `distrain fashion-mnist`: Zalando's Fashion-MNIST from Debian's dataset-fashion-mnist package.
struct FashionMNISTCommand: ParsableCommand {
    static let dataset = try! DatasetRegistry.named("fashion-mnist")
    static let configuration = CommandConfiguration(commandName: dataset.name, abstract: "Train on \(dataset.summary).")

    @OptionGroup var options: TrainOptions

    func run() throws { try runTraining(on: Self.dataset, options: options) }
}

/// `distrain mnist`: the classic MNIST digits from a directory with the classic file names.
struct MNISTCommand: ParsableCommand {
    static let dataset = try! DatasetRegistry.named("mnist")
    static let configuration = CommandConfiguration(commandName: dataset.name, abstract: "Train on \(dataset.summary).")

    @OptionGroup var options: TrainOptions

    func validate() throws {
        if options.dataLocation.dataDirectory == nil {
            throw ValidationError("mnist needs --data-dir DIR holding train-images-idx3-ubyte[.gz] and the other three IDX files")
        }
    }

    func run() throws { try runTraining(on: Self.dataset, options: options) }
}

/// `distrain cifar10`: the official CIFAR-10 binary batches, with augmentation on by default.
struct CIFAR10Command: ParsableCommand {
    static let dataset = try! DatasetRegistry.named("cifar10")
    static let configuration = CommandConfiguration(
        commandName: dataset.name, abstract: "Train on \(dataset.summary).",
        discussion: """
        --data-dir takes the cifar-10-batches-bin folder or its parent. Default: ./data/cifar-10-batches-bin,
        or $DISTRAIN_DATA/cifar-10-batches-bin when DISTRAIN_DATA is set.
        """)

    @OptionGroup var options: TrainOptions

    func run() throws { try runTraining(on: Self.dataset, options: options) }
}
