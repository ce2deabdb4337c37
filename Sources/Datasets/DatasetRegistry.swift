import Foundation

/// A dataset distrain knows by name: where its files are by default and how to load them.
///
/// Training, `evaluate` and `doctor` all go through `DatasetRegistry`; a new format is a reader file
/// plus one entry in `DatasetRegistry.all`.
public struct RegisteredDataset: Sendable {
    /// The name on the command line, e.g. "fashion-mnist".
    public let name: String
    /// One line for `--help`.
    public let summary: String
    /// Whether training augments by default (random crop + flip).
    public let augmentsByDefault: Bool
    /// The folder used without `--data-dir`; nil when the user must name one.
    public let defaultDirectory: @Sendable () -> String?
    /// Loads both splits from a folder; errors name the file and what to do.
    public let load: @Sendable (_ directory: String) throws -> DatasetSplits
    /// The files a loader reads from a folder (for `doctor`'s same-data-on-every-host check).
    public let files: @Sendable (_ directory: String) -> [String]

    /// The folder to read: `--data-dir` if given, else the default; nil when neither exists.
    public func directory(_ requested: String?) -> String? {
        requested ?? defaultDirectory()
    }
}

/// The registry of built-in datasets.
public enum DatasetRegistry {
    /// Every dataset distrain can load by name, in the order `--help` lists them.
    public static let all: [RegisteredDataset] = [
        RegisteredDataset(
            name: "fashion-mnist", summary: "Zalando's Fashion-MNIST (default data: \(debianFashionMNISTDirectory))",
            augmentsByDefault: false, defaultDirectory: { debianFashionMNISTDirectory },
            load: { directory in
                let hint = directory == debianFashionMNISTDirectory
                    ? "install it with 'sudo apt-get install dataset-fashion-mnist' or pass --data-dir DIR"
                    : "put the four Fashion-MNIST IDX files (.gz or raw) there, or install dataset-fashion-mnist and drop --data-dir"
                return try loadIDXDataset(name: "fashion-mnist", directory: directory, classNames: fashionMNISTClassNames, hint: hint)
            },
            files: idxFiles),
        RegisteredDataset(
            name: "mnist", summary: "MNIST digits from --data-dir (the four classic IDX files, .gz or raw)",
            augmentsByDefault: false, defaultDirectory: { nil },
            load: { directory in
                try loadIDXDataset(name: "mnist", directory: directory, classNames: mnistClassNames,
                                   hint: "put the four MNIST IDX files there (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
            },
            files: idxFiles),
        RegisteredDataset(
            name: "cifar10", summary: "CIFAR-10, the official binary version (fetch it with 'distrain download cifar10')",
            augmentsByDefault: true, defaultDirectory: { CIFAR10.defaultDirectory },
            load: { try CIFAR10.load(directory: $0) },
            files: { directory in
                let folder = CIFAR10.resolveFolder(directory) ?? "\(directory)/\(CIFAR10.folderName)"
                return CIFAR10.requiredFiles.map { "\(folder)/\($0)" }
            }),
    ]

    /// Every name, for messages: "fashion-mnist, mnist, cifar10".
    public static var names: String { all.map(\.name).joined(separator: ", ") }

    /// The dataset with this name, or at this path (a `.npz`, or a folder of NumPy arrays), or an error
    /// listing the choices.
    public static func named(_ name: String, images: SourceOptions = SourceOptions()) throws -> RegisteredDataset {
        if images.format == nil, let dataset = all.first(where: { $0.name == name }) { return dataset }
        let format = images.format
        if format == .csv || (format == nil && name.hasSuffix(".csv")) {
            return RegisteredDataset(name: name, summary: "the CSV table \(name)", augmentsByDefault: false, defaultDirectory: { name },
                                     load: { _ in try loadCSVDataset(name, options: images) }, files: { _ in [name] })
        }
        if format == .images || (format == nil && isImageFolder(name)) {
            return RegisteredDataset(name: name, summary: "image folders at \(name)", augmentsByDefault: false, defaultDirectory: { name },
                                     load: { _ in
                                         let loaded = try loadImageFolder(name, options: images)
                                         var splits = loaded.splits
                                         splits.preprocessing = loaded.preprocessing
                                         if !loaded.skipped.isEmpty {
                                             splits.notes.append("skipped \(loaded.skipped.count) file\(loaded.skipped.count == 1 ? "" : "s") that do not decode (--skip-bad-files); first: \(loaded.skipped[0])")
                                         }
                                         return splits
                                     },
                                     files: { _ in [] })
        }
        if format == .npz || format == .npy || (format == nil && (name.hasSuffix(".npz") || pathExists("\(name)/x_train.npy"))) {
            return RegisteredDataset(name: name, summary: "NumPy arrays at \(name)", augmentsByDefault: false,
                                     defaultDirectory: { name }, load: { _ in try loadNumPyDataset(name) },
                                     files: { _ in name.hasSuffix(".npz") ? [name] : ["x_train", "y_train", "x_test", "y_test"].map { "\(name)/\($0).npy" } })
        }
        throw DatasetError.unknownDataset(name: name, choices: names + ", or a folder of class folders of images, a .csv table, a .npz file, or a folder of x_train.npy, y_train.npy, x_test.npy, y_test.npy (--format says which when the name does not)")
    }

    private static func idxFiles(_ directory: String) -> [String] {
        let names = IDXFileNames()
        return [names.trainImages, names.trainLabels, names.testImages, names.testLabels].map { base in
            pathExists("\(directory)/\(base).gz") ? "\(directory)/\(base).gz" : "\(directory)/\(base)"
        }
    }
}
