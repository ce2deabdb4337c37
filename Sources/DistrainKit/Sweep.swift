import DurableFiles
import Foundation
import Selection
import Training

/// One trial of a sweep as the library runs it: its number, its swept values and command line (recorded to
/// recognize it on `--resume`), and — made only when it is to be trained — its run plan and how it trains
/// (a dataset's run, or a token run's).
public struct SweepTrial {
    public typealias Prepared = (plan: RunPlan, train: (RunPlan) throws -> Trainer)
    public var number: Int
    public var values: String
    public var arguments: [String]
    public var prepare: (TrainingSession) throws -> Prepared

    public init(number: Int, values: String, arguments: [String], prepare: @escaping (TrainingSession) throws -> Prepared) {
        self.number = number
        self.values = values
        self.arguments = arguments
        self.prepare = prepare
    }
}

extension TrainingSession {
    /// One trial in OUT/trial-NNN: read back when it finished earlier (with `resume`; else refused), otherwise
    /// trained (resumed from its checkpoint with `resume`) and its result written. A trial whose loss went
    /// non-finite is a failed trial, not a failed sweep.
    public func runTrial(_ trial: SweepTrial, of count: Int, out: String, resume: Bool) throws -> TrialResult {
        let folder = "\(out)/trial-\(String(format: "%03d", trial.number))"
        if let earlier = try readOnCoordinator("\(folder)/result.json", as: TrialResult.self) {
            guard resume else {
                throw SelectionError(message: "\(out) already holds sweep results; add --resume to continue that sweep, or use a "
                    + "new --out")
            }
            guard earlier.arguments == trial.arguments else {
                throw SelectionError(message: "\(folder) is a trial of another sweep (\(earlier.values)); use a new --out")
            }
            if communicator.isCoordinator { print("trial \(trial.number)/\(count) (\(trial.values)): finished earlier") }
            return earlier
        }
        if communicator.isCoordinator { print("trial \(trial.number)/\(count): \(trial.values)") }
        try createFolderOnCoordinator(folder)
        let prepared = try trial.prepare(self)
        var plan = prepared.plan
        plan.checkpointDirectory = folder
        plan.brief = true
        plan.resume = resume ? "auto" : nil
        let monitor = plan.configuration.monitor ?? .valLoss
        let start = Date()
        var result = TrialResult(trial: trial.number, values: trial.values, arguments: trial.arguments, status: "ok",
                                 monitor: monitor.rawValue, bestValue: nil, bestEpoch: 0, finalValidationAccuracy: nil,
                                 finalValidationLoss: nil, testAccuracy: nil, seconds: 0)
        do {
            let trainer = try prepared.train(plan)
            result.bestValue = trainer.selection.bestScore.map { monitor == .valLoss ? -$0 : $0 }
            result.bestEpoch = trainer.selection.bestEpoch
            result.finalValidationAccuracy = trainer.lastValidation?.accuracy
            result.finalValidationLoss = trainer.lastValidation?.meanLoss
            result.testAccuracy = trainer.lastEvaluation?.accuracy
        } catch let error as NonFiniteError {
            result.status = "failed: \(error)"  // every rank saw it: the sweep goes on
        }
        result.seconds = Date().timeIntervalSince(start)
        try writeOnCoordinator(result, to: "\(folder)/result.json")
        return result
    }
}

/// The trials best first, written to OUT/summary.csv and OUT/summary.json (coordinator).
public func writeSweepSummary(_ results: [TrialResult], out: String) throws -> [TrialResult] {
    let ranked = rankTrials(results)
    let monitor = ranked.first?.monitor ?? "val_loss"
    var csv = "rank,trial,best_\(monitor),best_epoch,final_val_accuracy,final_val_loss,test_accuracy,seconds,status,values\n"
    func plain(_ value: Double?) -> String { value.map { "\($0)" } ?? "" }
    for (rank, r) in ranked.enumerated() {
        csv += "\(rank + 1),\(r.trial),\(plain(r.bestValue)),\(r.bestEpoch),\(plain(r.finalValidationAccuracy)),"
            + "\(plain(r.finalValidationLoss)),\(plain(r.testAccuracy)),\(r.seconds),"
            + "\(r.status.replacingOccurrences(of: ",", with: ";")),\"\(r.values)\"\n"
    }
    try writeFileAtomically(csv, to: "\(out)/summary.csv")
    try writeJSONAtomically(ranked, to: "\(out)/summary.json")
    return ranked
}
