import XCTest
import Collectives
import Datasets
@testable import Training
import _TestSupport

final class CIFAR10TrainingTests: XCTestCase {
    /// Augmented LeNet training on 1 and 4 in-process ranks ends with the same parameters: crops and
    /// flips are keyed by global sample index, not by which rank happens to hold the sample.
    func testAugmentationIsIdenticalForWorldSizesOneAndFour() throws {
        let data = syntheticCIFARSplits(train: 30, test: 8)
        let configuration = TrainingConfiguration(dataset: "cifar10", model: .lenet, epochs: 2, globalBatchSize: 10,
                                                  optimizer: .sgd, learningRate: 0.05, momentum: 0.9, augment: true)
        func train(_ world: Int) throws -> [Float] {
            try InProcessGroup(size: world, timeoutSeconds: 120).run { comm in
                let trainer = try makeTrainer(configuration: configuration, data: data, communicator: comm, reporter: nil)
                try trainer.run()
                return Array(trainer.model.parameters.values)
            }[0]
        }
        let one = try train(1), four = try train(4)
        XCTAssertLessThanOrEqual(maximumRelativeDifference(four, one), 1e-5)
        // And augmentation really changed what was trained on.
        var plain = configuration
        plain.augment = false
        let unaugmented = try InProcessGroup(size: 1).run { comm -> [Float] in
            let trainer = try makeTrainer(configuration: plain, data: data, communicator: comm, reporter: nil)
            try trainer.run()
            return Array(trainer.model.parameters.values)
        }[0]
        XCTAssertGreaterThan(maximumRelativeDifference(unaugmented, one), 1e-3)
    }

    func testLenetLearnsGeneratedCIFARWellAboveChance() throws {
        let data = syntheticCIFARSplits(train: 400, test: 100)
        let configuration = TrainingConfiguration(dataset: "cifar10", model: .lenet, epochs: 4, globalBatchSize: 20,
                                                  optimizer: .adam, learningRate: 2e-3, augment: true)
        let trainer = try makeTrainer(configuration: configuration, data: data, communicator: InProcessCommunicator.single(), reporter: nil)
        XCTAssertGreaterThan(try trainer.run().accuracy, 0.5, "chance is 0.1")
    }
}
