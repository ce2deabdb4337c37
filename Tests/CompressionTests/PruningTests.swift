import XCTest
import Collectives
import Compression
import Datasets
import Layers
import Optimizers
import Tensors
import Training
import _TestSupport

final class PruningTests: XCTestCase {
    /// Two weight matrices (4 and 8 values) and a bias: global pruning of half the 12 weights takes the 6
    /// smallest magnitudes wherever they are; per layer, half of each; biases are never pruned.
    func testMasksPruneTheSmallestMagnitudesByScope() {
        let store = ParameterStore(specs: [ParameterSpec(name: "a.weight", shape: [2, 2], fanIn: 2), ParameterSpec(name: "a.bias", shape: [2], fanIn: 2),
                                           ParameterSpec(name: "b.weight", shape: [2, 4], fanIn: 4)])
        let values: [Float] = [0.1, -0.2, 0.3, 0.4, /* bias */ 0.01, 0.02, /* b */ 5, -6, 0.05, 7, 8, -0.9, 1, 2]
        for (i, v) in values.enumerated() { store.values[i] = v }
        let global = PruningMask(store: store, sparsity: 0.5, scope: .global)
        XCTAssertEqual(global.keep, [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1], "the six smallest: 0.05, 0.1, 0.2, 0.3, 0.4, 0.9")
        let layer = PruningMask(store: store, sparsity: 0.5, scope: .layer)
        XCTAssertEqual(layer.keep, [0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0], "two of a's four (0.1, 0.2), four of b's eight (0.05, 0.9, 1, 2)")
        XCTAssertEqual(PruningMask(encoded: global.encoded, count: 14), global)
        XCTAssertNil(PruningMask(encoded: global.encoded, count: 100))
    }

    private let data: DatasetSplits = {
        let a = syntheticImages(count: 37, seed: 3), b = syntheticImages(count: 10, seed: 103)
        return DatasetSplits(name: "synthetic",
                             train: ImageDataset(shape: [1, 28, 28], pixels: a.pixels, labels: a.labels, classNames: mnistClassNames),
                             test: ImageDataset(shape: [1, 28, 28], pixels: b.pixels, labels: b.labels, classNames: mnistClassNames))
    }()

    /// Pruned weights and their momentum stay exactly zero through training, on 3 ranks as on 1.
    func testMaskedWeightsAndOptimizerStateStayZeroOnEveryRank() throws {
        let configuration = TrainingConfiguration(dataset: "synthetic", epochs: 2, globalBatchSize: 8, optimizer: .adam, learningRate: 3e-3)
        func train(world: Int) throws -> (values: [Float], state: [[Float]], mask: [Float]) {
            try InProcessGroup(size: world, timeoutSeconds: 120).run { comm in
                let model = try configuration.makeModel(for: self.data)
                let optimizer = configuration.makeOptimizer(for: model)
                let mask = PruningMask(store: model.parameters, sparsity: 0.8, scope: .global)
                let trainer = try Trainer(model: model, optimizer: optimizer, data: self.data, configuration: configuration, communicator: comm)
                trainer.updateMask = mask.keep
                try trainer.run()
                return (Array(model.parameters.values), optimizer.stateBuffers.map { Array($0.values) }, mask.keep)
            }[0]
        }
        let one = try train(world: 1), three = try train(world: 3)
        for i in one.mask.indices where one.mask[i] == 0 {
            XCTAssertEqual(one.values[i], 0)
            XCTAssertEqual(three.values[i], 0)
            for state in one.state + three.state { XCTAssertEqual(state[i], 0) }
        }
        let pruned = one.mask.filter { $0 == 0 }.count
        XCTAssertEqual(pruned, Int(0.8 * Double(784 * 128 + 128 * 10)))
        assertClose(three.values, one.values, relative: 1e-5)
    }
}
