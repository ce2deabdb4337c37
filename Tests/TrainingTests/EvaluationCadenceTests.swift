import XCTest
import Collectives
import Datasets
@testable import Training
import _TestSupport

/// `--eval-every N`: evaluations after every N-th epoch and the last; training itself is unchanged.
final class EvaluationCadenceTests: XCTestCase {
    private final class Recorder: TrainingReporter {
        var epochs: [EpochRecord] = []
        func started(_ record: StartRecord) throws {}
        func stepCompleted(epoch: Int, step: Int, of steps: Int, runningLoss: Double, runningAccuracy: Double?) {}
        func epochCompleted(_ record: EpochRecord) throws { epochs.append(record) }
        func finished(_ record: FinalRecord) throws {}
    }

    func testEvaluatesEveryNthEpochAndTheLastWithoutChangingTraining() throws {
        let data = syntheticSplits(train: 60, test: 20)
        var configuration = TrainingConfiguration(dataset: "synthetic", model: .cnn, epochs: 5, globalBatchSize: 16)
        configuration.validationSplit = 0.25
        func train(every interval: Int?) throws -> (parameters: [Float], records: [EpochRecord], best: Int) {
            var c = configuration
            c.evaluationInterval = interval
            let recorder = Recorder()
            let trainer = try makeTrainer(configuration: c, data: data, communicator: InProcessCommunicator.single(), reporter: recorder)
            try trainer.run()
            return (Array(trainer.model.parameters.values), recorder.epochs, trainer.selection.bestEpoch)
        }
        let everyEpoch = try train(every: nil), sparse = try train(every: 2)
        XCTAssertEqual(sparse.parameters, everyEpoch.parameters, "evaluating must not change what is trained (dropout's stream included)")
        XCTAssertEqual(everyEpoch.records.compactMap { $0.validation?.value("accuracy") }.count, 5)
        XCTAssertEqual(sparse.records.filter { $0.validation != nil }.map(\.epoch), [2, 4, 5])
        for (a, b) in zip(sparse.records, everyEpoch.records) where a.validation != nil {
            XCTAssertEqual(a.validation, b.validation, "epoch \(a.epoch)")
        }
        XCTAssertTrue([2, 4, 5].contains(sparse.best), "best is chosen among evaluated epochs, got \(sparse.best)")
    }
}
