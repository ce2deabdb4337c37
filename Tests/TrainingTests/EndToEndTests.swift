import XCTest
import Collectives
import Datasets
@testable import Training
import _TestSupport

final class EndToEndTests: XCTestCase {
    func testLearnsSyntheticDataWellAboveChance() throws {
        let data = syntheticSplits(train: 600, test: 200)
        let trainer = try makeTrainer(configuration: TrainingConfiguration(dataset: "synthetic", epochs: 2, globalBatchSize: 32),
                                  data: data, communicator: InProcessCommunicator.single(), reporter: nil)
        XCTAssertGreaterThan(try trainer.run().accuracy, 0.9)
    }

    /// Real Fashion-MNIST (Debian's dataset-fashion-mnist): 4,000 training images, 2 epochs, > 75%.
    func testRealFashionMNISTSubsetBeats75Percent() throws {
        guard let directory = realFashionMNISTDirectory else {
            throw XCTSkip("dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
        }
        let data = try loadIDXDataset(name: "fashion-mnist", directory: directory, classNames: fashionMNISTClassNames, hint: "")
        XCTAssertEqual(data.train.count, 60_000)
        XCTAssertEqual(data.test.count, 10_000)
        let configuration = TrainingConfiguration(dataset: "fashion-mnist", epochs: 2, trainLimit: 4000, testLimit: 2000)
        let trainer = try makeTrainer(configuration: configuration, data: data, communicator: InProcessCommunicator.single(), reporter: nil)
        let accuracy = try trainer.run().accuracy
        XCTAssertGreaterThan(accuracy, 0.75)
    }
}
