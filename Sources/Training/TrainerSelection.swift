import Datasets
import Foundation

/// Model selection inside a run: the validation split or fold, and the callbacks after each epoch.
extension Trainer {
    /// The run's data: the first `--train-limit` / `--test-limit` samples, with the validation split or fold
    /// carved out of the training set, stratified and deterministic in the seed.
    static func selectionSplits(of data: DatasetSplits, configuration c: TrainingConfiguration) throws -> DatasetSplits {
        var splits = try carveSplits(of: data, configuration: c)
        splits.preprocessing = data.preprocessing
        splits.featureNames = data.featureNames
        splits.labelColumn = data.labelColumn
        return splits
    }

    private static func carveSplits(of data: DatasetSplits, configuration c: TrainingConfiguration) throws -> DatasetSplits {
        let train = data.train.prefix(c.trainLimit), test = data.test.prefix(c.testLimit)
        if let fraction = c.validationSplit {
            let split = try StratifiedSplit.holdOut(labels: train.labels, classNames: train.classNames, fraction: fraction, seed: c.seed)
            return DatasetSplits(name: data.name, train: try train.subset(split.train), test: test,
                                 validation: try train.subset(split.validation))
        }
        if let k = c.foldCount, let fold = c.fold {
            let folds = try StratifiedSplit.folds(labels: train.labels, classNames: train.classNames, k: k, seed: c.seed)
            let rest = folds.enumerated().filter { $0.offset != fold - 1 }.flatMap(\.element).sorted()
            return DatasetSplits(name: data.name, train: try train.subset(rest), test: test, validation: try train.subset(folds[fold - 1]))
        }
        return DatasetSplits(name: data.name, train: train, test: test)
    }

    /// After an epoch's evaluation (the same numbers on every rank): the best score, the plateau schedule
    /// and early stopping, each announced once.
    func selectAfterEpoch(_ epoch: Int, score: Double) {
        selection.record(score: score, epoch: epoch)
        guard data.validation != nil else { return }
        let monitor = (configuration.monitor ?? .valLoss).rawValue
        if configuration.schedule == .plateau,
           let scale = selection.reduceOnPlateau(factor: configuration.plateauFactor ?? 0.1, patience: configuration.plateauPatience ?? 2,
                                                 baseRate: configuration.learningRate, minimumRate: configuration.minimumLearningRate ?? 0) {
            announce("plateau: \(monitor) has not improved for \(configuration.plateauPatience ?? 2) epochs; learning rate now \(String(format: "%.3g", Double(configuration.learningRate * scale)))")
        }
        if selection.shouldStop(patience: configuration.earlyStopPatience) {
            stoppedEarly = true
            let best = selection.bestScore.map { configuration.monitor == .valAccuracy ? $0 : -$0 } ?? .nan
            announce("early stop after epoch \(epoch): \(monitor) has not improved for \(selection.epochsWithoutImprovement) epochs (best \(String(format: "%.4f", best)) at epoch \(selection.bestEpoch))")
        }
    }

    /// One line from the coordinator.
    private func announce(_ message: String) {
        guard communicator.isCoordinator else { return }
        print(message)
        fflush(nil)
    }
}
