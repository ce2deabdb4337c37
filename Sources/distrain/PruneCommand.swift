import DurableFiles
import ArgumentParser
import Collectives
import Compression
import Datasets
import DistrainKit
import Foundation
import Training

/// `distrain prune`: magnitude pruning of a trained checkpoint at one or more sparsities, each fine-tuned
/// with its mask fixed, into its own checkpoint directory.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Prune a checkpoint's weights by magnitude and fine-tune with the mask fixed (locally or under mpirun).",
        discussion: """
        For each --sparsity, that fraction of the weight matrices and kernels (not biases, not normalization
        parameters) with the smallest magnitudes is set to zero — across all layers (--scope global) or in
        each layer (--scope layer) — and the model is fine-tuned with the checkpoint's training settings for
        --finetune-epochs epochs; pruned weights and their optimizer state stay exactly zero on every rank.
        Prints test accuracy before pruning, right after, and after fine-tuning, and each layer's sparsity;
        OUT/pruning.json holds the same curve.
        OUT/sparsity-0.50/ is a normal checkpoint directory (dense weights with zeros) whose model metadata
        holds the mask (pruning_mask, base64 bits, 1 = kept) and the settings; evaluate, predict, compare
        and export take it.
        Example: distrain prune --checkpoint runs/mlp fashion-mnist --sparsity 0.5,0.8,0.9 --out runs/mlp-pruned
        """)

    @OptionGroup var checkpointOption: CheckpointOption
    var checkpoint: String { checkpointOption.checkpoint }

    @Argument(help: "The dataset it was trained on: \(DatasetRegistry.names).")
    var dataset: String

    @OptionGroup var dataLocation: DataLocationOptions

    @Option(help: "Fractions of the prunable weights to remove, comma-separated, each in [0, 1).")
    var sparsity: String

    @Option(help: "Rank weights across all layers (global) or within each layer (layer).")
    var scope: PruningScope = .global

    @Option(name: .customLong("finetune-epochs"), help: "Epochs of fine-tuning after pruning.")
    var finetuneEpochs = 1

    @Option(name: .customLong("learning-rate"), help: "Fine-tuning learning rate (default: a tenth of the checkpoint's).")
    var learningRate: Float?

    @Option(help: "Where the pruned checkpoints go: OUT/sparsity-0.50/ per sparsity.")
    var out: String

    @OptionGroup var resources: ThreadOptions

    @Option(name: .customLong("collective-timeout"), help: "Seconds a rank waits in one collective before giving up.")
    var collectiveTimeout = 600.0

    /// The requested sparsities, in order.
    var sparsities: [Double] {
        get throws {
            try sparsity.split(separator: ",", omittingEmptySubsequences: false).map { text in
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                guard let value = Double(trimmed), value >= 0, value < 1 else {
                    throw ValidationError("--sparsity takes fractions in [0, 1) separated by commas, got '\(trimmed)'")
                }
                return value
            }
        }
    }

    func validate() throws {
        let folders = try sparsities.map { String(format: "%.2f", $0) }
        if let repeated = folders.first(where: { folder in folders.filter { $0 == folder }.count > 1 }) {
            throw ValidationError("--sparsity names \(repeated) twice (folders are named to two decimals); give each sparsity once")
        }
        if finetuneEpochs < 1 || finetuneEpochs > 10_000 { throw ValidationError("--finetune-epochs must be between 1 "
            + "and 10000, got \(finetuneEpochs)") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--learning-rate "
            + "must be a positive number, got \(learningRate)") }
        if out.isEmpty || checkpoint.isEmpty { throw ValidationError("--out and --checkpoint need directories") }
        if collectiveTimeout <= 0 { throw ValidationError("--collective-timeout must be positive") }
    }

    func run() throws {
        let session = try TrainingSession(threads: resources.threads, collectiveTimeout: collectiveTimeout)
        let communicator = session.communicator
        try session.run {
            let (saved, folder) = try loadSavedModel(checkpoint, communicator: communicator)
            let loaded = try LoadedCheckpoint.load(directory: folder, communicator: communicator)
            let data = try loadData(saved, folder: folder, session: session)
            var rows: [PruningRow] = []
            for sparsity in try sparsities {
                rows.append(try prune(at: sparsity, saved: saved, loaded: loaded, folder: folder, data: data, session: session))
            }
            try communicator.onCoordinator {
                report(rows, folder: folder, samples: data.test.count)
                let path = "\(out)/pruning.json"
                try writeJSONAtomically(try mergedCurve(rows.map(PruningSummary.init), into: path), to: path)
            }
        }
    }

    /// The dataset as the checkpoint saw it (image preprocessing, CSV columns), on every rank.
    private func loadData(_ saved: CheckpointModel, folder: String, session: TrainingSession) throws -> DatasetSplits {
        if !saved.objective.judgesAnswers {
            throw ValidationError("\(folder) is a \(saved.objective.task) model; prune reports accuracy and takes classification "
                + "checkpoints only")
        }
        var options = try imagesLike(saved.preprocessing, fallback: dataLocation)
        options.label = options.label ?? saved.labelColumn
        let registered = try registeredDataset(dataset, images: options)
        let data = try session.loadCollectively(registered, directory: try dataLocation.directory(for: registered))
        try requireFits(saved, folder: folder, data: data.test, datasetName: dataset)
        return data
    }

    /// One sparsity: restore, measure, prune, measure, fine-tune with the mask, measure.
    private func prune(at sparsity: Double, saved: CheckpointModel, loaded: LoadedCheckpoint, folder: String,
                       data: DatasetSplits, session: TrainingSession) throws -> PruningRow {
        let communicator = session.communicator
        var configuration = loaded.state.configuration
        configuration.epochs = finetuneEpochs
        configuration.learningRate = learningRate ?? configuration.learningRate / 10
        configuration.monitor = nil
        configuration.earlyStopPatience = nil
        configuration.plateauFactor = nil
        if configuration.schedule == .plateau { configuration.schedule = .constant }
        let directory = "\(out)/sparsity-\(String(format: "%.2f", sparsity))"
        let lock = try lockEmptyOnCoordinator(directory, communicator: communicator)
        defer { withExtendedLifetime(lock) {} }

        let model = try configuration.makeModel(for: data)
        try loaded.restoreParameters(into: model.parameters)
        let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: data,
                                  configuration: configuration, communicator: communicator, threadsPerRank: session.threads,
                                  reporter: try makeReporter(directory, communicator: communicator),
                                  checkpointing: CheckpointSettings(directory: directory, keep: 1),
                                  tracker: session.tracker)
        func accuracy() throws -> Double {
            try evaluate(model: model, dataset: trainer.data.test, objective: trainer.objective, communicator: communicator,
                         batchSize: configuration.evaluationBatchSize,
                         testTimeAugmentation: configuration.evaluationAugmentation).accuracy
        }
        let before = try accuracy()
        let mask = PruningMask(store: model.parameters, sparsity: sparsity, scope: scope)
        trainer.updateMask = mask.keep
        let pruned = try accuracy()
        trainer.checkpointMetadata = [
            "pruning_mask": mask.encoded, "pruning_sparsity": String(sparsity), "pruning_scope": scope.rawValue,
            "pruned_from": folder, "pruning_finetune_epochs": String(finetuneEpochs),
        ]
        if communicator.isCoordinator { print("sparsity \(String(format: "%.2f", sparsity)): fine-tuning "
            + "\(finetuneEpochs) epoch(s) at learning rate \(String(format: "%g", configuration.learningRate))") }
        trainer.stopsOnSignals = true
        try trainer.run()
        return PruningRow(sparsity: sparsity, before: before, pruned: pruned, finetuned: try accuracy(),
                          layers: PruningMask.sparsity(of: model.parameters), checkpoint: trainer.lastCheckpoint ?? directory)
    }

    /// The console and the sparsity folder's metrics.jsonl (`distrain report` draws the fine-tuning), on the coordinator.
    private func makeReporter(_ directory: String, communicator: Communicator) throws -> TrainingReporter? {
        try communicator.onCoordinator { () -> TrainingReporter in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let log = try MetricsLog(path: "\(directory)/metrics.jsonl", appending: false)
            log.commandLine = (communicator.size > 1 ? "mpirun -n \(communicator.size) " : "") + shellQuoted(CommandLine.arguments)
            return ReporterGroup([ConsoleReporter(isTerminal: false, brief: true), log])
        }
    }

    /// Locks a sparsity folder for this job, refusing one that already holds checkpoints (on every rank).
    private func lockEmptyOnCoordinator(_ directory: String, communicator: Communicator) throws -> CheckpointDirectoryLock? {
        try communicator.onCoordinator {
            let lock = try CheckpointDirectoryLock(path: directory)
            if !CheckpointWriter.checkpointNames(in: directory).isEmpty {
                throw ValidationError("\(directory) already holds checkpoints; choose another --out or remove it")
            }
            return lock
        }
    }

    private func report(_ rows: [PruningRow], folder: String, samples: Int) {
        print("\npruned \(folder) (\(scope.rawValue) magnitude pruning; accuracy on the \(dataset) test set, \(samples) samples)")
        print("sparsity  achieved  before   pruned   fine-tuned  checkpoint")
        for row in rows {
            print(String(format: "%8.2f  %8.4f  %.4f   %.4f   %.4f      ", row.sparsity, row.layers.total,
                row.before, row.pruned, row.finetuned) + row.checkpoint)
        }
        for row in rows {
            let layers = row.layers.perSlice.map { "\($0.name) \(String(format: "%.3f", $0.sparsity))" }.joined(separator: ", ")
            print("sparsity \(String(format: "%.2f", row.sparsity)) per layer: \(layers)")
        }
        fflush(nil)
    }
}

/// One line of the sparsity/accuracy curve.
private struct PruningRow {
    var sparsity: Double
    var before: Double
    var pruned: Double
    var finetuned: Double
    var layers: (perSlice: [(name: String, sparsity: Double)], total: Double)
    var checkpoint: String
}

/// The curve already in `path` (an earlier prune into the same --out) with this run's rows merged in, by
/// sparsity (a sparsity pruned again replaces its row). A file that is not such a curve is refused, not replaced.
private func mergedCurve(_ rows: [PruningSummary], into path: String) throws -> [PruningSummary] {
    guard FileManager.default.fileExists(atPath: path) else { return rows }
    guard let data = FileManager.default.contents(atPath: path),
          let earlier = try? JSONDecoder().decode([PruningSummary].self, from: data) else {
        throw ValidationError("\(path) is not a pruning curve distrain wrote; move it or choose another --out")
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

extension PruningScope: ExpressibleByArgument {}
