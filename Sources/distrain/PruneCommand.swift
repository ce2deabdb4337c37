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
            let plan = PruningPlan(scope: scope, finetuneEpochs: finetuneEpochs, learningRate: learningRate, out: out)
            let rows = try sparsities.map { sparsity in
                try session.pruneAndFineTune(loaded, from: folder, data: data, sparsity: sparsity, plan: plan)
            }
            if communicator.isCoordinator { report(rows, folder: folder, samples: data.test.count) }
            try session.writePruningCurve(rows, out: out)
        }
    }

    /// The dataset as the checkpoint saw it (image preprocessing, CSV columns), on every rank.
    private func loadData(_ saved: CheckpointModel, folder: String, session: TrainingSession) throws -> DatasetSplits {
        if !saved.objective.judgesAnswers {
            throw ValidationError("\(folder) is a \(saved.objective.task) model; prune reports accuracy and takes classification "
                + "checkpoints only")
        }
        let (registered, directory) = try dataLocation.registered(dataset, like: saved)
        let data = try session.loadCollectively(registered, directory: directory)
        try requireFits(saved, folder: folder, data: data.test, datasetName: dataset)
        return data
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

extension PruningScope: ExpressibleByArgument {}
