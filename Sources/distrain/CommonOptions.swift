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

/// `--data-dir`, shared by every command that reads a dataset by name.
struct DataLocationOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files (default per dataset).")
    var dataDirectory: String?

    func validate() throws {
        if let dataDirectory, dataDirectory.isEmpty { throw ValidationError("--data-dir needs a directory") }
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
func registeredDataset(_ name: String) throws -> RegisteredDataset {
    do { return try DatasetRegistry.named(name) } catch { throw ValidationError("\(error)") }
}
