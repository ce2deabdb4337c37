import Collectives
import DistrainKit
import ArgumentParser
import Datasets

/// `--threads`, shared by every command that computes.
struct ThreadOptions: ParsableArguments {
    @Option(help: "BLAS threads per rank (default: cores on this host ÷ ranks on this host).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw ValidationError("--threads must be between 1 and 1024, got \(threads)")
        }
    }
}

extension ThreadOptions {
    /// The job's communicator (MPI under mpirun, else this process alone) with BLAS threads set for its ranks.
    func makeJobCommunicator() throws -> Communicator {
        let communicator = try makeCommunicator()
        setKernelThreads(threadsPerRank(requested: threads, communicator: communicator).threads)
        return communicator
    }

    /// This process alone (generate, serve: rank 0 works, other ranks leave), with its BLAS threads.
    func makeSingleProcess() -> Communicator {
        let single = InProcessCommunicator.single()
        setKernelThreads(threadsPerRank(requested: threads, communicator: single).threads)
        return single
    }
}

/// `--checkpoint DIR` of the commands that run one saved model.
struct CheckpointOption: ParsableArguments {
    @Option(help: "A checkpoint folder, or a --checkpoint-dir (its best checkpoint, else its latest).")
    var checkpoint: String

    func validate() throws {
        if checkpoint.isEmpty { throw ValidationError("--checkpoint needs a directory") }
    }
}

/// `--test-limit` and `--batch-size` of the commands that score a saved model on a test set.
struct TestSetOptions: ParsableArguments {
    @Option(name: .customLong("test-limit"), help: "Use the first N test samples only.")
    var testLimit: Int?

    @Option(name: .customLong("batch-size"), help: "Samples per forward pass per rank.")
    var batchSize = 256

    func validate() throws {
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1, got \(testLimit)") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }
}

/// `--data-dir`, shared by every command that reads a dataset by name.
struct DataLocationOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files (default per dataset).")
    var dataDirectory: String?

    @Option(help: "Image folders: 1 (grey) or 3 (RGB) channels (default: 1 when every image is grey, else 3).")
    var channels: Int?

    @Option(name: .customLong("image-size"), help: "Image folders: resize every image to HxW, bilinear (default: the size they share).")
    var imageSize: String?

    @Flag(name: .customLong("skip-bad-files"),
          help: "Image folders: leave out files that do not decode, counting them, instead of stopping.")
    var skipBadFiles = false

    @Option(help: "How to read DATASET when its name does not say: images (class folders), npz or npy (NumPy), csv.")
    var format: SourceFormat?

    @Option(help: "CSV tables: the column holding the class label (every other column is a numeric feature).")
    var label: String?

    @Option(help: "CSV tables: classification (the label column is a class) or regression (a number; mean squared error, RMSE/MAE/R²).")
    var task: LearningTask = .classification

    @Option(name: .customLong("test-split"), help: ArgumentHelp("Image folders without test/, and CSV tables: this fraction of "
        + "each class is the test set (fixed, not --seed)."))
    var testSplit = 0.2

    func validate() throws {
        if let dataDirectory, dataDirectory.isEmpty { throw ValidationError("--data-dir needs a directory") }
        if let channels, channels != 1 && channels != 3 { throw ValidationError("--channels must be 1 or 3, got \(channels)") }
        _ = try imageOptions
        if !(testSplit > 0 && testSplit < 1) { throw ValidationError("--test-split must be in (0, 1), got \(testSplit)") }
    }

    /// The image-folder choices as the loader takes them.
    var imageOptions: SourceOptions {
        get throws {
            var options = SourceOptions()
            options.channels = channels
            options.skipBadFiles = skipBadFiles
            options.testFraction = testSplit
            options.label = label
            options.regression = task == .regression
            options.format = format
            if let imageSize {
                let parts = imageSize.split(separator: "x").map { Int($0) }
                guard parts.count == 2, let h = parts[0], let w = parts[1], (1...4096).contains(h), (1...4096).contains(w) else {
                    throw ValidationError("--image-size must be HxW with sizes in 1...4096, e.g. 64x64, got \(imageSize)")
                }
                options.size = (h, w)
            }
            return options
        }
    }

    /// The folder to read `dataset` from, or a usage error when it has no default and none was given.
    func directory(for dataset: RegisteredDataset) throws -> String {
        guard let directory = dataset.directory(dataDirectory) else {
            throw ValidationError("\(dataset.name) needs --data-dir DIR")
        }
        return directory
    }
}

/// A dataset name as a command-line argument: checked against the registry, the error lists the choices.
func registeredDataset(_ name: String, images: SourceOptions = SourceOptions()) throws -> RegisteredDataset {
    try refuseTableFlags(images, for: name)
    do { return try DatasetRegistry.named(name, images: images) } catch { throw ValidationError("\(error)") }
}

/// `--label` and `--task regression` describe a CSV table's columns; on any other data they would be ignored.
func refuseTableFlags(_ images: SourceOptions, for name: String) throws {
    let isTable = images.format == .csv || (images.format == nil && name.hasSuffix(".csv"))
    if !isTable, let label = images.label {
        throw ValidationError("--label \(label) names a CSV table's column; \(name) is not a table (its classes come from "
            + "its own files or folders): drop --label")
    }
    if !isTable && images.regression {
        throw ValidationError("--task regression needs a CSV table with a number column; \(name) holds classes")
    }
}

/// What a CSV table's label column is (`--task`).
enum LearningTask: String, ExpressibleByArgument, CaseIterable {
    case classification, regression
}

extension SourceFormat: ExpressibleByArgument {}
