import Collectives
import Compression
import Datasets
import DurableFiles
import Foundation
import Selection
import Training

/// How `distrain prune` fine-tunes a pruned model: for how long, at what rate, and where the folders go.
public struct PruningPlan: Sendable {
    public var scope: PruningScope
    public var finetuneEpochs: Int
    /// nil: a tenth of the checkpoint's own rate.
    public var learningRate: Float?
    /// OUT: each sparsity gets OUT/sparsity-S.SS, the curve OUT/pruning.json.
    public var out: String

    public init(scope: PruningScope, finetuneEpochs: Int, learningRate: Float?, out: String) {
        self.scope = scope
        self.finetuneEpochs = finetuneEpochs
        self.learningRate = learningRate
        self.out = out
    }
}

extension TrainingSession {
    /// One sparsity: restore, measure, prune, measure, fine-tune with the mask, measure.
    /// The checkpoint `loaded` (read from `folder`) pruned to `sparsity` by magnitude, then fine-tuned with the mask
    /// fixed (pruned weights and their optimizer state stay zero on every rank) into its own checkpoint folder.
    public func pruneAndFineTune(_ loaded: LoadedCheckpoint, from folder: String, data: DatasetSplits, sparsity: Double,
                                 plan: PruningPlan) throws -> PruningRow {
        var configuration = loaded.state.configuration
        configuration.epochs = plan.finetuneEpochs
        configuration.learningRate = plan.learningRate ?? configuration.learningRate / 10
        configuration.monitor = nil
        configuration.earlyStopPatience = nil
        configuration.plateauFactor = nil
        if configuration.schedule == .plateau { configuration.schedule = .constant }
        let directory = "\(plan.out)/sparsity-\(String(format: "%.2f", sparsity))"
        let lock = try lockEmptyOnCoordinator(directory)
        defer { withExtendedLifetime(lock) {} }

        let model = try configuration.makeModel(for: data)
        try loaded.restoreParameters(into: model.parameters)
        let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: data,
                                  configuration: configuration, communicator: communicator, threadsPerRank: threads,
                                  reporter: try pruningReporter(directory),
                                  checkpointing: CheckpointSettings(directory: directory, keep: 1),
                                  tracker: tracker)
        func accuracy() throws -> Double {
            try evaluate(model: model, dataset: trainer.data.test, objective: trainer.objective, communicator: communicator,
                         batchSize: configuration.evaluationBatchSize,
                         testTimeAugmentation: configuration.evaluationAugmentation).accuracy
        }
        let before = try accuracy()
        let mask = PruningMask(store: model.parameters, sparsity: sparsity, scope: plan.scope)
        trainer.updateMask = mask.keep
        let pruned = try accuracy()
        trainer.checkpointMetadata = [
            "pruning_mask": mask.encoded, "pruning_sparsity": String(sparsity), "pruning_scope": plan.scope.rawValue,
            "pruned_from": folder, "pruning_finetune_epochs": String(plan.finetuneEpochs),
        ]
        if communicator.isCoordinator { print("sparsity \(String(format: "%.2f", sparsity)): fine-tuning "
            + "\(plan.finetuneEpochs) epoch(s) at learning rate \(String(format: "%g", configuration.learningRate))") }
        trainer.stopsOnSignals = true
        try trainer.run()
        return PruningRow(sparsity: sparsity, before: before, pruned: pruned, finetuned: try accuracy(),
                          layers: PruningMask.sparsity(of: model.parameters), checkpoint: trainer.lastCheckpoint ?? directory)
    }

    /// The console and the sparsity folder's metrics.jsonl (`distrain report` draws the fine-tuning), on the coordinator.
    private func pruningReporter(_ directory: String) throws -> TrainingReporter? {
        try communicator.onCoordinator { () -> TrainingReporter in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let log = try MetricsLog(path: "\(directory)/metrics.jsonl", appending: false)
            log.commandLine = (communicator.size > 1 ? "mpirun -n \(communicator.size) " : "") + shellQuoted(CommandLine.arguments)
            return ReporterGroup([ConsoleReporter(isTerminal: false, brief: true), log])
        }
    }

    /// Locks a sparsity folder for this job, refusing one that already holds checkpoints (on every rank).
    private func lockEmptyOnCoordinator(_ directory: String) throws -> CheckpointDirectoryLock? {
        try communicator.onCoordinator {
            let lock = try CheckpointDirectoryLock(path: directory)
            if !CheckpointWriter.checkpointNames(in: directory).isEmpty {
                throw SelectionError(message: "\(directory) already holds checkpoints; choose another --out or remove it")
            }
            return lock
        }
    }

    /// OUT/pruning.json: the curve of this run merged (by sparsity) into one an earlier prune into OUT wrote.
    public func writePruningCurve(_ rows: [PruningRow], out: String) throws {
        try communicator.onCoordinator {
            let path = "\(out)/pruning.json"
            try writeJSONAtomically(try mergedCurve(rows.map(PruningSummary.init), into: path), to: path)
        }
    }
}

/// One line of the sparsity/accuracy curve.
public struct PruningRow {
    public var sparsity: Double
    /// Test accuracy before pruning, right after, and after fine-tuning.
    public var before: Double
    public var pruned: Double
    public var finetuned: Double
    /// Each prunable tensor's fraction of zeros, and all of them together.
    public var layers: (perSlice: [(name: String, sparsity: Double)], total: Double)
    public var checkpoint: String
}

/// The curve already in `path` (an earlier prune into the same --out) with this run's rows merged in, by
/// sparsity (a sparsity pruned again replaces its row). A file that is not such a curve is refused, not replaced.
private func mergedCurve(_ rows: [PruningSummary], into path: String) throws -> [PruningSummary] {
    guard FileManager.default.fileExists(atPath: path) else { return rows }
    guard let data = FileManager.default.contents(atPath: path),
          let earlier = try? JSONDecoder().decode([PruningSummary].self, from: data) else {
        throw SelectionError(message: "\(path) is not a pruning curve distrain wrote; move it or choose another --out")
    }
    let key = { (row: PruningSummary) in String(format: "%.2f", row.sparsity) }
    let replaced = Set(rows.map(key))
    return (earlier.filter { !replaced.contains(key($0)) } + rows).sorted { $0.sparsity < $1.sparsity }
}

/// One row of OUT/pruning.json, the curve for scripts and plots.
private struct PruningSummary: Codable {
    var sparsity: Double
    var achievedSparsity: Double
    var accuracyBefore: Double
    var accuracyPruned: Double
    var accuracyFinetuned: Double
    var checkpoint: String
    /// Each prunable tensor's fraction of zeros.
    var layerSparsity: [String: Double]

    init(_ row: PruningRow) {
        sparsity = row.sparsity
        achievedSparsity = row.layers.total
        accuracyBefore = row.before
        accuracyPruned = row.pruned
        accuracyFinetuned = row.finetuned
        checkpoint = row.checkpoint
        layerSparsity = Dictionary(row.layers.perSlice.map { ($0.name, $0.sparsity) }, uniquingKeysWith: { a, _ in a })
    }
}

