import XCTest
import Collectives
import Datasets
import Layers
import SafeTensors
@testable import Training
import _TestSupport

final class CheckpointTests: XCTestCase {
    private var root = ""
    override func setUp() { root = makeTemporaryDirectory("checkpoints") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private let data = syntheticSplits(train: 45, test: 12)

    private func configuration(epochs: Int = 3, model: ModelName = .mlp, optimizer: OptimizerKindAlias = .adam) -> TrainingConfiguration {
        TrainingConfiguration(dataset: "synthetic", model: model, epochs: epochs, globalBatchSize: 8, optimizer: optimizer,
                              learningRate: optimizer == .sgd ? 0.05 : 1e-3, momentum: optimizer == .sgd ? 0.9 : 0)
    }

    /// Trains on `world` in-process ranks; returns rank 0's final parameters.
    @discardableResult
    private func train(_ configuration: TrainingConfiguration, world: Int, checkpointing: CheckpointSettings? = nil,
                       resume: String? = nil) throws -> [Float] {
        try InProcessGroup(size: world, timeoutSeconds: 120).run { comm -> [Float] in
            let loaded = try resume.map { try LoadedCheckpoint.load(directory: $0, communicator: comm) }
            let trainer = try makeTrainer(configuration: configuration, data: self.data, communicator: comm, reporter: nil,
                                      checkpointing: checkpointing, resume: loaded)
            try trainer.run()
            return Array(trainer.model.parameters.values)
        }[0]
    }

    func testRoundTripOfEveryModelAndOptimizerState() throws {
        for model in ModelName.allCases {
            let store = makeModel(model, inputShape: [1, 28, 28], classes: 10).parameters
            store.initializeKaimingUniform(seed: 5)
            let optimizer = makeOptimizer(OptimizerSettings(kind: .adam), parameterCount: store.count)
            for i in 0..<store.count { store.gradients[i] = Float(i % 7) * 0.01 }
            optimizer.update(store, learningRate: 1e-3)
            let state = CheckpointState(distrainVersion: distrainVersion, epoch: 1, nextBatch: 0, globalStep: 1, samplesDoneInEpoch: 0,
                                        seed: 5, partialLossSum: 0, partialCorrect: 0, partialSeen: 0, testAccuracy: 0.5,
                                        configuration: configuration(model: model), worldSize: 1, writtenAt: 0)
            let writer = CheckpointWriter(settings: CheckpointSettings(directory: "\(root)/\(model.rawValue)"))
            let images = ImageDataset(shape: [1, 28, 28], pixels: [], labels: [], classNames: mnistClassNames)
                .normalized(by: Normalization(mean: [0.3], standardDeviation: [0.4]))
            let folder = try writer.write(state: state, store: store, optimizer: optimizer,
                                          model: ModelDescription(label: model.rawValue, spec: nil, pytorchSource: model.pytorchEquivalent),
                                          dataMetadata: images.checkpointMetadata)
            let loaded = try LoadedCheckpoint.load(directory: folder, communicator: InProcessCommunicator.single())
            XCTAssertEqual(loaded.state, state)
            let rebuilt = try CheckpointModel(file: loaded.model)
            XCTAssertEqual(Array(rebuilt.model.parameters.values), Array(store.values), "\(model)")
            XCTAssertEqual(rebuilt.normalization, Normalization(mean: [0.3], standardDeviation: [0.4]))
            XCTAssertEqual(loaded.model.metadata["architecture"], model.pytorchEquivalent)
            let fresh = makeOptimizer(OptimizerSettings(kind: .adam), parameterCount: store.count)
            try loaded.restoreOptimizer(fresh, store: store)
            XCTAssertEqual(fresh.stepCount, 1)
            for (a, b) in zip(fresh.stateBuffers, optimizer.stateBuffers) { XCTAssertEqual(Array(a.values), Array(b.values)) }
        }
    }

    func testResumeAfterAnEpochIsBitwiseOnTheSameWorldSize() throws {
        for kind in [OptimizerKindAlias.sgd, .adam] {
            let straight = try train(configuration(optimizer: kind), world: 2)
            let directory = "\(root)/\(kind)"
            // "Stopped" after epoch 1: a 1-epoch run that checkpoints, then resume to 3 epochs.
            try train(configuration(epochs: 1, optimizer: kind), world: 2, checkpointing: CheckpointSettings(directory: directory))
            let resumed = try train(configuration(optimizer: kind), world: 2, checkpointing: CheckpointSettings(directory: directory),
                                    resume: try CheckpointWriter.resolveResume("auto", checkpointRoot: directory))
            XCTAssertEqual(resumed, straight, "\(kind): resuming must continue exactly")
        }
    }

    func testResumeMidEpochOnAnotherWorldSize() throws {
        let straight = try train(configuration(), world: 1)
        let directory = "\(root)/mid"
        // Written by 4 ranks every 4 steps (6 steps per epoch, so some checkpoints fall mid-epoch).
        try train(configuration(epochs: 2), world: 4, checkpointing: CheckpointSettings(directory: directory, everySteps: 4, keep: 10))
        let names = CheckpointWriter.checkpointNames(in: directory)
        XCTAssertEqual(names, ["step-00000004", "step-00000006", "step-00000008", "step-00000012"])
        // Resume from step 4 (mid epoch 1) with 2 ranks and finish all 3 epochs.
        let resumed = try train(configuration(), world: 2, resume: "\(directory)/step-00000004")
        XCTAssertLessThanOrEqual(maximumRelativeDifference(resumed, straight), 1e-5)
        let state = try LoadedCheckpoint.load(directory: "\(directory)/step-00000004", communicator: InProcessCommunicator.single()).state
        XCTAssertEqual(state.worldSize, 4)
        XCTAssertEqual(state.epoch, 0)
        XCTAssertEqual(state.nextBatch, 4)
        XCTAssertEqual(state.samplesDoneInEpoch, 32)
        XCTAssertEqual(state.partialSeen, 32)
    }

    func testKeepsNewestKPlusBestAndPointers() throws {
        let directory = "\(root)/keep"
        try train(configuration(epochs: 4), world: 1, checkpointing: CheckpointSettings(directory: directory, keep: 2))
        let names = CheckpointWriter.checkpointNames(in: directory)
        let best = try XCTUnwrap(CheckpointWriter.pointer("best", in: directory))
        XCTAssertEqual(CheckpointWriter.pointer("latest", in: directory), "step-00000024")
        XCTAssertTrue(names.suffix(2) == ["step-00000018", "step-00000024"])
        XCTAssertTrue(names.contains(best))
        XCTAssertEqual(Set(names), Set(["step-00000018", "step-00000024", best]))
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        XCTAssertFalse(entries.contains { $0.contains("tmp") }, "\(entries)")
    }

    func testChangingTheModelOrBatchIsRefusedButEpochsMayChange() throws {
        let directory = "\(root)/change"
        try train(configuration(epochs: 1), world: 1, checkpointing: CheckpointSettings(directory: directory))
        let latest = try XCTUnwrap(CheckpointWriter.resolveResume("auto", checkpointRoot: directory))
        XCTAssertThrowsError(try train(configuration(model: .lenet), world: 1, resume: latest)) {
            XCTAssertTrue("\($0)".contains("--model mlp but this run asks for lenet"), "\($0)")
        }
        var bigger = configuration()
        bigger.globalBatchSize = 16
        XCTAssertThrowsError(try train(bigger, world: 1, resume: latest)) { XCTAssertTrue("\($0)".contains("--batch-size"), "\($0)") }
        XCTAssertNoThrow(try train(configuration(epochs: 2), world: 1, resume: latest))
    }

    func testHostileCheckpointFilesAreOneLineErrors() throws {
        let directory = "\(root)/hostile"
        try train(configuration(epochs: 1), world: 1, checkpointing: CheckpointSettings(directory: directory))
        let folder = "\(directory)/step-00000006"
        func expectFailure(_ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try train(configuration(), world: 2, resume: folder), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\"\(error)\" lacks \"\(fragment)\"", file: file, line: line)
                XCTAssertFalse("\(error)".contains("\n"), file: file, line: line)
            }
        }
        let statePath = "\(folder)/state.json", modelPath = "\(folder)/model.safetensors"
        let goodState = [UInt8](FileManager.default.contents(atPath: statePath)!)
        let goodModel = [UInt8](FileManager.default.contents(atPath: modelPath)!)

