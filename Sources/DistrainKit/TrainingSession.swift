import Collectives
import Datasets
import Foundation
import Layers
import Tensors
import Training

/// What one training run needs besides its data: its configuration, where it writes, what it continues
/// and how it reports. Sweeps and k-fold make one per trial or fold.
public struct RunPlan {
    public var configuration: TrainingConfiguration
    public var checkpointDirectory: String?
    public var checkpointEvery: Int?
    public var keep = 3
    /// "auto" or a checkpoint folder.
    public var resume: String?
    /// `--overwrite`: a fresh run may write into a folder holding another run's checkpoints.
    public var overwrite = false
    /// `--metrics FILE` (.jsonl, or .csv).
    public var metricsPath: String?
    public var progress = true
    /// Epoch lines and the headline only (a sweep's trial, a fold): the console shows many runs.
    public var brief = false
    public var gradientSum: SumMethod = .auto
    public var wire: WireFormat = .fp32
    public var overlap = false
    /// Local mode: data-parallel ranks as threads of this process (`--local-ranks`).
    public var localRanks = 1
    /// Said once in the metrics' start event: the command that reproduces the run.
    public var commandLine = shellQuoted(CommandLine.arguments)

    public init(configuration: TrainingConfiguration) { self.configuration = configuration }
}

/// The process side of training, made once for one run or many (a sweep's trials, k-fold's folds): the
/// communicator, BLAS threads, the watchdog that never lets a rank hang silently (it ends the process with
/// the reason), and the runs themselves — reporters, resume, local ranks as threads.
public final class TrainingSession {
    public let communicator: Communicator
    public let threads: Int
    public let tracker = PhaseTracker()
    /// Seconds a rank may wait in one collective (also the in-process group's deadline).
    public let collectiveTimeout: Double

