import ArgumentParser
import Datasets
import Foundation

/// `distrain fashion-mnist`: Zalando's Fashion-MNIST from Debian's dataset-fashion-mnist package.
struct FashionMNISTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract: "Train on Fashion-MNIST (default data: \(debianFashionMNISTDirectory)).")

    @OptionGroup var options: TrainOptions

    func run() throws {
        let directory = options.dataDirectory ?? debianFashionMNISTDirectory
        let hint = options.dataDirectory == nil
            ? "install it with 'sudo apt-get install dataset-fashion-mnist' or pass --data-dir DIR"
            : "put the four Fashion-MNIST IDX files (.gz or raw) there, or install dataset-fashion-mnist and drop --data-dir"
        try runTraining(options: options, configuration: options.configuration(dataset: "fashion-mnist")) {
            try loadIDXDataset(name: "fashion-mnist", directory: directory, classNames: fashionMNISTClassNames, hint: hint)
        }
    }
}

/// `distrain mnist`: the classic MNIST digits from a directory with the classic file names.
struct MNISTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Train on MNIST digits from --data-dir (the four classic IDX files, .gz or raw).")

    @OptionGroup var options: TrainOptions

    func validate() throws {
        if options.dataDirectory == nil {
            throw ValidationError("mnist needs --data-dir DIR holding train-images-idx3-ubyte[.gz] and the other three IDX files")
        }
    }

    func run() throws {
        let directory = options.dataDirectory!
        try runTraining(options: options, configuration: options.configuration(dataset: "mnist")) {
            try loadIDXDataset(name: "mnist", directory: directory, classNames: mnistClassNames,
                               hint: "put the four MNIST IDX files there (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
        }
    }
}

/// `distrain cifar10`: the official CIFAR-10 binary batches, with augmentation on by default.
struct CIFAR10Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cifar10",
        abstract: "Train on CIFAR-10 (the official binary version; fetch it with 'distrain download cifar10').",
        discussion: """
        --data-dir takes the cifar-10-batches-bin folder or its parent. Default: ./data/cifar-10-batches-bin,
        or $DISTRAIN_DATA/cifar-10-batches-bin when DISTRAIN_DATA is set.
        """)

    @OptionGroup var options: TrainOptions

    /// Where to look when --data-dir is not given.
    static var defaultDirectory: String {
        if let root = ProcessInfo.processInfo.environment["DISTRAIN_DATA"], !root.isEmpty { return root }
        return "./data"
    }

    func run() throws {
        let directory = options.dataDirectory ?? Self.defaultDirectory
        try runTraining(options: options, configuration: options.configuration(dataset: "cifar10", augmentByDefault: true)) {
            try CIFAR10.load(directory: directory)
        }
    }
}
