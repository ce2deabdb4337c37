import XCTest
import Collectives
import Datasets
import Layers
import Optimizers
@testable import Training
import _TestSupport

/// `--exact-sums`: N ranks give one rank's parameters and running statistics BIT FOR BIT, also where float sums
/// diverge (a high rate with momentum 0.9, BatchNorm), for every convolution lowering, BatchNorm 1d and 2d,
/// residual blocks, dropout, pooling, accumulation, empty shares, and resumes across world sizes.
final class ExactSumsTrainingTests: XCTestCase {
    /// 33 samples in batches of 8: the last batch holds one sample, so every other rank's share is empty.
    private let data = syntheticSplits(train: 33, test: 11)

    /// Direct (1 → 4 and in the block), per-image (20 → 8 on 14×14) and batched (stride 2, 7×7) convolutions.
    private let spec = """
        Conv2d(1, 4, 3, padding=1, bias=False)
        BatchNorm2d(4)
        ReLU()
        MaxPool2d(2)
        Conv2d(4, 20, 3, padding=1)
        ReLU()
        Conv2d(20, 8, 3, padding=1)
        Residual(
            Conv2d(8, 8, 3, padding=1, bias=False)
            BatchNorm2d(8)
            GELU()
        )
        Conv2d(8, 12, 3, stride=2, padding=1)
        BatchNorm2d(12)
        ReLU()
        AdaptiveAvgPool2d(1)
        Flatten()
        Linear(12, 16)
        BatchNorm1d(16)
        ReLU()
        Dropout(0.25)
        Linear(16, 10)
        """

    private func configuration(epochs: Int, exact: Bool = true, accumulate: Int = 1) -> TrainingConfiguration {
        // The rate and momentum of the regime where float sums of different worlds drift apart.
        var configuration = TrainingConfiguration(dataset: "synthetic", epochs: epochs, globalBatchSize: 8, optimizer: .sgd,
                                                  learningRate: 0.05, momentum: 0.9)
        configuration.exactSums = exact ? true : nil
        configuration.accumulationSteps = accumulate > 1 ? accumulate : nil
        return configuration
    }

    private func train(world: Int, _ configuration: TrainingConfiguration, checkpoints: String? = nil,
                       resume: String? = nil) throws -> [[Float]] {
        let built = try ModelSpec(parsing: spec, source: "exact.spec")
        return try InProcessGroup(size: world, timeoutSeconds: 300).run { comm -> [[Float]] in
            let model = try built.build(inputShape: [1, 28, 28], classes: 10).makeSequential(inputShape: [1, 28, 28])
            model.parameters.initializeKaimingUniform(seed: 4)
            let loaded = try resume.map { try LoadedCheckpoint.load(directory: $0, communicator: comm) }
            let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: self.data,
                                      configuration: configuration, communicator: comm,
                                      checkpointing: checkpoints.map { CheckpointSettings(directory: $0) }, resume: loaded)
            try trainer.run()
            return [Array(model.parameters.values), Array(model.parameters.buffers)]
        }[0]
    }

    /// 30 steps (6 epochs of 5) on 1, 2, 3 and 4 ranks: the same bits.
    func testTwoThreeAndFourRanksGiveOneRanksParametersBitForBit() throws {
        let one = try train(world: 1, configuration(epochs: 6))
        XCTAssertEqual(one[1].last, 30, "num_batches_tracked of the last BatchNorm: 6 epochs × 5 steps")
        for world in [2, 3, 4] {
            let many = try train(world: world, configuration(epochs: 6))
            assertSameBits(many[0], one[0], "parameters, \(world) ranks")
            assertSameBits(many[1], one[1], "running statistics, \(world) ranks")
        }
    }

    /// With `--accumulate 2` (each share in two micro-batches, some empty) 3 ranks still give 1 rank's bits.
    func testAccumulatedStepsOnThreeRanksGiveOneRanksBits() throws {
        let one = try train(world: 1, configuration(epochs: 2, accumulate: 2))
        let three = try train(world: 3, configuration(epochs: 2, accumulate: 2))
        assertSameBits(three[0], one[0])
        assertSameBits(three[1], one[1])
    }

    /// Exact sums compute the same training as float sums: in a well-conditioned regime (lr 0.01, momentum 0.5)
    /// the two agree to 1e-5 after 10 steps.
    func testExactSumsTrainAsFloatSumsDo() throws {
        var exact = configuration(epochs: 2), float = configuration(epochs: 2, exact: false)
        for index in [0, 1] {
            var configuration = [exact, float][index]
            configuration.learningRate = 0.01
            configuration.momentum = 0.5
            if index == 0 { exact = configuration } else { float = configuration }
        }
        let a = try train(world: 1, exact), b = try train(world: 1, float)
        assertClose(a[0], b[0], relative: 1e-5, "parameters")
        XCTAssertNotEqual(a[0], b[0], "float sums round differently somewhere (else this test shows nothing)")
    }

    /// A run on 2 ranks checkpointed after one epoch and resumed on 3 ranks ends with the bits of 3 epochs on 1 rank.
    func testAResumeOnAnotherWorldSizeContinuesBitForBit() throws {
        let root = makeTemporaryDirectory("exact-resume")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try train(world: 1, configuration(epochs: 3))
        _ = try train(world: 2, configuration(epochs: 1), checkpoints: root)
        let resumed = try train(world: 3, configuration(epochs: 3), checkpoints: root, resume: "\(root)/step-00000005")
        assertSameBits(resumed[0], straight[0])
        assertSameBits(resumed[1], straight[1])
    }

    /// Equal to the bit; on failure, where and by how much (not two arrays of thousands of values).
    private func assertSameBits(_ actual: [Float], _ expected: [Float], _ message: String = "",
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        let differs = { (index: Int) in actual[index].bitPattern != expected[index].bitPattern }
        guard actual.count == expected.count, let first = actual.indices.first(where: differs) else { return }
        let differing = zip(actual, expected).filter { $0.bitPattern != $1.bitPattern }.count
        XCTFail("\(message): \(differing) of \(actual.count) values differ, first at \(first): \(actual[first]) vs \(expected[first])",
                file: file, line: line)
    }

    /// Refused, with the reason: sharded state, a lossy wire, overlap (and a library user's layer without exact
    /// terms: LayersTests).
    func testRunsExactSumsCannotHoldAreRefused() throws {
        let plain = Sequential(inputShape: [1, 28, 28], layers: [Flatten(inputShape: [1, 28, 28]),
                                                                 Linear(inputFeatures: 784, outputFeatures: 10, name: "1")])
        for (wire, overlap, sharded, expected) in [(WireFormat.bf16, false, false, "--wire bf16"),
                                                   (.fp32, true, false, "--overlap"), (.fp32, false, true, "--shard")] {
            XCTAssertThrowsError(try Trainer.requireExactSums(model: plain, sharded: sharded, wire: wire, overlap: overlap),
                                 expected) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        XCTAssertNoThrow(try Trainer.requireExactSums(model: plain, sharded: false, wire: .fp32, overlap: false))
    }
}