    /// - Parameter localRanks: in local mode, the ranks that will run as threads (`--local-ranks`): BLAS
    ///   threads default to the cores divided among them.
    public init(communicator: Communicator, threads requested: Int?, collectiveTimeout: Double, localRanks: Int = 1) throws {
        self.communicator = communicator
        self.collectiveTimeout = collectiveTimeout
        if localRanks > 1 && communicator.size > 1 {
            throw ModelShapeError(message: "--local-ranks is for local mode; under mpirun, choose the ranks with -n")
        }
        let (threads, warning) = threadsPerRank(requested: requested, communicator: communicator, localRanks: localRanks)
        self.threads = threads
        BLAS.setThreadCount(threads)
        if let warning, communicator.localRank == 0 { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
        Watchdog(tracker: tracker, rank: communicator.rank, deadlineSeconds: collectiveTimeout) { message in
            FileHandle.standardError.write(Data("distrain: error: \(message)\n".utf8))
            fflush(nil)
            _exit(1)  // mpirun ends the other ranks within about a second
        }.start()
        StopSignals.install()
    }

    /// The job's lock on its output folder (coordinator only). A failure is remembered in `pendingError`
    /// and reported collectively when the job starts, so every rank ends the same way.
    public func lockOnCoordinator(_ folder: String?) -> CheckpointDirectoryLock? {
        guard communicator.isCoordinator, let folder else { return nil }
        do { return try CheckpointDirectoryLock(path: folder) } catch { pendingError = error; return nil }
    }

    /// A setup failure of this rank that the job's start must report collectively.
    public private(set) var pendingError: Error?

    /// Loads a dataset on every rank; every rank learns whether all succeeded.
    public func loadCollectively(_ dataset: RegisteredDataset, directory: String) throws -> DatasetSplits {
        tracker.enter(.loading)
        defer { tracker.enter(.startup) }
        let data = try communicator.collectively { try dataset.load(directory) }
        if communicator.isCoordinator {
            for note in data.notes { FileHandle.standardError.write(Data("distrain: warning: \(note)\n".utf8)) }
        }
        return data
    }

    /// One training run, collectively: reporters on the coordinator, resume, train. Returns the trainer.
    @discardableResult
    public func train(_ plan: RunPlan, data: DatasetSplits) throws -> Trainer {
        let cut = try data.cut(plan.configuration.dataCut)
        let shape = data.train.shape, classes = data.train.classCount
        return try train(plan, data: cut, objective: nil, builtModel: {
            try plan.configuration.modelSpec(inputShape: shape, classes: classes).build(inputShape: shape, classes: classes)
        }) { try plan.configuration.makeModel(for: data, communicator: $0) }
    }

    /// The memory preflight: what this host's ranks will hold, against what it has available; refused (on every
    /// rank, nothing allocated) when it does not fit.
    public func checkMemory(_ plan: RunPlan, data: TrainingData, layers: [Layer]) throws {
        let configuration = plan.configuration, ranks = max(plan.localRanks, 1)
        let world = communicator.size * ranks, local = communicator.localSize * ranks
        let share = (max(min(configuration.globalBatchSize, data.train.count), 1) + world - 1) / world
        let micro = (share + configuration.microBatches - 1) / configuration.microBatches
        let positions: Int = { if case let .tokens(_, count) = data.train.targetKind { return count }; return 1 }()
        let outputs = layers.last.map { $0.outputCount } ?? 1
        let evaluation = Trainer.evaluationBatchSize(configuration, share: share, micro: micro, positions: positions,
            outputsPerPosition: outputs / positions,
            bytesPerSample: Sequential.activationBytes(layers, inputCount: data.train.sampleSize, batchCapacity: 1))
        let sharedMemory = communicator.kind == "MPI" && plan.gradientSum == .auto ? communicator.localSize : 1
        try communicator.collectively {
            let memory = MemoryPlan(layers: layers, inputCount: data.train.sampleSize, optimizer: configuration.optimizer,
                                    momentum: configuration.momentum, sharding: configuration.sharding, worldSize: world,
                                    localRanks: local, batch: max(micro, evaluation), sharedMemoryRanks: sharedMemory,
                                    writesCheckpoints: plan.checkpointDirectory != nil,
                                    recompute: configuration.recompute == true, exactSums: configuration.exactSums == true)
            try memory.check(available: MemoryPlan.availableBytes())
        }
    }

    /// One training run on data already cut, under `objective` (nil: the one its targets call for), each
    /// rank's model made by `makeModel` (given the rank's communicator). Returns the (coordinator's) trainer.
    @discardableResult
    public func train(_ plan: RunPlan, data: TrainingData, objective: (any Objective)?, builtModel: (() throws -> BuiltModel)? = nil,
               makeModel: @escaping (Communicator) throws -> Sequential) throws -> Trainer {
        if let builtModel { try checkMemory(plan, data: data, layers: try builtModel().layers) }
        // The coordinator reports (in-process --local-ranks: the one process does).
        let reports = communicator.isCoordinator || (plan.localRanks > 1 && communicator.size == 1)
        let reporter = try communicator.collectively { () -> TrainingReporter? in
            guard reports else { return nil }
            try refuseAnotherRunsCheckpoints(plan)
            return try makeReporter(plan)
        }
        let checkpoint = try resumePoint(plan)
        let fault = try Fault.fromEnvironment()
        let checkpointing = plan.checkpointDirectory.map {
            CheckpointSettings(directory: $0, everySteps: plan.checkpointEvery, keep: plan.keep)
        }
        func runRank(_ rank: Communicator, threads: Int, reporter: TrainingReporter?, tracker: PhaseTracker,
                     options: (SumMethod, WireFormat, Bool)) throws -> Trainer {
            let model = try makeModel(rank)
            let trainer = try Trainer(model: model, optimizer: plan.configuration.makeOptimizer(for: model, communicator: rank),
                                      data: data,
                                      objective: objective, configuration: plan.configuration, communicator: rank,
                                      threadsPerRank: threads, reporter: reporter, checkpointing: checkpointing,
                                      resume: checkpoint, tracker: tracker, fault: fault, gradientSum: options.0,
                                      wire: options.1, overlap: options.2)
            trainer.stopsOnSignals = true
            try trainer.run()
            return trainer
        }
        guard plan.localRanks > 1 && communicator.size == 1 else {
            return try runRank(communicator, threads: threads, reporter: reporter, tracker: tracker,
                               options: (plan.gradientSum, plan.wire, plan.overlap))
        }
        // Local mode with `--local-ranks N`: N threads, each a rank of an in-process group with its own model
        // and share of every batch, summing gradients through memory; rank 0 reports and writes checkpoints.
        let trainers = try InProcessGroup(size: plan.localRanks, timeoutSeconds: collectiveTimeout).run { rank in
            try runRank(rank, threads: self.threads, reporter: rank.isCoordinator ? reporter : nil,
                        tracker: rank.isCoordinator ? self.tracker : PhaseTracker(), options: (.auto, .fp32, false))
        }
        return trainers[0]
    }

    /// A fresh run (no `--resume`) into a folder holding another run's checkpoints would replace its final
    /// checkpoint and prune the rest: refused unless `--overwrite` says so.
    private func refuseAnotherRunsCheckpoints(_ plan: RunPlan) throws {
        guard plan.resume == nil, !plan.overwrite, let folder = plan.checkpointDirectory else { return }
        let existing = CheckpointWriter.checkpointNames(in: folder)
        guard let last = existing.last else { return }
        throw CheckpointError.unusableDirectory(path: folder, problem: "holds another run's checkpoints (\(existing.count), "
            + "the last \(last)); continue it with --resume auto, start afresh with --overwrite, or choose another --checkpoint-dir")
    }

    /// The console, `--metrics` and the checkpoint folder's own `metrics.jsonl` (a resumed run appends).
    private func makeReporter(_ plan: RunPlan) throws -> TrainingReporter {
        var reporters: [TrainingReporter] = [ConsoleReporter(isTerminal: plan.progress && isatty(STDOUT_FILENO) != 0, brief: plan.brief)]
        let commandLine = (communicator.size > 1 ? "mpirun -n \(communicator.size) " : "") + plan.commandLine
        let checkpointLog = plan.checkpointDirectory.map { "\($0)/metrics.jsonl" }
        // --metrics naming the file the checkpoint folder keeps anyway: one writer, not two (two tore each other's lines).
        let sameFile = plan.metricsPath.flatMap { metrics in checkpointLog.map { sameFilePath(metrics, $0) } } ?? false
        for (path, appending) in [(sameFile ? nil : plan.metricsPath, plan.resume != nil), (checkpointLog, true)] {
            guard let path else { continue }
            if path.hasSuffix(".csv") {
                reporters.append(try CSVMetricsLog(path: path, appending: appending))
            } else {
                let log = try MetricsLog(path: path, appending: appending)
                log.commandLine = commandLine
                reporters.append(log)
            }
        }
        return ReporterGroup(reporters)
    }

    /// The checkpoint `plan.resume` names, read once and shared by every rank (nil: a fresh start).
    private func resumePoint(_ plan: RunPlan) throws -> LoadedCheckpoint? {
        guard let resume = plan.resume else { return nil }
        guard let directory = try communicator.resolveOnCoordinator({
            if let folder = plan.checkpointDirectory { CheckpointDirectoryLock.removeLeftovers(in: folder) }
            return try CheckpointWriter.resolveResume(resume, checkpointRoot: plan.checkpointDirectory)
        }) else {
            if communicator.isCoordinator { print("no checkpoint in \(plan.checkpointDirectory ?? "?") yet: starting from scratch") }
            return nil
        }
        if communicator.isCoordinator { print("resuming from \(directory)") }
        return try LoadedCheckpoint.load(directory: directory, communicator: communicator)
    }
}

/// Whether two paths name the same file (after making them absolute and resolving links and `..`).
public func sameFilePath(_ a: String, _ b: String) -> Bool {
    func resolved(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
    return resolved(a) == resolved(b)
}
