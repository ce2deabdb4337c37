import DistrainKit
import Foundation
import XCTest
import _TestSupport

/// A training session in-process, as the commands use it: a run into a checkpoint folder, another run refused
/// there unless it resumes, and `--local-ranks 2` giving one rank's parameters.
final class TrainingSessionTests: XCTestCase {
    private var root = ""
    override func setUp() { root = makeTemporaryDirectory("session") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func data() -> DatasetSplits {
        let train = syntheticImages(count: 90, seed: 3), test = syntheticImages(count: 30, seed: 4)
        return DatasetSplits(
            name: "synthetic",
            train: ImageDataset(shape: [1, 28, 28], pixels: train.pixels, labels: train.labels, classNames: mnistClassNames),
            test: ImageDataset(shape: [1, 28, 28], pixels: test.pixels, labels: test.labels, classNames: mnistClassNames))
    }

    private func plan(epochs: Int, folder: String?, localRanks: Int = 1) -> RunPlan {
        var configuration = TrainingConfiguration(dataset: "synthetic", epochs: epochs, globalBatchSize: 16)
        configuration.optimizer = .sgd  // plain SGD: a regime where last-bit differences stay small (README)
        configuration.momentum = 0
        configuration.learningRate = 0.01
        var plan = RunPlan(configuration: configuration)
        plan.checkpointDirectory = folder
        plan.progress = false
        plan.brief = true
        plan.localRanks = localRanks
        plan.commandLine = "test"
        return plan
    }

    func testARunResumesAndAnotherRunIntoItsFolderIsRefused() throws {
        let session = try TrainingSession(communicator: InProcessCommunicator.single(), threads: 1, collectiveTimeout: 60)
        let folder = root + "/run"
        let lock = session.lockOnCoordinator(folder)  // as the commands do first: it makes the folder
        XCTAssertNotNil(lock)
        XCTAssertNil(session.pendingError)
        let first = try session.train(plan(epochs: 1, folder: folder), data: data())
        XCTAssertEqual(first.lastCheckpoint.map { URL(fileURLWithPath: $0).lastPathComponent }, "step-00000006")
        XCTAssertThrowsError(try session.train(plan(epochs: 2, folder: folder), data: data())) { error in
            XCTAssertTrue("\(error)".contains("holds another run's checkpoints"), "\(error)")
        }
        var resumed = plan(epochs: 2, folder: folder)
        resumed.resume = "auto"
        let second = try session.train(resumed, data: data())
        XCTAssertEqual(second.lastCheckpoint.map { URL(fileURLWithPath: $0).lastPathComponent }, "step-00000012")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/metrics.jsonl"), "the folder's own metrics")
    }

    func testKFoldTrainsEachFoldOnceAndResumesByReadingThemBack() throws {
        let session = try TrainingSession(communicator: InProcessCommunicator.single(), threads: 1, collectiveTimeout: 60)
        let folder = root + "/kfold"
        let lock = session.lockOnCoordinator(folder)
        XCTAssertNotNil(lock)
        let summary = try session.crossValidate(plan(epochs: 1, folder: folder), data: data(), folds: 3)
        XCTAssertEqual(summary.folds.map(\.fold), [1, 2, 3])
        XCTAssertEqual(Set(summary.folds.map(\.configuration.fold)), [1, 2, 3], "each fold held out once")
        let written = try JSONDecoder().decode(CrossValidationSummary.self,
                                               from: Data(contentsOf: URL(fileURLWithPath: folder + "/kfold.json")))
        XCTAssertEqual(written.folds, summary.folds)
        XCTAssertThrowsError(try session.crossValidate(plan(epochs: 1, folder: folder), data: data(), folds: 3)) {
            XCTAssertTrue("\($0)".contains("already holds k-fold results"), "\($0)")
        }
        var resumed = plan(epochs: 1, folder: folder)
        resumed.resume = "auto"
        let again = try session.crossValidate(resumed, data: data(), folds: 3)
        XCTAssertEqual(again.folds, summary.folds, "finished folds are read back, not trained again")
    }

    func testPruningAndFineTuningKeepsThePrunedWeightsAtZero() throws {
        let session = try TrainingSession(communicator: InProcessCommunicator.single(), threads: 1, collectiveTimeout: 60)
        let folder = root + "/dense"
        let lock = session.lockOnCoordinator(folder)
        XCTAssertNotNil(lock)
        let trained = try session.train(plan(epochs: 1, folder: folder), data: data())
        let checkpoint = try XCTUnwrap(trained.lastCheckpoint)
        let loaded = try LoadedCheckpoint.load(directory: checkpoint, communicator: session.communicator)
        let pruning = PruningPlan(scope: .global, finetuneEpochs: 1, learningRate: nil, out: root + "/pruned")
        let row = try session.pruneAndFineTune(loaded, from: checkpoint, data: data(), sparsity: 0.5, plan: pruning)
        XCTAssertEqual(row.layers.total, 0.5, accuracy: 0.01)
        XCTAssertLessThan(row.pruned, row.before + 1e-9, "pruning half the weights does not help before fine-tuning")
        let tuned = try LoadedCheckpoint.load(directory: row.checkpoint, communicator: session.communicator)
        let weight = try XCTUnwrap(tuned.model.entries["1.weight"])
        let values = try tuned.model.values("1.weight")
        let zeros = values.filter { $0 == 0 }.count
        XCTAssertGreaterThan(Double(zeros) / Double(weight.shape.reduce(1, *)), 0.4, "pruned weights stayed zero")
        try session.writePruningCurve([row], out: root + "/pruned")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/pruned/pruning.json"))
    }

    func testASweepRanksItsTrialsOnValidationAndResumesByReadingThemBack() throws {
        let session = try TrainingSession(communicator: InProcessCommunicator.single(), threads: 1, collectiveTimeout: 60)
        let out = root + "/sweep"
        let lock = session.lockOnCoordinator(out)
        XCTAssertNotNil(lock)
        let data = data()
        func trial(_ number: Int, rate: Float) -> SweepTrial {
            SweepTrial(number: number, values: "--lr \(rate)", arguments: ["synthetic", "--lr", "\(rate)"]) { session in
                var plan = self.plan(epochs: 1, folder: nil)
                plan.configuration.learningRate = rate
                plan.configuration.validationSplit = 0.2
                return (plan, { try session.train($0, data: data) })
            }
        }
        let trials = [trial(1, rate: 1e-6), trial(2, rate: 0.05)]
        let results = try trials.map { try session.runTrial($0, of: 2, out: out, resume: false) }
        XCTAssertEqual(results.map(\.status), ["ok", "ok"])
        let ranked = try writeSweepSummary(results, out: out)
        XCTAssertEqual(ranked.first?.trial, 2, "a rate that learns beats one that does not, on validation loss")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/summary.csv"))
        XCTAssertThrowsError(try session.runTrial(trials[0], of: 2, out: out, resume: false)) {
            XCTAssertTrue("\($0)".contains("already holds sweep results"), "\($0)")
        }
        let again = try session.runTrial(trials[1], of: 2, out: out, resume: true)
        XCTAssertEqual(again.bestValue, results[1].bestValue, "read back, not trained again")
        XCTAssertEqual(again.seconds, results[1].seconds)
    }

    func testTwoLocalRanksGiveOneRanksParameters() throws {
        let session = try TrainingSession(communicator: InProcessCommunicator.single(), threads: 1, collectiveTimeout: 60,
                                          localRanks: 2)
        let one = try session.train(plan(epochs: 2, folder: nil), data: data())
        let two = try session.train(plan(epochs: 2, folder: nil, localRanks: 2), data: data())
        let a = Array(one.model.parameters.values)
        let b = Array(two.model.parameters.values)
        XCTAssertLessThan(maximumRelativeDifference(a, b), 1e-5)
        XCTAssertGreaterThan(maximumRelativeDifference(a, b), 0, "two runs, not one object")
    }
}
