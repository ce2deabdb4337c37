import ArgumentParser
import Collectives
import Foundation
import Selection
import Training

extension CompareCommand {
    /// Two language models on the same windows of a token-shard folder's val split: the paired per-window loss
    /// difference with a bootstrap interval (the language-model counterpart of McNemar's test).
    func compareLanguageModels(communicator: Communicator) throws {
        var models: [(LanguageModelCheckpoint, String)] = []
        for path in [checkpointA, checkpointB] {
            let (file, folder) = try readSavedModelFile(path, communicator: communicator)
            guard LanguageModelCheckpoint.holdsLanguageModel(file) else {
                throw ValidationError("\(folder) is not a language model (task \(recordedTask(file))); \(dataset) holds token "
                    + "shards, which only language models read")
            }
            models.append((try LanguageModelCheckpoint(file: file), folder))
        }
        let (a, folderA) = models[0], (b, folderB) = models[1]
        guard a.tokenizerFingerprint == b.tokenizerFingerprint, a.vocabularySize == b.vocabularySize else {
            throw ValidationError("\(folderA) and \(folderB) were trained on text of different tokenizers; their losses "
                + "per token measure different things (compare bits per byte with distrain evaluate instead)")
        }
        let lossesA = try a.windowLosses(directory: dataset, limit: testLimit, batchSize: 64, communicator: communicator)
        let lossesB = try b.windowLosses(directory: dataset, limit: testLimit, batchSize: 64, communicator: communicator)
        // Windows of each model's own context: compare only when they cut the text the same way.
        guard lossesA.count == lossesB.count, a.context == b.context else {
            throw ValidationError("\(folderA) reads windows of \(a.context) tokens, \(folderB) of \(b.context): they score "
                + "different windows; compare models of the same context")
        }
        guard communicator.isCoordinator else { return }
        let comparison = PairedLossComparison(lossesA: lossesA, lossesB: lossesB, resamples: bootstrap, seed: seed)
        printLossComparison(comparison, folderA: folderA, folderB: folderB)
    }

    private func printLossComparison(_ c: PairedLossComparison, folderA: String, folderB: String) {
        if json {
            print(JSONValue.object([
                ("checkpoint_a", .string(folderA)), ("checkpoint_b", .string(folderB)), ("data", .string(dataset)),
                ("windows", .int(c.windows)), ("loss_a", .number(c.meanLossA)), ("loss_b", .number(c.meanLossB)),
                ("difference", .number(c.difference)), ("interval_low", .number(c.interval.low)),
                ("interval_high", .number(c.interval.high)), ("windows_a_better", .int(c.windowsABetter)),
                ("windows_b_better", .int(c.windowsBBetter)), ("significant", .bool(c.isSignificant)),
            ]).serialized)
        } else {
            print("A: \(folderA)  loss \(format(c.meanLossA, 4)) nats/token")
            print("B: \(folderB)  loss \(format(c.meanLossB, 4)) nats/token")
            print("on \(c.windows) windows of \(dataset)'s val split: A − B = \(format(c.difference, 4)) nats/token, 95% "
                + "bootstrap interval [\(format(c.interval.low, 4)), \(format(c.interval.high, 4))]; A lower on "
                + "\(c.windowsABetter) windows, B on \(c.windowsBBetter)")
            print(c.isSignificant ? "\(c.difference < 0 ? "A" : "B") predicts this text better (the interval excludes 0)"
                  : "no clear difference (the interval contains 0)")
        }
        fflush(nil)
    }
}
