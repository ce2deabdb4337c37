import Datasets
import Foundation

/// Model selection inside a run: the validation split or fold, and the callbacks after each epoch.
extension Trainer {
    /// The validation score `--monitor` names (higher is better).
    func monitoredScore(_ validation: EvaluationResult) -> Double {
        let name = (configuration.monitor ?? .valLoss).metricName
        // A monitor the objective lacks is refused before training (val_accuracy of a regression): 0 never decides.
        return validation.metrics.first { $0.name == name }?.score ?? 0
    }

    /// What picks `best` without a validation split: the objective's selection metric on the test set.
    func testScore(_ test: EvaluationResult) -> Double {
        test.metrics.first { $0.name == objective.selectionMetric }?.score ?? 0
    }

    /// After an epoch's evaluation (the same numbers on every rank): the best score, the plateau schedule
    /// and early stopping, each announced once.
    func selectAfterEpoch(_ epoch: Int, score: Double) {
        selection.record(score: score, epoch: epoch)
        guard data.validation != nil else { return }
        let monitor = (configuration.monitor ?? .valLoss).rawValue
        if configuration.schedule == .plateau,
           let scale = selection.reduceOnPlateau(factor: configuration.plateauFactor ?? 0.1, patience: configuration.plateauPatience ?? 2,
                                                 baseRate: configuration.learningRate,
                                                 minimumRate: configuration.minimumLearningRate ?? 0) {
            announce("plateau: \(monitor) has not improved for \(configuration.plateauPatience ?? 2) epochs; learning "
                + "rate now \(String(format: "%.3g", Double(configuration.learningRate * scale)))")
        }
        if selection.shouldStop(patience: configuration.earlyStopPatience) {
            stoppedEarly = true
            let best = selection.bestScore.map { configuration.monitor == .valAccuracy ? $0 : -$0 } ?? .nan
            announce("early stop after epoch \(epoch): \(monitor) has not improved for "
                + "\(selection.epochsWithoutImprovement) epochs (best \(String(format: "%.4f", best)) at epoch \(selection.bestEpoch))")
        }
    }

    /// One line from the coordinator.
    private func announce(_ message: String) {
        guard communicator.isCoordinator else { return }
        print(message)
        fflush(nil)
    }
}
