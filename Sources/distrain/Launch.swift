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

/// BLAS threads per rank: --threads, else cores on this host ÷ ranks on this host (at least 1).
func threadsPerRank(requested: Int?, communicator: Communicator, localRanks threadRanks: Int = 1) -> (threads: Int, warning: String?) {
    let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let localRanks = max(1, communicator.localSize) * max(1, threadRanks)
    var threads = requested ?? max(1, cores / localRanks)
    var warning: String?
    if threads > cores {
        // More BLAS threads than cores only adds contention: cap it, and say so (the header shows the real number).
        warning = "warning: --threads \(threads) is more than the \(cores) cores of host \(communicator.hostName); using \(cores)"
        threads = cores
    }
    if threads * localRanks > cores {
        warning = (warning.map { $0 + "\n" } ?? "") + "warning: \(localRanks) rank\(localRanks == 1 ? "" : "s") × \(threads) BLAS thread\(threads == 1 ? "" : "s") on host \(communicator.hostName) exceed its \(cores) cores; expect contention (lower --threads or -n)"
    }
    return (threads, warning)
}

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
    let session = try TrainingSession(threads: options.resources.threads, collectiveTimeout: options.collectiveTimeout,
                                      localRanks: options.localRanks)
    // First: a bad checkpoint folder or a second job on it is refused before anything is loaded.
    let lock = try session.lockOnCoordinator(options.checkpointDirectory)
    defer { withExtendedLifetime(lock) {} }
    try session.run {
        let data = try session.loadCollectively(dataset, directory: try options.dataLocation.directory(for: dataset))
        let plan = RunPlan(options: options, configuration: options.configuration(dataset: dataset))
        if let k = options.kfold {
            try runCrossValidation(session: session, plan: plan, data: data, folds: k)
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

/// Runs `resolve` on the coordinator only (it reads the file system) and gives every rank its answer.
func resolveOnCoordinator(_ communicator: Communicator, _ resolve: () throws -> String?) throws -> String? {
    let answer = try communicator.onCoordinator { try resolve() } ?? nil
    // "\u{0}" stands for "no answer" (a path never contains NUL).
    let bytes = try communicator.broadcast(bytes: Array((answer ?? "\u{0}").utf8), root: 0)
    let text = String(decoding: bytes, as: UTF8.self)
    return text == "\u{0}" ? nil : text
}

/// The words joined for a shell, each quoted when it needs to be.
func shellQuoted(_ words: [String]) -> String {
    words.map { word in
        word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@".contains($0) } && !word.isEmpty
            ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// Threads for both kernel libraries: OpenBLAS (float GEMM) and oneDNN (int8 GEMM of quantized models).
func setKernelThreads(_ threads: Int) {
    BLAS.setThreadCount(threads)
    Int8Kernels.setThreadCount(threads)
}