        writeBytes(Array("{\"epoch\": ".utf8), to: statePath)
        expectFailure("state.json: is not valid JSON")
        writeBytes([0x7B, 0xFF, 0x7D], to: statePath)
        expectFailure("state.json: is not valid UTF-8")
        writeBytes(Array("{\"epoch\": 1}".utf8), to: statePath)
        expectFailure("state.json: lacks the field")
        writeBytes(goodState, to: statePath)

        writeBytes(Array(goodModel.prefix(goodModel.count - 100)), to: modelPath)
        expectFailure("model.safetensors: tensor")
        // Weights of another model: shapes do not match.
        let other = makeModel(.mlpLarge, inputShape: [1, 28, 28], classes: 10).parameters
        let otherBytes = other.slices.map { slice in
            TensorToWrite(name: slice.name, shape: slice.shape, values: UnsafeBufferPointer(rebasing: other.values[slice.offset..<(slice.offset + slice.count)]))
        }
        writeBytes(SafeTensors.encode(otherBytes, metadata: [:]), to: modelPath)
        expectFailure("has shape [1024, 784] but the model needs [128, 784]")
        // A tensor missing.
        let mine = makeModel(.mlp, inputShape: [1, 28, 28], classes: 10).parameters
        let firstOnly = [mine.slices[0]].map { slice in
            TensorToWrite(name: slice.name, shape: slice.shape, values: UnsafeBufferPointer(rebasing: mine.values[slice.offset..<(slice.offset + slice.count)]))
        }
        writeBytes(SafeTensors.encode(firstOnly, metadata: [:]), to: modelPath)
        expectFailure("missing tensor 1.bias")
        try FileManager.default.removeItem(atPath: modelPath)
        expectFailure("model.safetensors: is missing")
    }
}

typealias OptimizerKindAlias = Optimizers.OptimizerKind
import Optimizers
