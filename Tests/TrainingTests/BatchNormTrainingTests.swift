import XCTest
import Collectives
import Datasets
import Layers
import Optimizers
@testable import Training
import _TestSupport

/// A network with BatchNorm, Dropout, GELU and average pooling trains the same on 2, 3 and 4 ranks as on 1
/// (SyncBatchNorm semantics), and its running statistics survive a checkpoint.
///
/// The invariant is tested where training is well-conditioned (SGD, lr 0.01, momentum 0.5): with a high
/// rate and momentum 0.9 any model amplifies the last-bit differences of a gradient sum's order — one
/// rank started from parameters perturbed by 3e-7 diverges just as far (README: what N = 1 promises).
final class BatchNormTrainingTests: XCTestCase {
    /// 33 samples in batches of 8: the last batch holds one sample, so every other rank's share is empty.
    private let data = syntheticSplits(train: 33, test: 11)

    /// Conv → BN → GELU → AvgPool → Flatten → Linear → BN1d → ReLU → Dropout → Linear.
    private func network() -> Sequential {
        let conv = Conv2D(inputShape: [1, 28, 28], outputChannels: 4, kernelSize: 3, padding: 1, name: "0")
        let pool = AveragePool2D(inputShape: [4, 28, 28], kernelSize: 4)
        let flat = Flatten(inputShape: pool.outputShape)
        let model = Sequential(inputShape: [1, 28, 28], layers: [
            conv, BatchNorm(inputShape: [4, 28, 28], name: "1"), Pointwise(.gelu, shape: [4, 28, 28]), pool, flat,
            Linear(inputFeatures: flat.outputCount, outputFeatures: 16, name: "5"), BatchNorm(inputShape: [16], name: "6"),
            ReLU(shape: [16]), Dropout(shape: [16], probability: 0.25, layerKey: 8), Linear(inputFeatures: 16, outputFeatures: 10, name: "9"),
        ])
        model.parameters.initializeKaimingUniform(seed: 4)
        return model
    }

    private func train(world: Int, epochs: Int, checkpoints: String? = nil, resume: String? = nil,
                       accumulate: Int? = nil) throws -> [[Float]] {
        var configuration = TrainingConfiguration(dataset: "synthetic", epochs: epochs, globalBatchSize: 8, optimizer: .sgd,
                                                  learningRate: 0.01, momentum: 0.5)
        configuration.accumulationSteps = accumulate
        return try InProcessGroup(size: world, timeoutSeconds: 120).run { comm -> [[Float]] in
            let model = self.network()
            let loaded = try resume.map { try LoadedCheckpoint.load(directory: $0, communicator: comm) }
            let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: self.data,
                                      configuration: configuration, communicator: comm,
                                      checkpointing: checkpoints.map { CheckpointSettings(directory: $0) }, resume: loaded)
            try trainer.run()
            return [Array(model.parameters.values), Array(model.parameters.buffers)]
        }[0]
    }

    /// A spec with residual blocks (identity, and a strided projection with BatchNorm on both paths,
    /// Dropout inside): 3 ranks give 1 rank's parameters and running statistics over 30 steps.
    func testResidualBlocksOnThreeRanksGiveTheParametersOfOne() throws {
        let text = """
        Conv2d(1, 4, 3, stride=2, padding=1, bias=False)
        BatchNorm2d(4)
        ReLU()
        Residual(
            Conv2d(4, 4, 3, padding=1, bias=False)
            BatchNorm2d(4)
            GELU()
            Conv2d(4, 4, 3, padding=1)
        )
        Residual(
            Conv2d(4, 8, 3, stride=2, padding=1)
            ReLU()
            Dropout(0.2)
        shortcut:
            Conv2d(4, 8, 1, stride=2, bias=False)
            BatchNorm2d(8)
        )
        AdaptiveAvgPool2d(1)
        Flatten()
        Linear(8, 10)
        """
        let built = try ModelSpec(parsing: text, source: "res.spec")
        func train(world: Int) throws -> [[Float]] {
            let configuration = TrainingConfiguration(dataset: "synthetic", epochs: 6, globalBatchSize: 8, optimizer: .sgd,
                                                      learningRate: 0.01, momentum: 0.5)
            return try InProcessGroup(size: world, timeoutSeconds: 120).run { comm -> [[Float]] in
                let model = try built.build(inputShape: [1, 28, 28], classes: 10).makeSequential(inputShape: [1, 28, 28])
                model.parameters.initializeKaimingUniform(seed: 4)
                let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: self.data,
                                          configuration: configuration, communicator: comm)
                try trainer.run()
                return [Array(model.parameters.values), Array(model.parameters.buffers)]
            }[0]
        }
        let one = try train(world: 1), three = try train(world: 3)
        assertClose(three[0], one[0], relative: 1e-5, "parameters")
        assertClose(three[1], one[1], relative: 1e-5, "running statistics")
    }

    func testTwoThreeAndFourRanksGiveTheParametersAndRunningStatisticsOfOne() throws {
        let one = try train(world: 1, epochs: 7)
        for world in [2, 3, 4] {
            let many = try train(world: world, epochs: 7)
            assertClose(many[0], one[0], relative: 1e-5, "parameters, \(world) ranks")
            assertClose(many[1], one[1], relative: 1e-5, "running statistics, \(world) ranks")
        }
        XCTAssertEqual(one[1].last, 35, "num_batches_tracked: 7 epochs × 5 steps")
    }

    /// `--accumulate 2`: each micro-batch is the ranks' shares of one half of the global batch, so BatchNorm
    /// normalizes the same groups of samples on 3 ranks as on 1 (not each rank's first and second halves).
    func testAccumulatedMicroBatchesOnThreeRanksNormalizeTheGroupsOfOneRank() throws {
        let one = try train(world: 1, epochs: 3, accumulate: 2), three = try train(world: 3, epochs: 3, accumulate: 2)
        assertClose(three[0], one[0], relative: 1e-5, "parameters")
        assertClose(three[1], one[1], relative: 1e-5, "running statistics")
        let whole = try train(world: 1, epochs: 3)
        XCTAssertGreaterThan(zip(whole[1], one[1]).map { abs($0 - $1) }.max()!, 1e-3,
                             "micro-batches of 4 have other statistics than batches of 8 (else this test shows nothing)")
    }

    func testRunningStatisticsAreCheckpointedAndResumedExactly() throws {
        let root = makeTemporaryDirectory("bn-checkpoints")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try train(world: 1, epochs: 3)
        _ = try train(world: 1, epochs: 1, checkpoints: root)
        let resumed = try train(world: 1, epochs: 3, checkpoints: root, resume: "\(root)/step-00000005")
        XCTAssertEqual(resumed[0], straight[0])
        XCTAssertEqual(resumed[1], straight[1])
    }
}
