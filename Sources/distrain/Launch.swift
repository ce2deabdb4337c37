import ArgumentParser
import Collectives
import Datasets
import DistrainKit
import Foundation
import Layers
import Tensors
import SafeTensors
import Training

/// BLAS threads per rank: --threads, else cores on this host ÷ ranks on this host (at least 1).
func threadsPerRank(requested: Int?, communicator: Communicator) -> (threads: Int, warning: String?) {
    let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let localRanks = max(1, communicator.localSize)
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
        || error is ModelShapeError
}

/// Loads `dataset` on every rank, agrees that all succeeded, trains, and ends every rank together.
///
/// Errors that all ranks know of end the job with one message from the coordinator and exit 1 on every
/// rank after MPI_Finalize; an error only one rank knows of aborts the whole job with its message.
func runTraining(on dataset: RegisteredDataset, options: TrainOptions) throws {
    let configuration = options.configuration(dataset: dataset)
    let directory = try options.dataLocation.directory(for: dataset)
    let communicator = try makeCommunicator()
    let (threads, warning) = threadsPerRank(requested: options.resources.threads, communicator: communicator)
    BLAS.setThreadCount(threads)
    if let warning, communicator.localRank == 0 { FileHandle.standardError.write(Data((warning + "\n").utf8)) }

    // Never hang silently: a rank stuck in one phase past the deadline says where and ends the job.
    let tracker = PhaseTracker()
    Watchdog(tracker: tracker, rank: communicator.rank, deadlineSeconds: options.collectiveTimeout) { message in
        FileHandle.standardError.write(Data("distrain: error: \(message)\n".utf8))
        fflush(nil)
        _exit(1)  // mpirun ends the other ranks within about a second
    }.start()

    var data: DatasetSplits?
    var reporter: TrainingReporter?
    var checkpointLock: CheckpointDirectoryLock?
    var localError: Error?
    do {
        if communicator.isCoordinator, let folder = options.checkpointDirectory {
            // First: a bad folder or a second job on it is refused before anything is loaded.
            checkpointLock = try CheckpointDirectoryLock(path: folder)
        }
        data = try dataset.load(directory)
        if communicator.isCoordinator {
            var reporters: [TrainingReporter] = [ConsoleReporter(isTerminal: options.progress && isatty(STDOUT_FILENO) != 0)]
            // A resumed run continues its metrics file; the checkpoint folder keeps one too, for `distrain report`.
            let commandLine = (communicator.size > 1 ? "mpirun -n \(communicator.size) " : "") + shellQuoted(CommandLine.arguments)
            for (path, appending) in [(options.metrics, options.resume != nil),
                                      (options.checkpointDirectory.map { "\($0)/metrics.jsonl" }, true)] {
                guard let path else { continue }
                if path.hasSuffix(".csv") {
                    reporters.append(try CSVMetricsLog(path: path, appending: appending))
                } else {
                    let log = try MetricsLog(path: path, appending: appending)
                    log.commandLine = commandLine
                    reporters.append(log)
                }
            }
            reporter = ReporterGroup(reporters)
        }
    } catch {
        localError = error
    }
    defer { withExtendedLifetime(checkpointLock) {} }
    try runCollectively(communicator, beforeExit: { tracker.enter(.finished) }) {
        tracker.enter(.startup)
        try communicator.agreeOnSuccess(localError)
        var checkpoint: LoadedCheckpoint?
        if let resume = options.resume {
            if let directory = try resolveOnCoordinator(communicator, {
                try CheckpointWriter.resolveResume(resume, checkpointRoot: options.checkpointDirectory)
            }) {
                checkpoint = try LoadedCheckpoint.load(directory: directory, communicator: communicator)
                if communicator.isCoordinator { print("resuming from \(directory)") }
            } else if communicator.isCoordinator {
                print("no checkpoint in \(options.checkpointDirectory ?? "?") yet: starting from scratch")
            }
        }
        let model = try configuration.makeModel(for: data!)
        StopSignals.install()
        let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: data!,
                                  configuration: configuration, communicator: communicator,
                                  threadsPerRank: threads, reporter: reporter,
                                  checkpointing: options.checkpointSettings, resume: checkpoint,
                                  tracker: tracker, fault: try Fault.fromEnvironment(), gradientSum: options.gradientSum)
        trainer.stopsOnSignals = true
        try trainer.run()
        tracker.enter(.finished)
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
        throw error is ModelShapeError ? ExitCode.validationFailure : ExitCode.failure
    } catch {
        communicator.abort(message: "rank \(communicator.rank): \(error)", exitCode: 1)
    }
    communicator.finalize()
}

/// Runs `resolve` on the coordinator only (it reads the file system) and gives every rank its answer.
func resolveOnCoordinator(_ communicator: Communicator, _ resolve: () throws -> String?) throws -> String? {
    var answer: String?
    var localError: Error?
    if communicator.isCoordinator {
        do { answer = try resolve() } catch { localError = error }
    }
    try communicator.agreeOnSuccess(localError)
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
