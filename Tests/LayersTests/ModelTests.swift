import Layers
import XCTest
import _TestSupport

final class ModelTests: XCTestCase {
    func testPresetShapesAndPyTorchNames() {
        let mlp = makeModel(.mlp, inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(mlp.parameters.count, 784 * 128 + 128 + 128 * 10 + 10)
        XCTAssertEqual(mlp.parameters.slices.map(\.name), ["1.weight", "1.bias", "3.weight", "3.bias"])

        let lenetCIFAR = makeModel(.lenet, inputShape: [3, 32, 32], classes: 10)
        // The PyTorch tutorial net: 62,006 parameters.
        XCTAssertEqual(lenetCIFAR.parameters.count, 62_006)
        XCTAssertEqual(lenetCIFAR.parameters.slice(named: "fc1.weight")?.shape, [120, 400])

        let lenetMNIST = makeModel(.lenet, inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(lenetMNIST.parameters.slice(named: "conv1.weight")?.shape, [6, 1, 5, 5])
        XCTAssertEqual(lenetMNIST.parameters.slice(named: "fc1.weight")?.shape, [120, 400])

        let large = makeModel(.mlpLarge, inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(large.parameters.count, 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10)

        let cnn = makeModel(.cnn, inputShape: [1, 28, 28], classes: 10)
        XCTAssertEqual(cnn.outputShape, [10])
        XCTAssertEqual(cnn.parameters.slice(named: "10.weight")?.shape, [256, 128 * 3 * 3])
    }

    /// FLOPs per training sample, worked by hand: forward multiply-adds, the same again for the weight
    /// gradients, and once more for every input gradient except the first layer's; 2 FLOPs each.
    func testTrainingFlopsPerSample() {
        // LeNet 3x32x32: conv1 6·75·784, conv2 16·150·100, fc 400·120 + 120·84 + 84·10.
        let lenet = 352_800 + 240_000 + 48_000 + 10_080 + 840
        XCTAssertEqual(makeModel(.lenet, inputShape: [3, 32, 32], classes: 10).trainingFlopsPerSample,
                       2 * (2 * lenet + (lenet - 352_800)))
        // 784-1024-1024-10: the first Linear computes no input gradient.
        let large = 784 * 1024 + 1024 * 1024 + 1024 * 10
        XCTAssertEqual(makeModel(.mlpLarge, inputShape: [1, 28, 28], classes: 10).trainingFlopsPerSample,
                       2 * (2 * large + (large - 784 * 1024)))
        XCTAssertEqual(makeModel(.mlpLarge, inputShape: [1, 28, 28], classes: 10).trainingFlopsPerSample, 9_564_160)
    }

    func testWholeModelBackwardMatchesFiniteDifferencesOnAFewParameters() {
        let model = makeModel(.lenet, inputShape: [1, 12, 12], classes: 3)
        model.parameters.initializeKaimingUniform(seed: 11)
        model.reserve(batchCapacity: 2)
        for i in 0..<(2 * 144) { model.input[i] = Float((i * 37) % 17) / 8 - 1 }
        let labels: [Int32] = [0, 2]
        func loss() -> Double {
            let logits = model.forward(batch: 2, context: .inference)
            return softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 3, dLogits: nil).lossSum
        }
        let logits = model.forward(batch: 2, context: .inference)
        _ = softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 3, dLogits: model.outputGradient)
        model.parameters.zeroGradients()
        model.backward(batch: 2)
        let store = model.parameters
        // Every 97th parameter covers all five layers without a long test; kinks are skipped (see centralDifferences).
        let checkedIndices = Array(stride(from: 0, to: store.count, by: 97))
        let numeric = centralDifferences(count: checkedIndices.count, epsilon: 1e-3,
                                         get: { store.values[checkedIndices[$0]] },
                                         set: { store.values[checkedIndices[$0]] = $1 }, loss: loss)
        assertCloseAwayFromKinks(checkedIndices.map { store.gradients[$0] }, numeric, tolerance: 1e-2,
                                 "whole LeNet", file: #filePath, line: #line)
    }
    /// backward(checkingFiniteness:) checks every layer's gradients, not only the last ones written:
    /// an infinity in the input after forward reaches only the first layer's weight gradient.
    func testBackwardFinitenessCheckCoversEveryLayer() {
        let model = makeModel(.mlp, inputShape: [1, 4, 4], classes: 3)
        model.parameters.initializeKaimingUniform(seed: 5)
        model.reserve(batchCapacity: 2)
        for i in 0..<32 { model.input[i] = Float(i % 5) / 2 - 1 }
        let labels: [Int32] = [1, 2]
        func backward(poisoningInput: Bool) -> Bool {
            let logits = model.forward(batch: 2, context: .inference)
            _ = softmaxCrossEntropy(logits: logits, labels: labels, batch: 2, classes: 3, dLogits: model.outputGradient,
                                    gradientScale: 0.5)
            if poisoningInput { model.input[7] = .infinity }
            model.parameters.zeroGradients()
            return model.backward(batch: 2, checkingFiniteness: true)
        }
        XCTAssertTrue(backward(poisoningInput: false))
        XCTAssertFalse(backward(poisoningInput: true))
        let store = model.parameters, first = store.slices[0]
        XCTAssertFalse((first.offset..<(first.offset + first.count)).allSatisfy { store.gradients[$0].isFinite })
        XCTAssertTrue((store.slices[1].offset..<store.count).allSatisfy { store.gradients[$0].isFinite },
                      "only the first layer's weight gradient sees the input")
        XCTAssertTrue(model.backward(batch: 2), "without the check backward reports finite")
    }
}
