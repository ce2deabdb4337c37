import Datasets
import DurableFiles
import Foundation
import Selection
import Training

extension TrainingSession {
    /// `--kfold K`: K trainings, fold k of the training set held out as validation in the k-th; each fold in
    /// its own folder DIR/fold-k (checkpoints, metrics.jsonl, result.json), then per-fold and mean ± sd in
    /// DIR/kfold.json. With `--resume auto` finished folds are read back and an interrupted one continues from
    /// its checkpoint. Needs `plan.checkpointDirectory`.
    @discardableResult
    public func crossValidate(_ plan: RunPlan, data: DatasetSplits, folds k: Int) throws -> CrossValidationSummary {
        let root = plan.checkpointDirectory!
        var results: [FoldResult] = []
        for fold in 1...k {
            var foldPlan = plan
            foldPlan.configuration.foldCount = k
            foldPlan.configuration.fold = fold
            foldPlan.checkpointDirectory = "\(root)/fold-\(fold)"
            foldPlan.metricsPath = nil
            foldPlan.brief = true
            let resultPath = "\(root)/fold-\(fold)/result.json"
            if let earlier = try readOnCoordinator(resultPath, as: FoldResult.self) {
                guard plan.resume != nil else {
                    throw SelectionError(message: "\(root) already holds k-fold results; add --resume auto to continue that "
                        + "run, or use a new --checkpoint-dir")
                }
                guard earlier.configuration == foldPlan.configuration else {
                    throw SelectionError(message: "\(resultPath) is a fold of other settings; use a new --checkpoint-dir")
                }
                if communicator.isCoordinator {
                    print("fold \(fold)/\(k): finished earlier (validation accuracy \(percent(earlier.validationAccuracy)))")
                }
                results.append(earlier)
                continue
            }
            if communicator.isCoordinator { print("fold \(fold)/\(k): validation = fold \(fold) of the training set") }
            try createFolderOnCoordinator(foldPlan.checkpointDirectory!)
            let trainer = try train(foldPlan, data: data)
            let validation = try lastValidation(trainer)
            let result = FoldResult(fold: fold, validationAccuracy: validation.accuracy, validationLoss: validation.meanLoss,
                                    epochs: trainer.epochsCompleted, stoppedEarly: trainer.stoppedEarly,
                                    configuration: foldPlan.configuration)
            try writeOnCoordinator(result, to: resultPath)
            results.append(result)
        }
        let summary = CrossValidationSummary(folds: results)
        if communicator.isCoordinator {
            for line in summary.table { print(line) }
            try writeJSONAtomically(summary, to: "\(root)/kfold.json")
        }
        return summary
    }

    /// The validation evaluation of the trainer's last epoch (cross-validation always has one).
    private func lastValidation(_ trainer: Trainer) throws -> EvaluationResult {
        guard let validation = trainer.lastValidation else {
            throw SelectionError(message: "the fold trained no epoch (--epochs 0?), so it has no validation result")
        }
        return validation
    }

    private func percent(_ value: Double) -> String { String(format: "%.2f%%", 100 * value) }
}
