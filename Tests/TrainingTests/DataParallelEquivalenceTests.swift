import XCTest
import Collectives
import Datasets
import Layers
@testable import Training
import _TestSupport

/// The central invariant: N ranks give the same model as one rank with the same global batch.
final class DataParallelEquivalenceTests: XCTestCase {
    /// Trains on `worldSize` in-process ranks; returns every rank's final parameters and evaluation.
    private func train(_ configuration: TrainingConfiguration, data: DatasetSplits, worldSize: Int) throws -> [([Float], EvaluationResult)] {
        try InProcessGroup(size: worldSize, timeoutSeconds: 120).run { comm in
            let trainer = try makeTrainer(configuration: configuration, data: data, communicator: comm, reporter: nil)
            let evaluation = try trainer.run()
            return (Array(trainer.model.parameters.values), evaluation)
        }
    }

    /// 37 samples (divisible by none of 2, 3, 4), global batch 8 (not divisible by 3): uneven shares
    /// and a short last batch, several steps over 2 epochs.
    private func assertWorldSizesAgree(_ configuration: TrainingConfiguration, file: StaticString = #filePath, line: UInt = #line) throws {
        let data = syntheticSplits(train: 37, test: 23)
        let reference = try train(configuration, data: data, worldSize: 1)[0]
        for world in 2...4 {
            let ranks = try train(configuration, data: data, worldSize: world)
            for (rank, result) in ranks.enumerated() {
                let difference = maximumRelativeDifference(result.0, reference.0)
                XCTAssertLessThanOrEqual(difference, 1e-5, "world \(world) rank \(rank): parameters differ by \(difference)", file: file, line: line)
                // The model must actually have moved, or the comparison proves nothing.
                XCTAssertGreaterThan(maximumRelativeDifference(result.0, initialParameters(configuration, data: data)), 1e-3, file: file, line: line)
            }
            // Replicas stay bitwise identical to each other.
            for result in ranks.dropFirst() { XCTAssertEqual(result.0, ranks[0].0, "world \(world)", file: file, line: line) }
        }
    }

    private func initialParameters(_ configuration: TrainingConfiguration, data: DatasetSplits) -> [Float] {
        let model = makeModel(configuration.model, inputShape: data.train.shape, classes: 10)
        model.parameters.initializeKaimingUniform(seed: configuration.seed)
        return Array(model.parameters.values)
    }

    func testSGDWithMomentumMatchesOneRank() throws {
        try assertWorldSizesAgree(TrainingConfiguration(dataset: "synthetic", model: .mlp, epochs: 2, globalBatchSize: 8,
                                                        optimizer: .sgd, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4))
    }

    func testAdamMatchesOneRank() throws {
        try assertWorldSizesAgree(TrainingConfiguration(dataset: "synthetic", model: .mlp, epochs: 2, globalBatchSize: 8,
                                                        optimizer: .adam, learningRate: 1e-3))
    }

    func testConvolutionalModelWithDropoutMatchesOneRank() throws {
        // The cnn has dropout: its masks are keyed by global sample index, so they too must not depend on N.
        // SGD, not Adam: Adam divides by |g|, which turns float rounding in near-zero conv gradients
        // (GEMM shapes differ with the per-rank batch) into lr-sized differences of single weights.
        let data = syntheticSplits(train: 13, test: 5)
        let configuration = TrainingConfiguration(dataset: "synthetic", model: .cnn, epochs: 1, globalBatchSize: 6,
                                                  optimizer: .sgd, learningRate: 0.05, momentum: 0.9, weightDecay: 0.01)
        let one = try train(configuration, data: data, worldSize: 1)[0]
        let three = try train(configuration, data: data, worldSize: 3)
        XCTAssertLessThanOrEqual(maximumRelativeDifference(three[2].0, one.0), 1e-5)
    }

    func testDistributedEvaluationEqualsSingleProcessExactly() throws {
        let data = syntheticSplits(train: 64, test: 29)
        let configuration = TrainingConfiguration(dataset: "synthetic", model: .mlp, epochs: 1, globalBatchSize: 16,
                                                  evaluationBatchSize: 4)
        // Same trained parameters on every world size: train once, then evaluate with 1..4 ranks.
        let trained = try train(configuration, data: data, worldSize: 1)[0]
        for world in 1...4 {
            let results = try InProcessGroup(size: world, timeoutSeconds: 60).run { comm -> EvaluationResult in
                let model = makeModel(.mlp, inputShape: [1, 28, 28], classes: 10)
                _ = model.parameters.values.update(fromContentsOf: trained.0)
                return try evaluate(model: model, dataset: data.test, normalization: Normalization.measured(on: data.train),
                                    communicator: comm, batchSize: 4)
            }
            for result in results {
                XCTAssertEqual(result.classification, trained.1.classification, "world \(world)")
                XCTAssertEqual(result.sampleCount, 29)
                // Counts are exact; the loss sum differs only by float rounding (GEMM results depend on batch shape).
                XCTAssertEqual(result.lossSum, trained.1.lossSum, accuracy: 1e-6 * abs(trained.1.lossSum))
            }
        }
    }

    func testRanksThatDisagreeRefuseToStartNamingTheField() throws {
        let data = syntheticSplits(train: 20, test: 5)
        let messages = try InProcessGroup(size: 3, timeoutSeconds: 60).run { comm -> String in
            let configuration = TrainingConfiguration(dataset: "synthetic", epochs: 1, globalBatchSize: 4,
                                                      learningRate: comm.rank == 2 ? 0.5 : 1e-3)
            do {
                _ = try makeTrainer(configuration: configuration, data: data, communicator: comm, reporter: nil)
                return "started"
            } catch {
                return "\(error)"
            }
        }
        for message in messages {
            XCTAssertTrue(message.contains("ranks disagree on the configuration: --lr differs"), message)
            XCTAssertTrue(message.contains("ranks 0 on ") && message.contains(", 1 on ") && message.contains("rank 2 on "), message)
            XCTAssertTrue(message.contains(": 0.001") && message.contains(": 0.5"), "names each rank's value: \(message)")
        }
    }
}
