import ArgumentParser
import Collectives
import Compression
import Datasets
import DistrainKit
import Foundation
import Layers
import Selection
import Tensors
import SafeTensors
import Training

/// Prints one error line on stderr.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("distrain: error: \(message)\n".utf8))
}

/// Errors that every rank throws together (after a collective verdict): each rank can exit cleanly.
func isAgreedOnAllRanks(_ error: Error) -> Bool {
    if case CollectiveError.rankFailed = error { return true }
    // Checkpoint files are parsed from bytes every rank received identically: all ranks throw alike.
    return error is StartupError || error is CheckpointError || error is SafeTensorsError || error is NonFiniteError
        || error is ModelShapeError || error is SplitError || error is SelectionError || error is ModelSpecError
}

/// Loads `dataset` on every rank, agrees that all succeeded, trains (once, or once per fold with
/// `--kfold`), and ends every rank together.
///
/// Errors that all ranks know of end the job with one message from the coordinator and exit 1 on every
/// rank after MPI_Finalize; an error only one rank knows of aborts the whole job with its message.
func runTraining(on dataset: RegisteredDataset, options: TrainOptions) throws {
    try refuseTableFlags(try options.dataLocation.imageOptions, for: dataset.name)
    // Folders of class folders are read by walking them: a checkpoint folder inside would become a class.
    if options.dataLocation.format == .images || isImageFolder(dataset.name) {
        try refuseOutputInsideData(options.checkpointDirectory, data: dataset.name)
    }
    let session = try TrainingSession(threads: options.resources.threads, collectiveTimeout: options.collectiveTimeout,
                                      localRanks: options.localRanks, precision: options.precision)
    // First: a bad checkpoint folder or a second job on it is refused before anything is loaded.
    let lock = try session.lockOnCoordinator(options.checkpointDirectory)
    defer { withExtendedLifetime(lock) {} }
    try session.run {
        let data = try session.loadCollectively(dataset, directory: try options.dataLocation.directory(for: dataset))
        let plan = RunPlan(options: options, configuration: options.configuration(dataset: dataset))
        if let k = options.kfold {
            try session.crossValidate(plan, data: data, folds: k)
        } else {
            try session.train(plan, data: data)
        }
    }
}

/// Runs `body` on every rank and ends the job the same way everywhere, then finalizes MPI.
///
/// Errors every rank knows of (agreed collectively, or a single rank) print one line from the
/// coordinator and exit 1 on every rank; an error only one rank knows of aborts the whole job with
/// its message, so no rank is left waiting.
func runCollectively(_ communicator: Communicator, beforeExit: () -> Void = {}, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let stop as TrainingStopped {
        beforeExit()
        if communicator.isCoordinator { FileHandle.standardError.write(Data("distrain: \(stop)\n".utf8)) }
        communicator.finalize()
        throw ExitCode(stop.exitCode)
    } catch where isAgreedOnAllRanks(error) || communicator.size == 1 {
        beforeExit()
        if communicator.isCoordinator { printError("\(error)") }
        communicator.finalize()
        // A model or split the flags ask for that the data cannot give is a usage error.
        throw error is ModelShapeError || error is SplitError || error is ModelSpecError ? ExitCode.validationFailure : ExitCode.failure
    } catch {
        communicator.abort(message: "rank \(communicator.rank): \(error)", exitCode: 1)
    }
    communicator.finalize()
}

/// A checkpoint folder inside data that is read by walking its folders (image class folders, a text corpus):
/// its `step-*` folders would become classes, its files text, the next time. Refused before anything is written.
func refuseOutputInsideData(_ output: String?, data: String) throws {
    guard let output else { return }
    func resolved(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
    let folder = resolved(output), source = resolved(data)
    guard folder == source || folder.hasPrefix(source.hasSuffix("/") ? source : source + "/") else { return }
    throw ValidationError("--checkpoint-dir \(output) is inside the data \(data): its checkpoints would be read as data next "
        + "time; choose a folder outside it")
}
