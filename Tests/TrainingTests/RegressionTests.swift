import XCTest
import Collectives
import Datasets
import Layers
import Tensors
@testable import Training
import _TestSupport

/// `--task regression`: metrics by hand, and 3 ranks train the parameters of 1.
final class RegressionTests: XCTestCase {
    /// Targets (1, 2, 3, 4), predictions (1, 2, 3, 6): SSE 4, SAE 2, Σt 10, Σt² 30, SST = 30 − 100/4 = 5:
    /// MSE 1, RMSE 1, MAE 0.5, R² = 1 − 4/5 = 0.2.
    func testMetricsByHand() {
        let m = RegressionMetrics(squaredErrors: 4, absoluteErrors: 2, targetSum: 10, targetSquares: 30, count: 4)
        XCTAssertEqual(m.meanSquaredError, 1)
        XCTAssertEqual(m.rootMeanSquaredError, 1)
        XCTAssertEqual(m.meanAbsoluteError, 0.5)
        XCTAssertEqual(m.rSquared, 0.2, accuracy: 1e-12)
    }

    /// y = 3·x0 − 2·x1 + 1 on 37 samples (not divisible by 3), global batch 8.
    private func data() -> DatasetSplits {
        var generator = SeededGenerator(seed: 9, keys: 1)
        func table(_ n: Int) -> ImageDataset {
            let x = (0..<(2 * n)).map { _ in generator.nextFloat(in: -2, 2) }
            let y: [Float] = (0..<n).map { (i: Int) -> Float in
                let first: Float = 3 * x[2 * i], second: Float = 2 * x[2 * i + 1]
                return first - second + 1
            }
            return ImageDataset(shape: [2, 1, 1], features: x, labels: [UInt8](repeating: 0, count: n), classNames: ["y"], targets: y)
        }
        return DatasetSplits(name: "linear", train: table(37), test: table(20))
    }

    private func train(world: Int, epochs: Int) throws -> (parameters: [Float], evaluation: EvaluationResult) {
        let data = data(), configuration = TrainingConfiguration(dataset: "linear", epochs: epochs, globalBatchSize: 8, learningRate: 0.02)
        return try InProcessGroup(size: world, timeoutSeconds: 120).run { comm in
            let model = Sequential(inputShape: [2, 1, 1], layers: [Flatten(inputShape: [2, 1, 1]), Linear(inputFeatures: 2, outputFeatures: 8, activation: .relu, name: "1"),
                                                                   Linear(inputFeatures: 8, outputFeatures: 1, name: "3")])
            model.parameters.initializeKaimingUniform(seed: 2)
            let trainer = try Trainer(model: model, optimizer: configuration.makeOptimizer(for: model), data: data,
                                      configuration: configuration, communicator: comm)
            let evaluation = try trainer.run()
            return (Array(model.parameters.values), evaluation)
        }[0]
    }

    func testThreeRanksTrainTheParametersOfOneAndTheFitIsGood() throws {
        let one = try train(world: 1, epochs: 3), three = try train(world: 3, epochs: 3)
        assertClose(three.parameters, one.parameters, relative: 1e-5)
        XCTAssertEqual(three.evaluation.regression!.meanSquaredError, one.evaluation.regression!.meanSquaredError,
                       accuracy: 1e-5 * one.evaluation.regression!.meanSquaredError)
        let long = try train(world: 1, epochs: 150)
        XCTAssertGreaterThan(long.evaluation.regression!.rSquared, 0.95, "a linear target is learned")
    }
}
