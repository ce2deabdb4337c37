import XCTest
import Collectives
import Datasets
import Layers
import SafeTensors
@testable import Training
import _TestSupport

/// `--tta flip`: each image's logits averaged with its mirror image's, in every evaluation, recorded in
/// checkpoints and refused where there is nothing to mirror.
final class TestTimeAugmentationTests: XCTestCase {
    func testFlipHorizontallyMirrorsEveryRowOfEveryChannel() {
        // Two (2, 2, 3) images: rows [0 1 2], [3 4 5], … become [2 1 0], [5 4 3], …; a middle pixel stays.
        var values = (0..<24).map(Float.init)
        values.withUnsafeMutableBufferPointer { flipHorizontally($0.baseAddress!, batch: 2, shape: [2, 2, 3]) }
        XCTAssertEqual(values, (0..<8).flatMap { row in [2, 1, 0].map { Float(row * 3 + $0) } })
        var even: [Float] = [1, 2, 3, 4]
        even.withUnsafeMutableBufferPointer { flipHorizontally($0.baseAddress!, batch: 1, shape: [1, 1, 4]) }
        XCTAssertEqual(even, [4, 3, 2, 1])
    }

    /// The logits with `.flip` are the mean of the model's logits on the images and on a dataset of their
    /// mirror images, on one rank and on three (the shares are split as for plain evaluation).
    func testFlipAveragesTheLogitsOfEachImageAndItsMirrorImage() throws {
        let images = syntheticImages(count: 23, seed: 9)
        let data = ImageDataset(shape: [1, 28, 28], pixels: images.pixels, labels: images.labels, classNames: mnistClassNames)
        var mirroredPixels = images.pixels
        for row in 0..<(23 * 28) { mirroredPixels[(row * 28)..<(row * 28 + 28)].reverse() }
        let mirrored = ImageDataset(shape: [1, 28, 28], pixels: mirroredPixels, labels: images.labels, classNames: mnistClassNames)
        let normalization = Normalization(mean: [0.3], standardDeviation: [0.3])
        func outputs(_ dataset: ImageDataset, _ tta: TestTimeAugmentation, ranks: Int = 1) throws -> [Float] {
            try InProcessGroup(size: ranks, timeoutSeconds: 60).run { communicator -> [Float] in
                let model = makeModel(.lenet, inputShape: [1, 28, 28], classes: 10)
                model.parameters.initializeKaimingUniform(seed: 4)
                return try predictProbabilities(model: model, dataset: dataset, normalization: normalization, communicator: communicator,
                                                batchSize: 5, softmax: false, testTimeAugmentation: tta)
            }[0]
        }
        let plain = try outputs(data, .none), mirror = try outputs(mirrored, .none)
        let expected = zip(plain, mirror).map { 0.5 * ($0 + $1) }
        XCTAssertGreaterThan(zip(plain, mirror).map { abs($0 - $1) }.max()!, 1e-2, "the synthetic images are not symmetric")
        for ranks in [1, 3] {
            let flipped = try outputs(data, .flip, ranks: ranks)
            XCTAssertEqual(flipped.count, expected.count)
            XCTAssertLessThan(zip(flipped, expected).map { abs($0 - $1) }.max()!, 1e-5, "\(ranks) ranks")
        }
    }

    /// A run with `.flip` scores its epochs with it and records it; the checkpoint's model reads it back,
    /// and an unknown value in the metadata is refused by name.
    func testTheRunsEvaluationsUseItAndItsCheckpointRecordsIt() throws {
        let root = makeTemporaryDirectory("tta")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = syntheticSplits(train: 40, test: 17)
        var configuration = TrainingConfiguration(dataset: "synthetic", model: .lenet, epochs: 1, globalBatchSize: 8)
        configuration.testTimeAugmentation = .flip
        let trainer = try makeTrainer(configuration: configuration, data: data, communicator: InProcessCommunicator.single(),
                                      checkpointing: CheckpointSettings(directory: root))
        let final = try trainer.run()
        let rescored = try evaluate(model: trainer.model, dataset: trainer.data.test, objective: trainer.objective,
                                    communicator: InProcessCommunicator.single(), batchSize: 256, testTimeAugmentation: .flip)
        XCTAssertEqual(final.lossSum, rescored.lossSum, accuracy: 1e-9 * max(1, abs(rescored.lossSum)))
        XCTAssertEqual(final.metrics, rescored.metrics)
        let file = try LoadedCheckpoint.load(directory: "\(root)/step-00000005", communicator: InProcessCommunicator.single()).model
        XCTAssertEqual(file.metadata["tta"], "flip")
        XCTAssertEqual(try CheckpointModel(file: file).testTimeAugmentation, .flip)
        var metadata = file.metadata
        metadata["tta"] = "mirror"
        let edited = try SafeTensors.decode(SafeTensors.encode([], metadata: metadata), path: "edited.safetensors")
        XCTAssertThrowsError(try CheckpointModel(file: edited)) { XCTAssertTrue("\($0)".contains("unknown tta 'mirror'"), "\($0)") }
    }

    func testFlipIsRefusedForOnePixelWideSamples() {
        let table = ImageDataset(shape: [4, 1, 1], pixels: [UInt8](repeating: 1, count: 8), labels: [0, 1], classNames: ["a", "b"])
        var configuration = TrainingConfiguration(dataset: "t.csv", epochs: 1)
        configuration.testTimeAugmentation = .flip
        XCTAssertThrowsError(try configuration.makeModel(for: DatasetSplits(name: "t.csv", train: table, test: table))) {
            XCTAssertTrue($0 is ModelShapeError && "\($0)".contains("--tta flip mirrors images"), "\($0)")
        }
    }
}
