import DistrainKit
import XCTest
import _TestSupport

/// The README's "As a Swift library" example, on a small generated dataset instead of Fashion-MNIST.
final class LibraryExampleTests: XCTestCase {
    func testAModelBuiltInCodeTrainsWithTheCommandsTrainer() throws {
        let data = smallDataset()
        // --- as in the README ---
        let model = Sequential(inputShape: [1, 28, 28], layers: [
            Flatten(inputShape: [1, 28, 28]),
            Linear(inputFeatures: 784, outputFeatures: 64, activation: .relu, name: "1"),
            Linear(inputFeatures: 64, outputFeatures: 10, name: "3"),
        ])
        model.parameters.initializeKaimingUniform(seed: 1)
        let communicator = try makeCommunicator()   // MPI under mpirun, else one local process
        let configuration = TrainingConfiguration(dataset: data.name, epochs: 3, globalBatchSize: 32)
        let trainer = try Trainer(model: model, optimizer: Adam(parameterCount: model.parameters.count), data: data,
                                  configuration: configuration, communicator: communicator)
        let result = try trainer.run()
        communicator.finalize()
        // --- end ---
        XCTAssertEqual(communicator.size, 1)
        XCTAssertGreaterThan(result.accuracy, 0.8, "chance is 0.1")
        XCTAssertEqual(result.sampleCount, 200)
    }

    private func smallDataset() -> DatasetSplits {
        let train = syntheticImages(count: 600, seed: 5), test = syntheticImages(count: 200, seed: 6)
        return DatasetSplits(
            name: "synthetic",
            train: ImageDataset(shape: [1, 28, 28], pixels: train.pixels, labels: train.labels, classNames: mnistClassNames),
            test: ImageDataset(shape: [1, 28, 28], pixels: test.pixels, labels: test.labels, classNames: mnistClassNames))
    }
}
